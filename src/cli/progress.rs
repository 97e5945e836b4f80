//! Progress of `gmfuse fuse` on stderr: on a terminal, one `indicatif` bar per stage with the
//! stage's name, its share done and an ETA; otherwise (a pipe, a file, CI) plain lines — one
//! when a stage starts and one when it ends with its time, plus every tenth with `-v`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::pipeline::{Observer, Stage};

/// Ticks of a bar: a stage's fraction in thousandths.
const TICKS: u64 = 1000;

/// How progress is shown.
enum Sink {
    /// A redrawn bar (stderr is a terminal).
    Bar(ProgressBar),
    /// Plain lines to a writer; `every_tenth` adds a line per tenth of a stage.
    Lines {
        out: Box<dyn Write + Send>,
        every_tenth: bool,
    },
}

/// The stage being run, when it started, and the last tenth reported.
struct Current {
    stage: Stage,
    started: Instant,
    tenth: u64,
}

/// An [`Observer`] that shows the pipeline's progress.
pub struct Progress {
    sink: Mutex<(Sink, Option<Current>)>,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines on stderr otherwise.
    pub fn stderr(verbose: bool) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(TICKS), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:<28} [{bar:30}] {percent:>3}%  {elapsed:>4} elapsed, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::with(Sink::Bar(bar))
        } else {
            Progress::lines(Box::new(std::io::stderr()), verbose)
        }
    }

    /// Plain lines to `out` (one per stage start and end; with `every_tenth` one per tenth).
    pub fn lines(out: Box<dyn Write + Send>, every_tenth: bool) -> Progress {
        Progress::with(Sink::Lines { out, every_tenth })
    }

    fn with(sink: Sink) -> Progress {
        Progress {
            sink: Mutex::new((sink, None)),
        }
    }

    /// End the last stage and clear the bar.
    pub fn finish(&self) {
        let mut guard = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sink, current) = &mut *guard;
        if let Some(done) = current.take() {
            end_stage(sink, &done);
        }
        if let Sink::Bar(bar) = sink {
            bar.finish_and_clear();
        }
    }
}

fn start_stage(sink: &mut Sink, stage: Stage) {
    match sink {
        Sink::Bar(bar) => {
            bar.reset();
            bar.set_message(stage.to_string());
        }
        Sink::Lines { out, .. } => {
            let _ = writeln!(out, "gmfuse: {stage} …");
        }
    }
}

fn end_stage(sink: &mut Sink, done: &Current) {
    let secs = done.started.elapsed().as_secs_f64();
    match sink {
        Sink::Bar(bar) => bar.println(format!("  {} done in {secs:.2}s", done.stage)),
        Sink::Lines { out, .. } => {
            let _ = writeln!(out, "gmfuse: {} done in {secs:.2}s", done.stage);
        }
    }
}

impl Observer for Progress {
    fn progress(&self, stage: Stage, fraction: f64) {
        let mut guard = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sink, current) = &mut *guard;
        if current.as_ref().is_none_or(|c| c.stage != stage) {
            if let Some(done) = current.take() {
                end_stage(sink, &done);
            }
            start_stage(sink, stage);
            *current = Some(Current {
                stage,
                started: Instant::now(),
                tenth: 0,
            });
        }
        let Some(cur) = current.as_mut() else { return };
        // A fraction in [0, 1] (clamped; NaN counts as 0): the product fits a u64.
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ticks = (fraction.clamp(0.0, 1.0) * TICKS as f64).round() as u64;
        match sink {
            Sink::Bar(bar) => bar.set_position(ticks),
            Sink::Lines { out, every_tenth } => {
                let tenth = ticks / (TICKS / 10);
                if *every_tenth && tenth > cur.tenth && tenth < 10 {
                    let _ = writeln!(out, "gmfuse: {stage} {}%", tenth * 10);
                }
                cur.tenth = cur.tenth.max(tenth);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::engine::pipeline::MethodId;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(out: &Shared) -> Vec<String> {
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                // Times vary: keep the words.
                l.split(" done in ").next().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn plain_lines_name_each_stage_once_when_it_starts_and_ends() {
        let out = Shared::default();
        let p = Progress::lines(Box::new(out.clone()), false);
        for f in [0.0, 0.3, 0.7, 1.0] {
            p.progress(Stage::Affinity, f);
        }
        p.progress(Stage::Evaluate(MethodId::Gamf), 0.5);
        p.finish();
        assert_eq!(
            lines(&out),
            [
                "gmfuse: affinity …",
                "gmfuse: affinity",
                "gmfuse: evaluate_gamf …",
                "gmfuse: evaluate_gamf",
            ]
        );
    }

    #[test]
    fn verbose_lines_add_each_tenth_reached_once() {
        let out = Shared::default();
        let p = Progress::lines(Box::new(out.clone()), true);
        for f in [0.05, 0.12, 0.15, 0.35, 1.0] {
            p.progress(Stage::Matching, f);
        }
        p.finish();
        // 0.12 reaches the first tenth, 0.35 the third (the second is skipped, not invented);
        // 1.0 is the stage's end line.
        assert_eq!(
            lines(&out),
            [
                "gmfuse: matching …",
                "gmfuse: matching 10%",
                "gmfuse: matching 30%",
                "gmfuse: matching",
            ]
        );
    }
}
