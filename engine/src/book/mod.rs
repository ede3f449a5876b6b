//! Price-time priority order books.
//!
//! A book orders resting orders; it does not own them. It holds [`Handle`]s into the engine's
//! `OrderStore` together with the price and open quantity it needs for levels, and answers two
//! questions: which order is first on a side, and what the levels are. Matching, risk and settlement
//! live in the engine, so every book implementation shares them.
//!
//! Two implementations exist and must behave identically (the differential test feeds both the
//! same commands and compares events and state hashes):
//! - [`FastBook`]: levels in a sorted vector with the best price at the end, orders in intrusive FIFO
//!   lists. Near-touch inserts and removes move few bytes; nothing allocates in steady state.
//! - [`ReferenceBook`]: one sorted vector of orders per side, re-sorted on every insert. Obviously
//!   correct and slow; it exists to check the fast one.
//!
//! # Ordering invariant
//! Within a side, orders are ordered by price (best first), then by the time they joined their
//! level. Reducing an order's quantity keeps its place; anything else that changes it (a new price, a
//! larger quantity) removes it and inserts it at the tail.

mod fast;
mod reference;

pub use fast::FastBook;
pub use reference::ReferenceBook;

use crate::order::Handle;
use crate::types::Side;

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LevelView {
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub order_count: u32,
}

pub trait OrderBook {
    fn with_capacity(orders: usize) -> Self;
    /// Adds an order at the tail of its price level.
    fn insert(&mut self, handle: Handle, side: Side, price_ticks: i64, qty_lots: i64);
    /// Removes an order with `qty_lots` still open.
    fn remove(&mut self, handle: Handle, side: Side, price_ticks: i64, qty_lots: i64);
    /// Lowers an order's open quantity by `by_lots`, keeping its place.
    fn reduce(&mut self, handle: Handle, side: Side, price_ticks: i64, by_lots: i64);
    /// The best price on a side and the first order there.
    fn best(&self, side: Side) -> Option<(i64, Handle)>;
    /// Visits orders in priority order while `visit` returns true.
    fn scan(&self, side: Side, visit: impl FnMut(i64, Handle) -> bool);
    /// Visits levels best first while `visit` returns true.
    fn levels(&self, side: Side, visit: impl FnMut(LevelView) -> bool);
    /// Checks internal consistency against each order's open quantity.
    fn check(&self, open_lots: impl Fn(Handle) -> i64);
}
