//! # simex-benches
//!
//! Measures the simex engine against two open-source Rust matching engines, matchcore 0.4.0 and
//! orderbook-rs 0.15.3, on the same deterministic command streams, and checks that they agree on
//! every fill. The numbers are only worth something if the engines did the same work, so every
//! run is also a differential test.
//!
//! - [`workload`] builds engine-neutral command streams ([`workload::Op`]) from a seed: the
//!   exchange-core throughput mix and the five flash1 scenarios.
//! - [`adapters`] drive each engine through one [`adapters::Adapter`] trait and translate its fills
//!   to client ids.
//! - [`runner`] times them (whole-stream throughput, per-command latency, allocations) and records
//!   fills; [`compare`] checks every engine's fills against simex's and classifies differences.
//! - [`suite`] runs the whole matrix; [`report`] prints it as markdown.
//! - [`alloc_counter`] is the counting allocator; only the bench binaries install it.
//! - [`runtime`] is the second benchmark: the threaded runtime (`simex::runtime`) against the
//!   machine's core-to-core floor and the bare engine: open-loop round-trip latency, pipelined
//!   throughput, and one shard against two.
//! - [`recovery`] is the third: start-up time of a journaled venue on a long journal, with and
//!   without a snapshot set.
//!
//! Floating point is used freely here (the generators and the statistics), never in the engine.

pub mod adapters;
pub mod alloc_counter;
pub mod compare;
pub mod recovery;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod suite;
pub mod workload;

/// Fills in one shape for every engine (from `simex-workload`).
pub use simex_workload::fills;
