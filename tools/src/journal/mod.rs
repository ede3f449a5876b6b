//! The journal tool behind `simex-journal`: what an operator runs against a venue's journal
//! directory when something went wrong, or before something is about to.
//!
//! The journal crate (`simex-journal`) knows records as opaque bytes and the engine knows events; an
//! operator needs both at once: "is this directory whole", "what happened to portfolio 7 between
//! 14:30 and 14:35", "what did the books look like at sequence 52311", "does my rebuilt state agree
//! with the venue's". Every command here is therefore the journal's reader and checks, the engine's
//! codec, and the engine itself replaying events, wired together in one place and read-only except
//! for `snapshot`. See `docs/operations.md` for the operator's guide.
//!
//! One module per job:
//!
//! | module | job |
//! | --- | --- |
//! | [`venue`] | The directory layout: shards, epochs, `venue.toml`, instruments, engine configuration. |
//! | [`records`] | A shard's records decoded into events, each with its segment and offset; damage located. |
//! | [`snapshots`] | Snapshot files: verified, grouped into consistent sets, restored into engines. |
//! | [`replay`] | Rebuilding engines and the shared ledger up to a point, from a snapshot set or the start. |
//! | [`view`] | The rebuilt state as portfolios, positions and books; printing it; comparing two. |
//! | [`verify`] | `verify`: every segment, record and snapshot checked, with the first problem of each shard. |
//! | [`dump`] | `dump`: records as text or JSON lines, filtered, shards merged in time order. |
//! | [`stats`] | `stats`: counts, rates and sizes. |
//! | [`write`] | `snapshot`: a fresh snapshot set written through the journal's `SnapshotStore`. |
//! | [`point`] | Parsing sequences and times given on the command line. |
//! | [`progress`] | Progress bars on standard error, only when it is a terminal. |
//!
//! Failures are values with an exit status ([`ToolError`]): 1 when the journal is damaged (or an
//! event cannot be applied), 2 for wrong arguments and unreadable paths. Nothing here panics on bad
//! files; an engine assertion hit while replaying a nonsensical record is caught ([`catch_engine`])
//! and reported with the record's location instead of a backtrace.

pub mod dump;
pub mod point;
pub mod progress;
pub mod records;
pub mod replay;
pub mod snapshots;
pub mod stats;
pub mod venue;
pub mod verify;
pub mod view;
pub mod write;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

/// Exit status of a clean run.
pub const EXIT_OK: u8 = 0;
/// Exit status when the journal is damaged or cannot be replayed.
pub const EXIT_DAMAGED: u8 = 1;
/// Exit status for wrong arguments, missing paths and I/O errors.
pub const EXIT_USAGE: u8 = 2;

/// What kind of failure, which decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong arguments, or a path that is not a journal.
    Usage,
    /// An I/O error (the message names the file).
    Io,
    /// The journal is damaged, or a record cannot be decoded or applied.
    Damaged,
    /// Standard output was closed (`simex-journal dump | head`): stop quietly.
    OutputClosed,
}

/// A failure of a command, with a message meant for the operator.
#[derive(Debug)]
pub struct ToolError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ToolError {
    pub fn usage(message: impl Into<String>) -> ToolError {
        ToolError { kind: ErrorKind::Usage, message: message.into() }
    }

    pub fn damaged(message: impl Into<String>) -> ToolError {
        ToolError { kind: ErrorKind::Damaged, message: message.into() }
    }

    /// An I/O error on `path` while doing `op`.
    pub fn io(op: &str, path: &Path, error: &io::Error) -> ToolError {
        ToolError { kind: ErrorKind::Io, message: format!("cannot {op} {}: {error}", path.display()) }
    }

    /// An error writing the command's output.
    pub fn output(error: io::Error) -> ToolError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            ToolError { kind: ErrorKind::OutputClosed, message: String::new() }
        } else {
            ToolError { kind: ErrorKind::Io, message: format!("cannot write the output: {error}") }
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage | ErrorKind::Io => EXIT_USAGE,
            ErrorKind::Damaged => EXIT_DAMAGED,
            ErrorKind::OutputClosed => EXIT_OK,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<simex_journal::IoError> for ToolError {
    fn from(error: simex_journal::IoError) -> ToolError {
        ToolError::io(error.op, &error.path, &error.source)
    }
}

thread_local! {
    static ENGINE_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Installs the panic hook of the tool: silent for a panic inside [`catch_engine`] (it becomes an
/// error naming the record), one line without a backtrace for anything else.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        if !ENGINE_CALL.with(Cell::get) {
            eprintln!("simex-journal: internal error: {info}");
        }
    }));
}

/// Runs `f` (a call into the engine), turning an engine assertion into `Err(message)`.
///
/// The engine asserts what a correct event stream guarantees (an order that is cancelled is open, a
/// sequence has no gap); a journal whose records decode but make no sense in the state they are
/// applied to trips such an assertion. For an operator that is a finding about the journal, not a
/// crash of the tool. The engine must not be used after an `Err`.
pub fn catch_engine<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    ENGINE_CALL.with(|flag| flag.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    ENGINE_CALL.with(|flag| flag.set(false));
    result.map_err(|payload| {
        if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_string()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "the engine refused it".to_string()
        }
    })
}

/// Writes to the command's output, mapping errors to [`ToolError::output`].
#[macro_export]
macro_rules! out {
    ($dst:expr) => {
        writeln!($dst).map_err($crate::journal::ToolError::output)
    };
    ($dst:expr, $($arg:tt)*) => {
        writeln!($dst, $($arg)*).map_err($crate::journal::ToolError::output)
    };
}
