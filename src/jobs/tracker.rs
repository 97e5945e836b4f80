//! What connects a running pipeline to the rest of the service: a [`Tracker`] is the engine's
//! [`Observer`] (it records progress and per-stage timings, and answers `should_stop` from an
//! atomic flag), and the [`Running`] registry lets the cancel endpoint and shutdown reach it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use uuid::Uuid;

use crate::engine::pipeline::{Observer, Stage};
use crate::store::{Progress, Timing};

/// Why a running job was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    /// A client canceled it.
    Cancel = 1,
    /// The process is shutting down: give it back to the queue.
    Shutdown = 2,
    /// Another attempt took it over: write nothing.
    LeaseLost = 3,
}

#[derive(Debug, Default)]
struct State {
    current: Option<(Stage, f64)>,
    stage_started: Option<Instant>,
    timings: Vec<Timing>,
    dirty: bool,
}

/// Progress and stop flag of one running job.
#[derive(Debug, Default)]
pub struct Tracker {
    stop: AtomicU8,
    state: Mutex<State>,
}

impl Tracker {
    /// Ask the job to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let _ = self
            .stop
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the job was asked to stop, if it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self.stop.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancel),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::LeaseLost),
            _ => None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest progress and the finished stages' timings, if anything changed since the
    /// last call.
    pub fn take_update(&self) -> Option<(Progress, Vec<Timing>)> {
        let mut st = self.state();
        if !st.dirty {
            return None;
        }
        st.dirty = false;
        let (stage, fraction) = st.current?;
        Some((Progress { stage, fraction }, st.timings.clone()))
    }

    /// Close the running stage and return every stage's timing.
    pub fn finish(&self) -> Vec<Timing> {
        let mut st = self.state();
        close_stage(&mut st);
        st.current = None;
        st.timings.clone()
    }
}

fn close_stage(st: &mut State) {
    if let (Some((stage, _)), Some(started)) = (st.current, st.stage_started.take()) {
        st.timings.push(Timing {
            stage,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
}

impl Observer for Tracker {
    fn progress(&self, stage: Stage, fraction: f64) {
        let mut st = self.state();
        if st.current.map(|(s, _)| s) != Some(stage) {
            close_stage(&mut st);
            st.stage_started = Some(Instant::now());
        }
        st.current = Some((stage, fraction.clamp(0.0, 1.0)));
        st.dirty = true;
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != 0
    }
}

/// The jobs this process is running, by id.
#[derive(Clone, Debug, Default)]
pub struct Running(Arc<Mutex<HashMap<Uuid, Arc<Tracker>>>>);

impl Running {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Tracker>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a job; it is removed when the returned guard drops.
    pub fn register(&self, id: Uuid) -> RunningGuard {
        let tracker = Arc::new(Tracker::default());
        self.map().insert(id, tracker.clone());
        RunningGuard {
            running: self.clone(),
            id,
            tracker,
        }
    }

    /// Stop one job if it runs here; true when it did.
    pub fn stop(&self, id: Uuid, reason: StopReason) -> bool {
        self.map().get(&id).map(|t| t.stop(reason)).is_some()
    }

    /// Stop every job running here.
    pub fn stop_all(&self, reason: StopReason) {
        for t in self.map().values() {
            t.stop(reason);
        }
    }

    /// Number of jobs running here.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when nothing runs here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A job's entry in [`Running`]; dropping it unregisters the job.
pub struct RunningGuard {
    running: Running,
    id: Uuid,
    /// The job's tracker.
    pub tracker: Arc<Tracker>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.running.map().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_timing_per_finished_stage() {
        let t = Tracker::default();
        t.progress(Stage::Validate, 0.0);
        t.progress(Stage::Validate, 1.0);
        t.progress(Stage::Affinity, 0.5);
        let (p, timings) = t.take_update().unwrap();
        assert_eq!((p.stage, p.fraction), (Stage::Affinity, 0.5));
        assert_eq!(timings.len(), 1);
        assert_eq!(timings[0].stage, Stage::Validate);
        assert!(
            t.take_update().is_none(),
            "nothing new since the last update"
        );
        let all = t.finish();
        assert_eq!(
            all.iter().map(|t| t.stage).collect::<Vec<_>>(),
            [Stage::Validate, Stage::Affinity]
        );
    }

    #[test]
    fn the_first_stop_reason_wins() {
        let t = Tracker::default();
        assert!(!t.should_stop());
        t.stop(StopReason::Cancel);
        t.stop(StopReason::Shutdown);
        assert!(t.should_stop());
        assert_eq!(t.stop_reason(), Some(StopReason::Cancel));
    }

    #[test]
    fn a_guard_unregisters_its_job() {
        let running = Running::default();
        let id = Uuid::now_v7();
        {
            let g = running.register(id);
            assert!(running.stop(id, StopReason::Cancel));
            assert!(g.tracker.should_stop());
        }
        assert!(running.is_empty());
        assert!(!running.stop(id, StopReason::Cancel));
    }
}
