//! # simex-workload
//!
//! Engine-neutral command streams, generated deterministically from a seed. A crate of its own,
//! with no dependency but `rand`, so that the engine benchmark (`simex-benches`) and the load
//! generator (`simex-loadgen` in `simex-tools`) draw the exchange-core mix from one generator
//! without the load generator pulling in the benchmark's engines.
//!
//! A [`Workload`] is a list of [`Op`]s that every adapter understands: a new limit order (GTC or
//! IOC), a cancel, or a cancel-replace to a new price and open quantity. Client order ids are dense
//! from 1, so adapters can map them to engine ids with a flat vector. `warmup` ops bring the engine
//! to the state the workload is meant to measure and are never timed.
//!
//! The exchange-core generator lives in [`exchange_core`] (the flash1 scenarios stay with the
//! benchmark); [`model`] is a plain price-time book that the exchange-core generator needs to know
//! the market it is generating for, and that also gives an independent reference for fills and
//! book sizes; [`fills`] is the engine-neutral shape of a fill.

pub mod exchange_core;
pub mod fills;
pub mod model;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// Whether an order of this side limited at `limit` may trade with a resting order at `resting`.
    pub fn crosses(self, limit: i64, resting: i64) -> bool {
        match self {
            Side::Buy => resting <= limit,
            Side::Sell => resting >= limit,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::Buy => 0,
            Side::Sell => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tif {
    /// Rests until cancelled.
    Gtc,
    /// Trades what it can at once; the rest is cancelled.
    Ioc,
}

/// One command. `account` is the owner: a portfolio in simex, ignored by the other engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    New {
        id: u32,
        account: u32,
        side: Side,
        tif: Tif,
        price: i64,
        qty: i64,
    },
    Cancel {
        id: u32,
        account: u32,
    },
    /// Cancel-replace: the order moves to `price` with `qty` open, losing time priority unless it
    /// only shrinks in place.
    Replace {
        id: u32,
        account: u32,
        price: i64,
        qty: i64,
    },
}

impl Op {
    pub fn id(&self) -> u32 {
        match *self {
            Op::New { id, .. } | Op::Cancel { id, .. } | Op::Replace { id, .. } => id,
        }
    }
}

/// A named command stream.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    /// Accounts 1..=accounts own the orders.
    pub accounts: u32,
    /// Client order ids are 1..=max_client_id.
    pub max_client_id: u32,
    /// Brings the book to its working state; applied before timing starts.
    pub warmup: Vec<Op>,
    /// The commands that are timed.
    pub measured: Vec<Op>,
}

/// How many commands of each kind a stream holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix {
    pub gtc: usize,
    pub ioc: usize,
    pub cancel: usize,
    pub replace: usize,
}

impl Mix {
    pub fn of(ops: &[Op]) -> Mix {
        let mut mix = Mix::default();
        for op in ops {
            match op {
                Op::New { tif: Tif::Gtc, .. } => mix.gtc += 1,
                Op::New { tif: Tif::Ioc, .. } => mix.ioc += 1,
                Op::Cancel { .. } => mix.cancel += 1,
                Op::Replace { .. } => mix.replace += 1,
            }
        }
        mix
    }

    pub fn total(&self) -> usize {
        self.gtc + self.ioc + self.cancel + self.replace
    }
}

impl Workload {
    pub fn mix(&self) -> Mix {
        Mix::of(&self.measured)
    }

    /// Keeps only the first `commands` measured commands (for quick runs of a large stream).
    pub fn truncate(&mut self, commands: usize) {
        self.measured.truncate(commands);
    }
}
