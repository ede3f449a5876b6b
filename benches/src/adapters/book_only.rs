//! The book-alone measurement: simex's `FastBook` under the smallest price-time matcher that does
//! the workload's job, with no risk checks, no ledger, no positions and no events.
//!
//! This is what the matchcore and orderbook-rs numbers should be compared with when the question is
//! "how fast is the book": those engines are books too, with nothing around them. Orders live in a
//! slab (a vector with a free list) addressed by the same `u32` handles the engine uses, and client
//! ids map to handles through a flat vector. Semantics are the engine's: trades at the resting
//! price; an IOC remainder is dropped; a replace that only lowers the quantity keeps its place; any
//! other replace goes to the back of its new level and may trade on the way; a replace that changes
//! nothing, and a cancel or replace of an order that is not resting, are rejected.

use super::simex::side;
use super::{Adapter, Setup};
use crate::fills::{FillSink, Trade};
use crate::workload::{Op, Tif, Workload};
use simex_engine::order::{Handle, NIL};
use simex_engine::{FastBook, OrderBook};

#[derive(Clone, Copy, Debug)]
struct Resting {
    client: u32,
    side: simex_engine::Side,
    price: i64,
    open: i64,
}

pub struct BookOnly {
    book: FastBook,
    slots: Vec<Resting>,
    free: Vec<Handle>,
    /// Handle of each client id's resting order, or `NIL`.
    handles: Vec<Handle>,
}

impl BookOnly {
    fn allocate(&mut self, order: Resting) -> Handle {
        match self.free.pop() {
            Some(handle) => {
                self.slots[handle as usize] = order;
                handle
            }
            None => {
                self.slots.push(order);
                (self.slots.len() - 1) as Handle
            }
        }
    }

    fn release(&mut self, handle: Handle) {
        self.handles[self.slots[handle as usize].client as usize] = NIL;
        self.free.push(handle);
    }

    /// Trades `taker` (not in the book) while prices cross; returns its open quantity after.
    fn take<S: FillSink>(&mut self, taker: Resting, fills: &mut S) -> i64 {
        let mut open = taker.open;
        let opposite = taker.side.opposite();
        while open > 0 {
            let Some((price, maker)) = self.book.best(opposite) else {
                break;
            };
            if !taker.side.crosses(taker.price, price) {
                break;
            }
            let resting = &mut self.slots[maker as usize];
            let qty = open.min(resting.open);
            fills.fill(Trade { taker: taker.client, maker: resting.client, price, qty });
            open -= qty;
            resting.open -= qty;
            if resting.open == 0 {
                self.book.remove(maker, opposite, price, qty);
                self.release(maker);
            } else {
                self.book.reduce(maker, opposite, price, qty);
            }
        }
        open
    }

    /// Matches an incoming order and rests what is left if it may.
    fn enter<S: FillSink>(&mut self, order: Resting, rests: bool, fills: &mut S) {
        let open = self.take(order, fills);
        if open > 0 && rests {
            let handle = self.allocate(Resting { open, ..order });
            self.handles[order.client as usize] = handle;
            self.book.insert(handle, order.side, order.price, open);
        }
    }
}

impl Adapter for BookOnly {
    fn new(workload: &Workload, _setup: &Setup) -> BookOnly {
        BookOnly {
            book: FastBook::with_capacity(1 << 16),
            slots: Vec::with_capacity(1 << 16),
            free: Vec::with_capacity(1 << 16),
            handles: vec![NIL; workload.max_client_id as usize + 1],
        }
    }

    #[inline]
    fn apply<S: FillSink>(&mut self, op: &Op, fills: &mut S) -> bool {
        match *op {
            Op::New { id, side: order_side, tif, price, qty, .. } => {
                if self.handles[id as usize] != NIL || qty <= 0 || price <= 0 {
                    return true;
                }
                let order = Resting { client: id, side: side(order_side), price, open: qty };
                self.enter(order, tif == Tif::Gtc, fills);
                false
            }
            Op::Cancel { id, .. } => {
                let handle = self.handles[id as usize];
                if handle == NIL {
                    return true;
                }
                let order = self.slots[handle as usize];
                self.book.remove(handle, order.side, order.price, order.open);
                self.release(handle);
                false
            }
            Op::Replace { id, price, qty, .. } => {
                let handle = self.handles[id as usize];
                if handle == NIL || qty <= 0 || price <= 0 {
                    return true;
                }
                let order = self.slots[handle as usize];
                if price == order.price && qty == order.open {
                    return true;
                }
                if price == order.price && qty < order.open {
                    self.book.reduce(handle, order.side, price, order.open - qty);
                    self.slots[handle as usize].open = qty;
                    return false;
                }
                self.book.remove(handle, order.side, order.price, order.open);
                self.release(handle);
                let moved = Resting { price, open: qty, ..order };
                self.enter(moved, true, fills);
                false
            }
        }
    }
}
