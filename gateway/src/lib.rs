//! # simex (the venue)
//!
//! Everything that runs the engine for real: the sharded runtime (threads, pinning, rings, the
//! clock), and, as they arrive, the journal writer and the network gateways. The engine itself
//! (`simex-engine`) stays pure; this crate is where time and concurrency come in.

pub mod binary;
pub mod runtime;
