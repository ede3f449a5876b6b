//! # simex-tools
//!
//! Operator tools around the simex engine.
//!
//! - [`script`] is the scenario runner behind the `simex-script` binary: it reads a file of
//!   human-written commands (JSON lines with symbol names and decimal prices), runs them through one
//!   engine and prints the events, so that an incident can be reproduced from what a person can write
//!   down and golden tests can pin the engine's behaviour. See `docs/script.md` for the script format.
//! - [`journal`] is the journal tool behind the `simex-journal` binary: verify a venue's journal
//!   directory after a crash, dump its records, rebuild and compare the state at any point, write
//!   snapshots and count what is there. See `docs/operations.md`.
//!
//! - [`loadgen`] is `simex-loadgen`: client-side latency of the binary order-entry protocol and the
//!   HTTP API, open
//!   or closed loop, with percentile tables, interval logs and a percentile-spectrum plot.
//!
//! The logic lives in this library rather than in the binaries so that tests can drive it
//! in-process; the binaries only parse their arguments and map outcomes to exit codes.

pub mod journal;
pub mod loadgen;
pub mod script;
