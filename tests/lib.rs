//! Test support shared by simex's integration tests: a scenario harness that checks invariants and
//! replay after every command, and a generator of random but meaningful command streams.

pub mod harness;
pub mod stream;
