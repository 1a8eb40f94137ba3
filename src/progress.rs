//! How long work reports where it is, without the library knowing about terminals.
//!
//! Every workflow takes a `&mut dyn Progress`; the command line hands it progress bars, a test
//! or a library caller hands it [`Silent`]. A stage is one measurable loop (the documents of a
//! language, the blocks of a model); `note` is a line a user should read even when no bar is
//! drawn (a skipped input, a path written).

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
