//! The production book: sorted level vectors with the best price last, intrusive FIFO lists.
//!
//! # Layout
//! Each side is a `Vec<Level>` sorted so the best price is the last element: bids ascending, asks
//! descending. Most activity is at or near the touch, so inserting or removing a level there moves
//! few bytes, and the best level is `last()`. A level is found by binary search. Orders in a level
//! form a doubly linked list through `links`, indexed by handle, so removal from the middle is O(1).
//!
//! # Performance
//! Nothing allocates once `levels` and `links` have grown to their working size. A level insert far
//! from the touch costs a `memmove` of the levels behind it (32 bytes each). To avoid paying it
//! again and again when orders come and go at the same prices (the common case: a market moves over
//! a bounded set of prices), a level that empties is kept in place as an empty level and reused by
//! the next order at its price; only empty levels at the best end are popped at once (so `last()`
//! is always the best live level), and the vector is compacted when empty levels outnumber live
//! ones.
//!
//! # Known limitations
//! A book with a very wide, very deep ladder (hundreds of thousands of levels) would pay for the
//! `memmove`; a ladder indexed by price offset would then be the better layout.

use super::{LevelView, OrderBook};
use crate::order::{Handle, NIL};
use crate::types::Side;

#[derive(Clone, Copy, Debug)]
struct Level {
    price_ticks: i64,
    qty_lots: i64,
    order_count: u32,
    head: Handle,
    tail: Handle,
}

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: Handle,
    next: Handle,
}

#[derive(Debug, Default)]
pub struct FastBook {
    /// Ascending by price: best bid last. May hold empty levels, never at the end.
    bids: Vec<Level>,
    /// Descending by price: best ask last. May hold empty levels, never at the end.
    asks: Vec<Level>,
    links: Vec<Link>,
    /// Empty levels kept in `bids` and `asks`.
    empty_bids: usize,
    empty_asks: usize,
}

/// Compaction happens only past this many empty levels on a side.
const EMPTY_LEVELS_SLACK: usize = 64;

const LEVELS_INITIAL: usize = 4096;

impl FastBook {
    fn side(&self, side: Side) -> &Vec<Level> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Vec<Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Index of the level at `price_ticks`, or where it would be inserted.
    fn search(levels: &[Level], side: Side, price_ticks: i64) -> Result<usize, usize> {
        // Fast path: the touch and its neighbour are the common case.
        if let Some(last) = levels.last() {
            if last.price_ticks == price_ticks {
                return Ok(levels.len() - 1);
            }
            let better = match side {
                Side::Buy => price_ticks > last.price_ticks,
                Side::Sell => price_ticks < last.price_ticks,
            };
            if better {
                return Err(levels.len());
            }
        }
        match side {
            Side::Buy => levels.binary_search_by(|level| level.price_ticks.cmp(&price_ticks)),
            Side::Sell => levels.binary_search_by(|level| price_ticks.cmp(&level.price_ticks)),
        }
    }

    fn empty_count_mut(&mut self, side: Side) -> &mut usize {
        match side {
            Side::Buy => &mut self.empty_bids,
            Side::Sell => &mut self.empty_asks,
        }
    }

    /// Pops empty levels off the best end, so the last level is always live.
    fn trim(&mut self, side: Side) {
        let mut popped = 0;
        let levels = self.side_mut(side);
        while levels.last().is_some_and(|level| level.order_count == 0) {
            levels.pop();
            popped += 1;
        }
        *self.empty_count_mut(side) -= popped;
    }

    /// Drops empty levels once they outnumber live ones.
    fn compact_if_sparse(&mut self, side: Side) {
        let empty = *self.empty_count_mut(side);
        let levels = self.side_mut(side);
        if empty > EMPTY_LEVELS_SLACK && empty > levels.len() - empty {
            levels.retain(|level| level.order_count > 0);
            *self.empty_count_mut(side) = 0;
        }
    }

    fn ensure_link(&mut self, handle: Handle) {
        let index = handle as usize;
        if index >= self.links.len() {
            self.links.resize(index + 1, Link { prev: NIL, next: NIL });
        }
    }
}

impl OrderBook for FastBook {
    fn with_capacity(orders: usize) -> FastBook {
        FastBook {
            bids: Vec::with_capacity(LEVELS_INITIAL),
            asks: Vec::with_capacity(LEVELS_INITIAL),
            links: Vec::with_capacity(orders),
            empty_bids: 0,
            empty_asks: 0,
        }
    }

    fn insert(&mut self, handle: Handle, side: Side, price_ticks: i64, qty_lots: i64) {
        debug_assert!(qty_lots > 0);
        self.ensure_link(handle);
        let index = match FastBook::search(self.side(side), side, price_ticks) {
            Ok(index) => {
                if self.side(side)[index].order_count == 0 {
                    *self.empty_count_mut(side) -= 1;
                }
                index
            }
            Err(_) => {
                self.compact_if_sparse(side);
                let levels = self.side_mut(side);
                let index = FastBook::search(levels, side, price_ticks).expect_err("no level at this price");
                levels.insert(index, Level { price_ticks, qty_lots: 0, order_count: 0, head: NIL, tail: NIL });
                index
            }
        };
        let level = &mut self.side_mut(side)[index];
        let tail = level.tail;
        level.qty_lots += qty_lots;
        level.order_count += 1;
        if tail == NIL {
            level.head = handle;
        }
        level.tail = handle;
        self.links[handle as usize] = Link { prev: tail, next: NIL };
        if tail != NIL {
            self.links[tail as usize].next = handle;
        }
    }

    fn remove(&mut self, handle: Handle, side: Side, price_ticks: i64, qty_lots: i64) {
        let link = self.links[handle as usize];
        if link.prev != NIL {
            self.links[link.prev as usize].next = link.next;
        }
        if link.next != NIL {
            self.links[link.next as usize].prev = link.prev;
        }
        let levels = self.side_mut(side);
        let index = FastBook::search(levels, side, price_ticks).expect("removed order's level exists");
        let level = &mut levels[index];
        if level.head == handle {
            level.head = link.next;
        }
        if level.tail == handle {
            level.tail = link.prev;
        }
        level.qty_lots -= qty_lots;
        level.order_count -= 1;
        if level.order_count == 0 {
            debug_assert!(level.qty_lots == 0 && level.head == NIL);
            *self.empty_count_mut(side) += 1;
            self.trim(side);
        }
    }

    fn reduce(&mut self, _handle: Handle, side: Side, price_ticks: i64, by_lots: i64) {
        let levels = self.side_mut(side);
        let index = FastBook::search(levels, side, price_ticks).expect("reduced order's level exists");
        levels[index].qty_lots -= by_lots;
        debug_assert!(levels[index].qty_lots > 0);
    }

    fn best(&self, side: Side) -> Option<(i64, Handle)> {
        self.side(side).last().map(|level| (level.price_ticks, level.head))
    }

    fn scan(&self, side: Side, mut visit: impl FnMut(i64, Handle) -> bool) {
        for level in self.side(side).iter().rev() {
            let mut handle = level.head;
            while handle != NIL {
                if !visit(level.price_ticks, handle) {
                    return;
                }
                handle = self.links[handle as usize].next;
            }
        }
    }

    fn levels(&self, side: Side, mut visit: impl FnMut(LevelView) -> bool) {
        for level in self.side(side).iter().rev().filter(|level| level.order_count > 0) {
            let view =
                LevelView { price_ticks: level.price_ticks, qty_lots: level.qty_lots, order_count: level.order_count };
            if !visit(view) {
                return;
            }
        }
    }

    fn check(&self, open_lots: impl Fn(Handle) -> i64) {
        for side in [Side::Buy, Side::Sell] {
            let levels = self.side(side);
            for pair in levels.windows(2) {
                match side {
                    Side::Buy => assert!(pair[0].price_ticks < pair[1].price_ticks, "bid levels out of order"),
                    Side::Sell => assert!(pair[0].price_ticks > pair[1].price_ticks, "ask levels out of order"),
                }
            }
            assert!(levels.last().is_none_or(|level| level.order_count > 0), "empty level at the best end");
            let empty = levels.iter().filter(|level| level.order_count == 0).count();
            let counted = match side {
                Side::Buy => self.empty_bids,
                Side::Sell => self.empty_asks,
            };
            assert_eq!(empty, counted, "empty level count");
            for level in levels {
                if level.order_count == 0 {
                    assert!(level.qty_lots == 0 && level.head == NIL && level.tail == NIL, "stale empty level");
                    continue;
                }
                let (mut count, mut qty, mut previous, mut handle) = (0u32, 0i64, NIL, level.head);
                while handle != NIL {
                    assert_eq!(self.links[handle as usize].prev, previous, "broken level list");
                    let lots = open_lots(handle);
                    assert!(lots > 0, "empty order resting in the book");
                    qty += lots;
                    count += 1;
                    previous = handle;
                    handle = self.links[handle as usize].next;
                }
                assert_eq!(level.tail, previous, "level tail is not the last order");
                assert!(count > 0, "empty level kept in the book");
                assert_eq!(count, level.order_count, "level order count");
                assert_eq!(qty, level.qty_lots, "level quantity");
            }
        }
    }
}
