//! One trait to drive every engine, and the engines there are.
//!
//! An adapter owns one engine instance set up for one workload (accounts, id tables), translates
//! each [`Op`] to the engine's own call, and reports whether the engine refused it. Setup happens
//! in [`Adapter::new`], outside any timing; [`Adapter::apply`] is what is timed, so it does only
//! what a caller of that engine would have to do anyway (map client ids to engine ids, build the
//! command, look at the result). Fill translation is skipped unless the sink collects.
//!
//! The foreign engines are used only here, through these thin adapters.

pub mod book_only;
pub mod matchcore;
pub mod orderbook_rs;
pub mod simex;

use crate::fills::FillSink;
use crate::workload::{Op, Workload};

/// How an adapter is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Keep what is needed to report fills: id tables, and for one engine a trade listener.
    pub collect_fills: bool,
    /// `EngineConfig::orders_max` of simex's full path: the most open orders, which also sizes
    /// the order-id table up front.
    pub simex_orders_max: u32,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup { collect_fills: false, simex_orders_max: simex_engine::EngineConfig::default().orders_max }
    }
}

pub trait Adapter: Sized {
    /// A fresh engine ready for `workload`.
    fn new(workload: &Workload, setup: &Setup) -> Self;

    /// Applies one command, reporting its fills to `fills`; returns whether the engine rejected it.
    fn apply<S: FillSink>(&mut self, op: &Op, fills: &mut S) -> bool;

    /// Asserts the engine's own invariants, where it has a check for them. Called once after the
    /// verification pass, never while timing.
    fn check_invariants(&self) {}
}

/// The engines measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// `simex_engine::Engine`: risk checks, ledger, positions and the book.
    SimexFull,
    /// simex's `FastBook` under a minimal matcher: the book alone.
    SimexBook,
    Matchcore,
    OrderbookRs,
}

impl EngineKind {
    pub const ALL: [EngineKind; 4] =
        [EngineKind::SimexFull, EngineKind::SimexBook, EngineKind::Matchcore, EngineKind::OrderbookRs];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::SimexFull => "simex full path",
            EngineKind::SimexBook => "simex book alone",
            EngineKind::Matchcore => "matchcore 0.4.0",
            EngineKind::OrderbookRs => "orderbook-rs 0.15.3",
        }
    }

    /// Short name for the command line.
    pub fn key(self) -> &'static str {
        match self {
            EngineKind::SimexFull => "simex",
            EngineKind::SimexBook => "book",
            EngineKind::Matchcore => "matchcore",
            EngineKind::OrderbookRs => "orderbook-rs",
        }
    }

    pub fn from_key(key: &str) -> Option<EngineKind> {
        EngineKind::ALL.into_iter().find(|e| e.key() == key)
    }
}
