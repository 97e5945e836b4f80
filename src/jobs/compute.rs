//! The bridge from async code to CPU work: one dedicated rayon pool, sized from config, and
//! [`ComputePool::run`], which runs a closure there, hands the result back through a oneshot
//! channel, and turns a panic into [`ComputeError::Panicked`] instead of aborting the process.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Why CPU work produced no value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ComputeError {
    /// The closure panicked; the message is the panic payload when it is a string.
    #[error("computation panicked: {0}")]
    Panicked(String),
    /// The pool dropped the task without running it.
    #[error("the compute pool went away")]
    WorkerGone,
}

/// The pool every job's compute runs on.
#[derive(Clone, Debug)]
pub struct ComputePool {
    pool: std::sync::Arc<rayon::ThreadPool>,
}

impl ComputePool {
    /// A pool of `threads` threads named `gmfuse-compute-N`.
    ///
    /// # Errors
    /// When the threads cannot be spawned.
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("gmfuse-compute-{i}"))
            .build()?;
        Ok(ComputePool {
            pool: std::sync::Arc::new(pool),
        })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Run `f` on the pool (inside it, so the engine's `par_iter`s use this pool too) and await
    /// its result without blocking the async runtime. The caller's tracing span is carried over.
    ///
    /// # Errors
    /// [`ComputeError::Panicked`] when `f` panics.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ComputeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        self.pool.spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| span.in_scope(f)));
            let _ = tx.send(result.map_err(panic_message));
        });
        rx.await
            .map_err(|_| ComputeError::WorkerGone)?
            .map_err(ComputeError::Panicked)
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_closures_value() {
        let pool = ComputePool::new(2).unwrap();
        let sum = pool.run(|| (1..=100u64).sum::<u64>()).await.unwrap();
        assert_eq!(sum, 5050);
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error_and_the_pool_keeps_working() {
        let pool = ComputePool::new(1).unwrap();
        let err = pool
            .run(|| -> u32 { panic!("solver blew up") })
            .await
            .unwrap_err();
        assert_eq!(err, ComputeError::Panicked("solver blew up".into()));
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn parallel_iterators_inside_use_the_pool() {
        use rayon::prelude::*;
        let pool = ComputePool::new(3).unwrap();
        let n = pool.run(rayon::current_num_threads).await.unwrap();
        assert_eq!(n, 3);
        let v = pool
            .run(|| (0..1000u32).into_par_iter().map(|x| x * 2).sum::<u32>())
            .await
            .unwrap();
        assert_eq!(v, 999_000);
    }
}
