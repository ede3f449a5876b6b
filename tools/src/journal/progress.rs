//! Progress on standard error while a long journal is read.
//!
//! A journal of a busy day is gigabytes; an operator at a terminal should see that the tool is
//! moving and how far it has to go. Bars are drawn only when standard error is a terminal, so
//! scripts, pipes and tests get clean output. Progress is measured in segment bytes (known before
//! reading starts, unlike the number of records); the last segment is preallocated and only partly
//! written, so a bar may finish early.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Records between two updates of a bar: drawing is cheap but not free.
const UPDATE_EVERY: u64 = 4096;

/// A progress bar, or nothing when standard error is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    base_bytes: u64,
    records: u64,
}

impl Progress {
    /// A bar for reading `total_bytes` of segments.
    pub fn bytes(label: &str, total_bytes: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                    .map(|style| style.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label.to_string());
            bar
        });
        Progress { bar, base_bytes: 0, records: 0 }
    }

    /// Nothing drawn.
    pub fn hidden() -> Progress {
        Progress { bar: None, base_bytes: 0, records: 0 }
    }

    /// Moves on to the next part (a shard) whose bytes start after `done_bytes` of the total.
    pub fn start_part(&mut self, label: &str, done_bytes: u64) {
        self.base_bytes = done_bytes;
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_string());
            bar.set_position(done_bytes);
        }
    }

    /// One more record read; `part_bytes` is how far into the current part it is.
    pub fn record(&mut self, part_bytes: u64) {
        self.records += 1;
        if self.records % UPDATE_EVERY == 0 {
            if let Some(bar) = &self.bar {
                bar.set_position(self.base_bytes + part_bytes);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
