//! How long work reports where it is, without the library knowing about terminals.
//!
//! Every workflow takes a `&mut dyn Progress`; the command line hands it progress bars, a test
//! or a library caller hands it [`Silent`]. A stage is one measurable loop (the documents of a
//! language, the blocks of a model); `note` is a line a user should read even when no bar is
//! drawn (a skipped input, a path written). Where nobody watches a terminal (a batch job's log),
//! [`UnitLog`] gives one plain line per finished unit instead of a bar.

use std::time::Duration;

/// Receives the progress of a workflow.
pub trait Progress {
    /// A stage of `total` steps begins (0 when the number of steps is unknown).
    fn stage(&mut self, _name: &str, _total: u64) {}
    /// `done` steps of the current stage are finished.
    fn advance(&mut self, _done: u64) {}
    /// The current step is doing `what` (e.g. "block 3: solve").
    fn detail(&mut self, _what: &str) {}
    /// The current stage is over.
    fn finish(&mut self) {}
    /// A line for the user.
    fn note(&mut self, _line: &str) {}
}

/// Progress nobody watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {}

/// What a run of units writes to a log instead of a bar (a Slurm job's stderr is a file): one
/// line per finished unit with how far the run is, how long it has taken and how long is left.
///
/// The time left is this run's mean time per unit times the units still to do, counting only
/// units computed in this run: a resumed run's earlier units took no time here.
#[derive(Clone, Debug)]
pub struct UnitLog {
    total: usize,
    finished: usize,
    computed_here: usize,
}

impl UnitLog {
    /// A run of `total` units of which `done_before` were finished by earlier runs.
    pub fn new(total: usize, done_before: usize) -> UnitLog {
        UnitLog { total, finished: done_before.min(total), computed_here: 0 }
    }

    /// The line for a unit that ended after `took`, `elapsed` into this run; `failure` is its
    /// error when it failed.
    pub fn finished(&mut self, id: &str, took: Duration, elapsed: Duration, failure: Option<&str>) -> String {
        self.finished += 1;
        self.computed_here += 1;
        let left = self.total.saturating_sub(self.finished);
        let outcome = match failure {
            None => format!("done {id} in {}", clock(took)),
            Some(error) => format!("FAILED {id} after {}: {error}", clock(took)),
        };
        let remaining = match time_left(elapsed, self.computed_here, left) {
            Some(t) if left > 0 => format!("about {} left for {left} more", clock(t)),
            _ => "nothing left".to_string(),
        };
        format!("[{}/{}] {outcome}; elapsed {}, {remaining}", self.finished, self.total, clock(elapsed))
    }
}

/// `elapsed` spread evenly over the `computed` units, times the `left` ones; `None` before any
/// unit has finished (no pace to go by).
pub fn time_left(elapsed: Duration, computed: usize, left: usize) -> Option<Duration> {
    if computed == 0 {
        return None;
    }
    Some(elapsed.mul_f64(left as f64 / computed as f64))
}

/// `1h02m03s`, `4m05s` or `7s` (whole seconds, rounded).
pub fn clock(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_the_mean_pace_times_the_units_left() {
        // 3 units in 90 s: 30 s each, 4 left -> 120 s.
        assert_eq!(time_left(Duration::from_secs(90), 3, 4), Some(Duration::from_secs(120)));
        assert_eq!(time_left(Duration::from_secs(90), 0, 4), None);
        assert_eq!(time_left(Duration::from_secs(90), 2, 0), Some(Duration::ZERO));
    }

    #[test]
    fn clock_rounds_to_whole_seconds_and_pads_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_millis(7_400)), "7s");
        assert_eq!(clock(Duration::from_secs(245)), "4m05s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(clock(Duration::from_millis(59_600)), "1m00s");
    }

    #[test]
    fn each_finished_unit_gets_one_line_with_its_count_elapsed_time_and_time_left() {
        // 5 units, 1 finished by an earlier run: the pace counts only this run's units.
        let mut log = UnitLog::new(5, 1);
        let first = log.finished("dense/gemma", Duration::from_secs(40), Duration::from_secs(42), None);
        assert_eq!(first, "[2/5] done dense/gemma in 40s; elapsed 42s, about 2m06s left for 3 more");
        let second = log.finished("cells/wanda-eng", Duration::from_secs(60), Duration::from_secs(102), Some("out of memory"));
        // 102 s for 2 units = 51 s each, 2 left -> 102 s.
        assert_eq!(second, "[3/5] FAILED cells/wanda-eng after 1m00s: out of memory; elapsed 1m42s, about 1m42s left for 2 more");
        log.finished("a", Duration::from_secs(1), Duration::from_secs(103), None);
        let last = log.finished("b", Duration::from_secs(1), Duration::from_secs(104), None);
        assert_eq!(last, "[5/5] done b in 1s; elapsed 1m44s, nothing left");
        assert!(!last.contains('\n') && !last.contains('\r'), "one line, no redraw characters");
    }
}
