//! The exchange-core throughput mix: one symbol, about a thousand resting orders, mostly moves.
//!
//! exchange-core publishes its throughput as "single symbol, 3M commands: 9% GTC, 3% IOC, 6% cancel,
//! 82% move, ~1K resting orders over ~750 price slots, 2K accounts". This is a port of the generator
//! behind those numbers (`TestOrdersGenerator` / `TestOrdersGeneratorSession` in its test sources),
//! with the draws on ChaCha8 instead of `java.util.Random`, so the stream is ours but its shape is
//! theirs:
//! - The generator keeps a model of the book ([`ModelBook`]) and regulates its size: while a side
//!   has fewer than half the target orders it adds GTC orders priced around the last trade (ask above,
//!   bid below, with a spread that is usually tight and sometimes wide) in 20% of commands, cancels
//!   in 10% and moves in 70%; otherwise it sends an IOC at the band edge (5%), a cancel (2.5%) or a
//!   move (92.5%). The published mix is what this settles to.
//! - Cancels and moves pick among the 512 oldest resting orders; a move shifts the price 1% of the
//!   way to the last trade price (at least one tick), which is what makes orders cross.
//! - A move is a cancel-replace to the new price with the open quantity unchanged.
//! - Later versions of the generator turn one of the move draws into a "reduce" command; the
//!   published mix has none (its 82% moves match today's moves plus reduces), so here it is a move.
//! - The warm-up is every command sent until the book first reaches its target size; the measured
//!   part is the next `commands` commands.
//! - exchange-core draws each symbol's starting price at random (10^3.3 to 10^6.3); here it is a
//!   parameter, 100,000 ticks by default, which gives the published book: ~1,000 resting orders on
//!   ~750 levels (it is the price scale, through the ±5% spread of new orders, that sets the level
//!   count).

use crate::fills::{FillSink, Trade};
use crate::model::ModelBook;
use crate::{Op, Side, Tif, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Measured commands after the warm-up.
    pub commands: usize,
    pub accounts: u32,
    /// Resting orders the generator aims for, both sides together.
    pub target_orders: usize,
    /// First "last trade price", in ticks. It sets the scale of everything: orders are spread over
    /// ±5% of it (at most ±10,000 ticks), so it decides how many distinct levels the book has.
    pub start_price: i64,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params { commands: 3_000_000, accounts: 2_000, target_orders: 1_000, start_price: 100_000, seed: 23 }
    }
}

/// exchange-core re-reads the book size every this many commands.
const SIZE_CHECK_EVERY: usize = 512;
/// Cancels and moves choose among this many of the oldest resting orders.
const PICK_WINDOW: usize = 512;
/// A move goes this fraction of the way to the last trade price.
const CENTRAL_MOVE_ALPHA: f64 = 0.01;

pub fn generate(params: &Params) -> Workload {
    let mut generator = Generator::new(params);
    let mut warmup = Vec::new();
    let mut measured = Vec::with_capacity(params.commands);
    while measured.len() < params.commands {
        let (op, is_measured) = generator.next_op();
        if is_measured {
            measured.push(op);
        } else {
            warmup.push(op);
        }
    }
    Workload {
        name: "exchange-core".into(),
        accounts: params.accounts,
        max_client_id: generator.session.next_id - 1,
        warmup,
        measured,
    }
}

/// The generator as an endless stream, for a client that sends commands as it makes them
/// (`simex-loadgen`): each command is applied to the generator's own model book as it is made, as
/// [`generate`] does, so the stream is the same. `Params::commands` is not used.
pub struct Generator {
    session: Session,
    fills: Fills,
    generated: usize,
    size_check_every: usize,
    next_size_check: usize,
}

impl Generator {
    pub fn new(params: &Params) -> Generator {
        let size_check_every = SIZE_CHECK_EVERY.min(params.target_orders + 1);
        Generator {
            session: Session::new(params),
            fills: Fills::default(),
            generated: 0,
            size_check_every,
            next_size_check: size_check_every,
        }
    }

    /// The next command, and whether it is past the warm-up (the book has reached its target size
    /// once): exchange-core measures only those.
    pub fn next_op(&mut self) -> (Op, bool) {
        let session = &mut self.session;
        let op = loop {
            if let Some(op) = session.next_op() {
                break op;
            }
        };
        self.fills.trades.clear();
        let rejected = session.book.apply(&op, &mut self.fills);
        assert!(!rejected, "the generator sent a command its own book rejects: {op:?}");
        session.after(&op, &self.fills.trades);
        self.generated += 1;
        if self.generated >= self.next_size_check {
            self.next_size_check += self.size_check_every;
            session.check_size();
        }
        (op, session.filled)
    }

    /// The last trade price of the generator's model (the start price before any trade), in ticks.
    pub fn last_trade_price(&self) -> i64 {
        self.session.last_trade_price
    }
}

#[derive(Default)]
struct Fills {
    trades: Vec<Trade>,
}

impl FillSink for Fills {
    const COLLECTS: bool = true;

    fn fill(&mut self, trade: Trade) {
        self.trades.push(trade);
    }
}

struct Session {
    rng: ChaCha8Rng,
    book: ModelBook,
    active: ActiveOrders,
    /// Limit price of every GTC order, by client id.
    prices: Vec<i64>,
    accounts: u32,
    target_half: i64,
    min_price: i64,
    max_price: i64,
    price_deviation: i64,
    last_trade_price: i64,
    /// -1, 0 or +1: tilts new orders towards bids (+1) or asks (-1) after a trade at a band edge.
    price_direction: i64,
    /// Book size as last checked, per side.
    last_size: [i64; 2],
    /// Whether the book has reached its target size once; from then on commands are measured.
    filled: bool,
    next_id: u32,
}

impl Session {
    fn new(params: &Params) -> Session {
        let rng = ChaCha8Rng::seed_from_u64(params.seed);
        let price = params.start_price;
        let price_deviation = ((price as f64 * 0.05) as i64).min(10_000);
        Session {
            rng,
            book: ModelBook::new(),
            active: ActiveOrders::default(),
            prices: vec![0],
            accounts: params.accounts,
            target_half: (params.target_orders / 2) as i64,
            min_price: price - price_deviation * 5,
            max_price: price + price_deviation * 5,
            price_deviation,
            last_trade_price: price,
            price_direction: 0,
            last_size: [0, 0],
            filled: false,
            next_id: 1,
        }
    }

    fn check_size(&mut self) {
        self.last_size = [self.book.orders_on(Side::Buy) as i64, self.book.orders_on(Side::Sell) as i64];
    }

    /// exchange-core's `generateRandomOrder`; `None` when there is nothing to cancel or move.
    fn next_op(&mut self) -> Option<Op> {
        let side = if self.rng.gen_range(0..4) + self.price_direction >= 2 { Side::Buy } else { Side::Sell };
        let lacking = self.target_half - self.last_size[side.index()];
        let require_fast_fill = !self.filled || lacking > (PICK_WINDOW as i64).min(self.target_half * 3 / 4);
        let grow = lacking > 0;
        if !self.filled && !grow {
            self.filled = true;
        }
        let q = self.rng.gen_range(
            0..match (grow, require_fast_fill) {
                (true, true) => 2,
                (true, false) => 10,
                (false, _) => 40,
            },
        );
        if q < 2 {
            let account = 1 + self.rng.gen_range(0..self.accounts);
            let id = self.next_id;
            self.next_id += 1;
            let qty = 1 + self.rng.gen_range(0..6) * self.rng.gen_range(0..6) * self.rng.gen_range(0..6);
            self.prices.push(0);
            if grow {
                let price = self.last_trade_price + self.price_offset(side);
                self.prices[id as usize] = price;
                self.active.insert(id, account);
                return Some(Op::New { id, account, side, tif: Tif::Gtc, price, qty });
            }
            let price = match side {
                Side::Buy => self.max_price,
                Side::Sell => self.min_price,
            };
            return Some(Op::New { id, account, side, tif: Tif::Ioc, price, qty });
        }
        let window = self.active.len().min(PICK_WINDOW);
        if window == 0 {
            return None;
        }
        let id = self.active.nth(self.rng.gen_range(0..window));
        let account = self.active.account(id);
        if q == 2 {
            self.active.remove(id);
            return Some(Op::Cancel { id, account });
        }
        let previous = self.prices[id as usize];
        let towards = (self.last_trade_price - previous) as f64 * CENTRAL_MOVE_ALPHA;
        let shift = match previous.cmp(&self.last_trade_price) {
            std::cmp::Ordering::Greater => towards.floor() as i64,
            std::cmp::Ordering::Less => towards.ceil() as i64,
            std::cmp::Ordering::Equal => self.rng.gen_range(0..2) * 2 - 1,
        };
        let price = previous + shift;
        self.prices[id as usize] = price;
        let qty = self.book.open_qty(id).expect("an active order rests");
        Some(Op::Replace { id, account, price, qty })
    }

    /// Offset of a new GTC order from the last trade price: four uniform draws averaged over a
    /// spread whose width is itself random (squared, so usually tight), on the order's own side.
    fn price_offset(&mut self, side: Side) -> i64 {
        let width = 1 + (self.rng.gen::<f64>().powi(2) * self.price_deviation as f64) as i64;
        let mut offset = 0;
        for _ in 0..4 {
            offset += self.rng.gen_range(0..width);
        }
        offset = offset / 4 * 2 - width;
        if (offset > 0) ^ (side == Side::Sell) {
            offset = -offset;
        }
        offset
    }

    /// exchange-core's trade-event handler: forget completed orders, follow the last trade price.
    fn after(&mut self, op: &Op, trades: &[Trade]) {
        for trade in trades {
            if !self.book.is_resting(trade.maker) {
                self.active.remove(trade.maker);
            }
            self.last_trade_price = trade.price.clamp(self.min_price, self.max_price);
            if trade.price <= self.min_price {
                self.price_direction = 1;
            } else if trade.price >= self.max_price {
                self.price_direction = -1;
            }
        }
        match *op {
            Op::New { id, tif: Tif::Gtc, .. } | Op::Replace { id, .. } => {
                if !self.book.is_resting(id) {
                    self.active.remove(id);
                }
            }
            // exchange-core re-reads the book size whenever an IOC leaves a remainder.
            Op::New { id, tif: Tif::Ioc, qty, .. } => {
                let filled: i64 = trades.iter().filter(|t| t.taker == id).map(|t| t.qty).sum();
                if filled < qty {
                    self.check_size();
                }
            }
            Op::Cancel { .. } => {}
        }
    }
}

/// Resting GTC orders in the order they were placed (ids grow, so by id), with the k-th oldest
/// found in O(log n): a Fenwick tree over ids counting the live ones.
#[derive(Default)]
struct ActiveOrders {
    /// 1-based Fenwick tree over client ids.
    tree: Vec<i32>,
    /// Owner by client id; 0 when not active.
    owner: Vec<u32>,
    len: usize,
}

impl ActiveOrders {
    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, id: u32, account: u32) {
        let index = id as usize;
        if index >= self.owner.len() {
            self.grow(index + 1);
        }
        debug_assert_eq!(self.owner[index], 0);
        self.owner[index] = account;
        self.len += 1;
        self.add(index, 1);
    }

    fn remove(&mut self, id: u32) {
        let index = id as usize;
        if index < self.owner.len() && self.owner[index] != 0 {
            self.owner[index] = 0;
            self.len -= 1;
            self.add(index, -1);
        }
    }

    fn account(&self, id: u32) -> u32 {
        self.owner[id as usize]
    }

    /// The id of the `k`-th oldest active order, from 0.
    fn nth(&self, k: usize) -> u32 {
        debug_assert!(k < self.len);
        let n = self.tree.len() - 1;
        let mut position = 0usize;
        let mut remaining = k as i32 + 1;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = position + step;
            if next <= n && self.tree[next] < remaining {
                position = next;
                remaining -= self.tree[next];
            }
            step >>= 1;
        }
        // Fenwick positions are id + 1.
        position as u32
    }

    fn add(&mut self, index: usize, delta: i32) {
        let n = self.tree.len() - 1;
        let mut i = index + 1;
        while i <= n {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Rebuilds the tree for at least `ids` ids, doubling so growth is amortised.
    fn grow(&mut self, ids: usize) {
        let size = ids.next_power_of_two().max(1024);
        self.owner.resize(size, 0);
        self.tree = vec![0; size + 1];
        for (index, &owner) in self.owner.iter().enumerate() {
            self.tree[index + 1] = i32::from(owner != 0);
        }
        for i in 1..=size {
            let parent = i + (i & i.wrapping_neg());
            if parent <= size {
                self.tree[parent] += self.tree[i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_orders_find_the_kth_oldest() {
        let mut active = ActiveOrders::default();
        for id in 1..=3000 {
            active.insert(id, 7);
        }
        for id in (1..=3000).filter(|id| id % 3 != 0) {
            active.remove(id);
        }
        assert_eq!(active.len(), 1000);
        assert_eq!(active.nth(0), 3);
        assert_eq!(active.nth(1), 6);
        assert_eq!(active.nth(999), 3000);
        assert_eq!(active.account(6), 7);
        active.insert(5000, 9);
        assert_eq!(active.nth(1000), 5000);
    }

    #[test]
    fn small_stream_is_deterministic_and_shaped_like_the_published_mix() {
        let params = Params { commands: 60_000, ..Params::default() };
        let a = generate(&params);
        let b = generate(&params);
        assert_eq!(a.measured, b.measured);
        assert_eq!(a.warmup, b.warmup);
        let mix = a.mix();
        assert_eq!(mix.total(), 60_000);
        let share = |n: usize| n as f64 / mix.total() as f64;
        assert!(share(mix.replace) > 0.7, "{mix:?}");
        assert!(share(mix.gtc) > 0.02 && share(mix.ioc) > 0.01, "{mix:?}");
        assert!(share(mix.cancel) > 0.02, "{mix:?}");
    }
}
