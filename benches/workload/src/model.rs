//! A plain price-time order book: the workloads' model of the market.
//!
//! The exchange-core generator, like exchange-core's own, decides each command from the state of a
//! book it keeps while generating (which orders are alive, their open quantity, the last trade
//! price). Replaying any finished stream through the same model also gives a reference for fills and
//! book sizes that shares no code with simex.
//!
//! Levels are `BTreeMap`s of FIFO queues. Cancels are lazy: a queue entry carries the epoch at which
//! the order joined the level and is skipped once the order has left or moved, so nothing is ever
//! searched for in a queue. Semantics match the engines measured: trades at the resting price, an
//! IOC remainder is dropped, a replace that only lowers the quantity keeps its place, any other
//! replace goes to the back of its new level and may trade on the way; a replace that changes
//! nothing, and a cancel or replace of an order that is not resting, are rejected.

#[cfg(test)]
use crate::fills::FillLog;
use crate::fills::{FillSink, RunLog, Trade};
use crate::{Op, Side, Tif, Workload};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Default)]
struct Level {
    /// (client id, epoch at insertion)
    queue: VecDeque<(u32, u32)>,
    live: u32,
}

#[derive(Clone, Copy, Debug)]
struct Order {
    side: Side,
    price: i64,
    open: i64,
    epoch: u32,
    resting: bool,
}

impl Default for Order {
    fn default() -> Order {
        Order { side: Side::Buy, price: 0, open: 0, epoch: 0, resting: false }
    }
}

#[derive(Debug, Default)]
pub struct ModelBook {
    bids: BTreeMap<i64, Level>,
    asks: BTreeMap<i64, Level>,
    orders: Vec<Order>,
    resting: [usize; 2],
}

impl ModelBook {
    pub fn new() -> ModelBook {
        ModelBook::default()
    }

    /// Open quantity of a resting order.
    pub fn open_qty(&self, id: u32) -> Option<i64> {
        self.orders.get(id as usize).filter(|o| o.resting).map(|o| o.open)
    }

    pub fn is_resting(&self, id: u32) -> bool {
        self.open_qty(id).is_some()
    }

    pub fn orders_on(&self, side: Side) -> usize {
        self.resting[side.index()]
    }

    pub fn levels_on(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }

    /// Applies one command, reporting fills to `fills`; returns whether it was rejected.
    pub fn apply(&mut self, op: &Op, fills: &mut impl FillSink) -> bool {
        match *op {
            Op::New { id, side, tif, price, qty, .. } => {
                let index = id as usize;
                if index >= self.orders.len() {
                    self.orders.resize(index + 1, Order::default());
                }
                if self.orders[index].resting || qty <= 0 || price <= 0 {
                    return true;
                }
                let order = &mut self.orders[index];
                order.side = side;
                order.price = price;
                order.open = qty;
                self.take(id, fills);
                if tif == Tif::Gtc && self.orders[index].open > 0 {
                    self.rest(id);
                }
                false
            }
            Op::Cancel { id, .. } => {
                if !self.is_resting(id) {
                    return true;
                }
                self.unrest(id);
                false
            }
            Op::Replace { id, price, qty, .. } => {
                let Some(open) = self.open_qty(id) else {
                    return true;
                };
                let order = self.orders[id as usize];
                if qty <= 0 || price <= 0 || (price == order.price && qty == open) {
                    return true;
                }
                if price == order.price && qty < open {
                    self.orders[id as usize].open = qty;
                    return false;
                }
                self.unrest(id);
                let order = &mut self.orders[id as usize];
                order.price = price;
                order.open = qty;
                self.take(id, fills);
                if self.orders[id as usize].open > 0 {
                    self.rest(id);
                }
                false
            }
        }
    }

    /// Trades order `id` (not resting) against the opposite side while prices cross.
    fn take(&mut self, id: u32, fills: &mut impl FillSink) {
        let taker = self.orders[id as usize];
        let mut open = taker.open;
        let opposite = taker.side.opposite();
        while open > 0 {
            let levels = match opposite {
                Side::Buy => &mut self.bids,
                Side::Sell => &mut self.asks,
            };
            let best = match opposite {
                Side::Buy => levels.last_entry(),
                Side::Sell => levels.first_entry(),
            };
            let Some(mut entry) = best else { break };
            let price = *entry.key();
            if !taker.side.crosses(taker.price, price) {
                break;
            }
            let level = entry.get_mut();
            while open > 0 {
                let Some(&(maker_id, epoch)) = level.queue.front() else {
                    break;
                };
                let maker = &mut self.orders[maker_id as usize];
                if !maker.resting || maker.epoch != epoch {
                    level.queue.pop_front();
                    continue;
                }
                let qty = open.min(maker.open);
                fills.fill(Trade { taker: id, maker: maker_id, price, qty });
                open -= qty;
                maker.open -= qty;
                if maker.open == 0 {
                    maker.resting = false;
                    level.queue.pop_front();
                    level.live -= 1;
                    self.resting[opposite.index()] -= 1;
                }
            }
            if level.live == 0 {
                entry.remove();
            }
        }
        self.orders[id as usize].open = open;
    }

    fn rest(&mut self, id: u32) {
        let order = &mut self.orders[id as usize];
        order.epoch = order.epoch.wrapping_add(1);
        order.resting = true;
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = levels.entry(order.price).or_default();
        level.queue.push_back((id, order.epoch));
        level.live += 1;
        self.resting[order.side.index()] += 1;
    }

    fn unrest(&mut self, id: u32) {
        let order = &mut self.orders[id as usize];
        debug_assert!(order.resting);
        order.resting = false;
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = levels.get_mut(&order.price).expect("resting order's level");
        level.live -= 1;
        if level.live == 0 {
            levels.remove(&order.price);
        }
        self.resting[order.side.index()] -= 1;
    }
}

/// Average and peak of the book's size over a run (both sides together).
#[derive(Debug, Clone, Copy, Default)]
pub struct BookStats {
    samples: u64,
    orders_sum: u64,
    levels_sum: u64,
    pub orders_peak: usize,
    pub levels_peak: usize,
}

impl BookStats {
    fn sample(&mut self, book: &ModelBook) {
        let orders = book.orders_on(Side::Buy) + book.orders_on(Side::Sell);
        let levels = book.levels_on(Side::Buy) + book.levels_on(Side::Sell);
        self.samples += 1;
        self.orders_sum += orders as u64;
        self.levels_sum += levels as u64;
        self.orders_peak = self.orders_peak.max(orders);
        self.levels_peak = self.levels_peak.max(levels);
    }

    pub fn orders_avg(&self) -> f64 {
        self.orders_sum as f64 / self.samples.max(1) as f64
    }

    pub fn levels_avg(&self) -> f64 {
        self.levels_sum as f64 / self.samples.max(1) as f64
    }
}

/// The model's fills, and its book sizes while the measured commands ran.
pub struct ModelRun {
    pub fills: RunLog,
    pub book: BookStats,
}

/// Book size is sampled every this many measured commands.
const SAMPLE_EVERY: usize = 256;

/// Replays a workload through the model.
pub fn replay(workload: &Workload) -> ModelRun {
    let mut book = ModelBook::new();
    let mut fills = RunLog::default();
    for op in &workload.warmup {
        let rejected = book.apply(op, &mut fills.warmup);
        fills.warmup.end_command(rejected);
    }
    let mut stats = BookStats::default();
    for (index, op) in workload.measured.iter().enumerate() {
        let rejected = book.apply(op, &mut fills.measured);
        fills.measured.end_command(rejected);
        if index % SAMPLE_EVERY == 0 {
            stats.sample(&book);
        }
    }
    ModelRun { fills, book: stats }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: u32, side: Side, tif: Tif, price: i64, qty: i64) -> Op {
        Op::New { id, account: 1, side, tif, price, qty }
    }

    fn trades(book: &mut ModelBook, op: Op) -> (bool, Vec<(u32, u32, i64, i64)>) {
        let mut log = FillLog::new();
        let rejected = book.apply(&op, &mut log);
        log.end_command(rejected);
        let fills = log.fills(0).iter().map(|t| (t.taker, t.maker, t.price, t.qty)).collect();
        (rejected, fills)
    }

    #[test]
    fn price_time_priority_limits_and_ioc() {
        let mut book = ModelBook::new();
        for (id, price) in [(1, 101), (2, 102), (3, 101), (4, 103)] {
            assert_eq!(trades(&mut book, new(id, Side::Sell, Tif::Gtc, price, 10)), (false, vec![]));
        }
        // Buy 102 x25: 101 first (1 then 3, by time), then 102; stops at its limit.
        assert_eq!(
            trades(&mut book, new(5, Side::Buy, Tif::Gtc, 102, 35)),
            (false, vec![(5, 1, 101, 10), (5, 3, 101, 10), (5, 2, 102, 10)])
        );
        assert_eq!(book.open_qty(5), Some(5));
        // An IOC beyond the book leaves nothing behind.
        assert_eq!(trades(&mut book, new(6, Side::Sell, Tif::Ioc, 90, 8)), (false, vec![(6, 5, 102, 5)]));
        assert!(!book.is_resting(6) && !book.is_resting(5));
        assert_eq!(book.levels_on(Side::Buy), 0);
        assert_eq!(book.orders_on(Side::Sell), 1);
    }

    #[test]
    fn cancel_replace_and_rejections() {
        let mut book = ModelBook::new();
        trades(&mut book, new(1, Side::Buy, Tif::Gtc, 100, 10));
        trades(&mut book, new(2, Side::Buy, Tif::Gtc, 100, 10));
        // Shrinking keeps the place; growing loses it.
        let shrink = Op::Replace { id: 1, account: 1, price: 100, qty: 4 };
        assert_eq!(trades(&mut book, shrink), (false, vec![]));
        assert!(trades(&mut book, shrink).0, "a replace that changes nothing");
        let grow = Op::Replace { id: 2, account: 1, price: 100, qty: 11 };
        assert_eq!(trades(&mut book, grow), (false, vec![]));
        assert_eq!(
            trades(&mut book, new(3, Side::Sell, Tif::Ioc, 100, 5)),
            (false, vec![(3, 1, 100, 4), (3, 2, 100, 1)])
        );
        // A replace that crosses trades as the taker.
        trades(&mut book, new(4, Side::Sell, Tif::Gtc, 105, 3));
        let cross = Op::Replace { id: 2, account: 1, price: 106, qty: 2 };
        assert_eq!(trades(&mut book, cross), (false, vec![(2, 4, 105, 2)]));
        assert_eq!(book.open_qty(4), Some(1));
        let cancel = Op::Cancel { id: 4, account: 1 };
        assert_eq!(trades(&mut book, cancel), (false, vec![]));
        assert!(trades(&mut book, cancel).0, "duplicate cancel");
        assert!(trades(&mut book, Op::Cancel { id: 2, account: 1 }).0, "filled order");
        assert_eq!(book.orders_on(Side::Buy) + book.orders_on(Side::Sell), 0);
    }
}
