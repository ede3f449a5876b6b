//! # simex (the venue)
//!
//! Everything that runs the engine for real: the sharded runtime (threads, pinning, rings, the
//! clock), the reference price sources that feed it (`feeds`), and, as they arrive, the network
//! gateways. The engine itself
//! (`simex-engine`) stays pure; this crate is where time and concurrency come in.

pub mod feeds;
pub mod projection;
pub mod runtime;
