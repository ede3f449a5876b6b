//! The round-trip mix: order flow shaped like a market maker's, for the open-loop latency runs.
//!
//! The exchange-core mix is 82% moves and is built to stress a book's throughput; a latency run
//! wants the commands a venue mostly sees instead: quotes that rest, cancels of them, and now and
//! then an order that takes liquidity. One symbol, its price held around a fixed middle:
//!
//! - 10%: an IOC that crosses: a buy limited 10 ticks above the middle (a sell 10 below), 1 to 20
//!   lots; it takes what rests within its limit and the rest is cancelled.
//! - the other 90%: a new GTC order that rests (a buy 1 to 50 ticks below the middle, a sell above,
//!   1 to 10 lots), or a cancel of a resting order picked at random. The choice leans towards
//!   whichever brings the book back to `target_orders`, so the book stays near that size.
//!
//! The warm-up places `target_orders` resting orders. Portfolios (`accounts`, each order's owner
//! drawn at random) are created before anything else. Every command is valid when sent: a
//! [`ModelBook`] follows the stream, so a cancel only names an order that still rests.

use crate::fills::NoFills;
use crate::workload::model::ModelBook;
use crate::workload::{Op, Side, Tif, Workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Measured commands after the warm-up.
    pub commands: usize,
    pub accounts: u32,
    /// Resting orders the stream keeps, both sides together.
    pub target_orders: usize,
    /// The middle price, in ticks.
    pub middle: i64,
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params { commands: 1_000_000, accounts: 1_000, target_orders: 1_000, middle: 100_000, seed: 23 }
    }
}

/// Share of crossing IOC orders, in percent.
const CROSSING_PERCENT: u32 = 10;
/// How far past the middle a crossing order's limit is, in ticks.
const CROSSING_REACH: i64 = 10;
/// Resting orders are placed 1 to this many ticks away from the middle.
const RESTING_DEPTH: i64 = 50;

pub fn generate(params: &Params) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut book = ModelBook::new();
    // (client id, account) of orders placed to rest; filled ones are dropped when picked.
    let mut resting: Vec<(u32, u32)> = Vec::with_capacity(params.target_orders * 2);
    let mut next_id = 1u32;
    let mut warmup = Vec::with_capacity(params.target_orders);
    let mut measured = Vec::with_capacity(params.commands);

    let new_resting = |rng: &mut ChaCha8Rng, next_id: &mut u32, resting: &mut Vec<(u32, u32)>| {
        let (id, account) = (*next_id, 1 + rng.gen_range(0..params.accounts));
        *next_id += 1;
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let offset = 1 + rng.gen_range(0..RESTING_DEPTH);
        let price = match side {
            Side::Buy => params.middle - offset,
            Side::Sell => params.middle + offset,
        };
        resting.push((id, account));
        Op::New { id, account, side, tif: Tif::Gtc, price, qty: 1 + rng.gen_range(0..10) }
    };

    while warmup.len() < params.target_orders {
        let op = new_resting(&mut rng, &mut next_id, &mut resting);
        assert!(!book.apply(&op, &mut NoFills), "the model rejected {op:?}");
        warmup.push(op);
    }
    while measured.len() < params.commands {
        let op = if rng.gen_range(0..100) < CROSSING_PERCENT {
            let (id, account) = (next_id, 1 + rng.gen_range(0..params.accounts));
            next_id += 1;
            let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let price = match side {
                Side::Buy => params.middle + CROSSING_REACH,
                Side::Sell => params.middle - CROSSING_REACH,
            };
            Op::New { id, account, side, tif: Tif::Ioc, price, qty: 1 + rng.gen_range(0..20) }
        } else {
            let open = book.orders_on(Side::Buy) + book.orders_on(Side::Sell);
            let target = params.target_orders as f64;
            let p_new = (0.5 + (target - open as f64) / (2.0 * target)).clamp(0.1, 0.9);
            let cancel = !rng.gen_bool(p_new);
            match cancel.then(|| pick_resting(&mut rng, &mut resting, &book)).flatten() {
                Some((id, account)) => Op::Cancel { id, account },
                None => new_resting(&mut rng, &mut next_id, &mut resting),
            }
        };
        assert!(!book.apply(&op, &mut NoFills), "the model rejected {op:?}");
        measured.push(op);
    }
    Workload { name: "round-trip mix".into(), accounts: params.accounts, max_client_id: next_id - 1, warmup, measured }
}

/// Takes a random order that still rests out of `resting`, dropping filled ones met on the way.
fn pick_resting(rng: &mut ChaCha8Rng, resting: &mut Vec<(u32, u32)>, book: &ModelBook) -> Option<(u32, u32)> {
    while !resting.is_empty() {
        let index = rng.gen_range(0..resting.len());
        let (id, account) = resting.swap_remove(index);
        if book.is_resting(id) {
            return Some((id, account));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::model;

    #[test]
    fn the_mix_rests_cancels_and_crosses_and_is_never_rejected() {
        let workload = generate(&Params { commands: 20_000, ..Params::default() });
        let mix = workload.mix();
        assert_eq!(mix.total(), 20_000);
        let share = |n: usize| n as f64 / mix.total() as f64;
        assert!((0.07..0.13).contains(&share(mix.ioc)), "{mix:?}");
        assert!(share(mix.gtc) > 0.35 && share(mix.cancel) > 0.35, "{mix:?}");
        let run = model::replay(&workload);
        assert_eq!(run.fills.measured.reject_count() + run.fills.warmup.reject_count(), 0);
        assert!(run.fills.measured.trade_count() > 1_000);
        assert!((800.0..1_200.0).contains(&run.book.orders_avg()), "{}", run.book.orders_avg());
    }
}
