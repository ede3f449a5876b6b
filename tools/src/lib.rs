//! # simex-tools
//!
//! Operator tools around the simex engine. [`script`] is the scenario runner behind the
//! `simex-script` binary: it reads a file of human-written commands (JSON lines with symbol names
//! and decimal prices), runs them through one engine and prints the events, so that an incident can
//! be reproduced from what a person can write down and golden tests can pin the engine's behaviour.
//! See `docs/script.md` for the script format.
//!
//! The logic lives in this library rather than in the binary so that tests can drive a run
//! in-process; the binary only parses its arguments and maps outcomes to exit codes.

pub mod script;
