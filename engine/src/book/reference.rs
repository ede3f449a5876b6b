//! The reference book: deliberately simple, obviously correct, slow.
//!
//! Each side is one vector of entries kept sorted by (price, arrival) with a full sort after every
//! insert. Levels are computed by walking it. It exists so that the differential test can check
//! [`super::FastBook`] against something with no cleverness in it.

use super::{LevelView, OrderBook};
use crate::order::Handle;
use crate::types::Side;

#[derive(Clone, Copy, Debug)]
struct Entry {
    price_ticks: i64,
    arrival: u64,
    handle: Handle,
    qty_lots: i64,
}

#[derive(Debug, Default)]
pub struct ReferenceBook {
    bids: Vec<Entry>,
    asks: Vec<Entry>,
    arrivals: u64,
}

impl ReferenceBook {
    fn side_mut(&mut self, side: Side) -> &mut Vec<Entry> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn side(&self, side: Side) -> &Vec<Entry> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }
}

impl OrderBook for ReferenceBook {
    fn with_capacity(_orders: usize) -> ReferenceBook {
        ReferenceBook::default()
    }

    fn insert(&mut self, handle: Handle, side: Side, price_ticks: i64, qty_lots: i64) {
        self.arrivals += 1;
        let arrival = self.arrivals;
        let entries = self.side_mut(side);
        entries.push(Entry { price_ticks, arrival, handle, qty_lots });
        match side {
            Side::Buy => entries.sort_by_key(|e| (std::cmp::Reverse(e.price_ticks), e.arrival)),
            Side::Sell => entries.sort_by_key(|e| (e.price_ticks, e.arrival)),
        }
    }

    fn remove(&mut self, handle: Handle, side: Side, _price_ticks: i64, _qty_lots: i64) {
        let entries = self.side_mut(side);
        let index = entries.iter().position(|e| e.handle == handle).expect("removed order is in the book");
        entries.remove(index);
    }

    fn reduce(&mut self, handle: Handle, side: Side, _price_ticks: i64, by_lots: i64) {
        let entries = self.side_mut(side);
        let entry = entries.iter_mut().find(|e| e.handle == handle).expect("reduced order is in the book");
        entry.qty_lots -= by_lots;
    }

    fn best(&self, side: Side) -> Option<(i64, Handle)> {
        self.side(side).first().map(|e| (e.price_ticks, e.handle))
    }

    fn scan(&self, side: Side, mut visit: impl FnMut(i64, Handle) -> bool) {
        for entry in self.side(side) {
            if !visit(entry.price_ticks, entry.handle) {
                return;
            }
        }
    }

    fn levels(&self, side: Side, mut visit: impl FnMut(LevelView) -> bool) {
        let mut current: Option<LevelView> = None;
        for entry in self.side(side) {
            match &mut current {
                Some(level) if level.price_ticks == entry.price_ticks => {
                    level.qty_lots += entry.qty_lots;
                    level.order_count += 1;
                }
                _ => {
                    if let Some(level) = current.take() {
                        if !visit(level) {
                            return;
                        }
                    }
                    current =
                        Some(LevelView { price_ticks: entry.price_ticks, qty_lots: entry.qty_lots, order_count: 1 });
                }
            }
        }
        if let Some(level) = current {
            visit(level);
        }
    }

    fn check(&self, open_lots: impl Fn(Handle) -> i64) {
        for side in [Side::Buy, Side::Sell] {
            for entry in self.side(side) {
                assert_eq!(entry.qty_lots, open_lots(entry.handle), "reference book quantity");
            }
        }
    }
}
