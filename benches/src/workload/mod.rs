//! Engine-neutral command streams, generated deterministically from a seed.
//!
//! The stream types, the exchange-core generator and the model book are the `simex-workload` crate
//! (shared with `simex-loadgen`), re-exported here; the flash1 scenarios are the benchmark's own.

pub use simex_workload::{exchange_core, model, Mix, Op, Side, Tif, Workload};

pub mod flash1;
