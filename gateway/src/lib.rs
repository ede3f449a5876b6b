//! # simex (the venue)
//!
//! Everything that runs the engine for real: the sharded runtime (threads, pinning, rings, the
//! clock, the journal writer), the reference price sources that feed it (`feeds`), the PostgreSQL
//! projection (`projection`), and the gateways: accounts and authentication (`auth`), the bridge
//! from async handlers to the runtime (`bridge`), the read model behind history and market data
//! (`history`), the HTTP API (`http`), configuration (`config`) and the assembly (`venue`). The
//! engine itself (`simex-engine`) stays pure; this crate is where time, I/O and concurrency come in.

pub mod auth;
pub mod binary;
pub mod bridge;
pub mod config;
pub mod feeds;
pub mod history;
pub mod http;
pub mod projection;
pub mod runtime;
pub mod venue;
