//! simex's integration tests, one binary (`cargo test -p simex-tests`).
//!
//! - `scenarios`: each order type, time in force, replace rule, self-trade policy and rejection
//!   reason, with exact expected fills and cash.
//! - `differential`: the fast book against the reference book on random streams.
//! - `properties`: invariants over random streams (proptest).
//! - `runtime`: the sharded runtime: wait strategies, cross-shard cash, backpressure, shutdown.
//! - `simulated`: reference prices, simulated liquidity, impact, liquidity limits, trade-through.
//! - `conditional`: stops, take-profits, trailing stops, OCO and brackets on scripted price paths,
//!   and their properties over random streams.
//! - `latency`: the latency model: delayed execution, cancel in flight, risk at execution, seeds.
//! - `codec`: the journal's event encoding and engine snapshots on random streams.

mod codec;
mod conditional;
mod differential;
mod latency;
mod properties;
mod runtime;
mod scenarios;
mod simulated;
