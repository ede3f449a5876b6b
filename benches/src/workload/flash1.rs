//! The five scenarios of flash1-dev/matching-engine-benchmark: static, normal, swing-25, swing-40
//! and flash-crash.
//!
//! A port of its `workload/generator.cpp`, draw for draw: `std::mt19937` (here `rand_mt::Mt`, the
//! same generator), the same hand-rolled distributions in the same order, and the same libm calls
//! (`ln`, `cos`, `exp`, `powf` go to the platform libm, as in the C++), so with the same count and
//! seed the message stream should be the benchmark's own. In short:
//! - A driftless GBM mid-price takes one step per new order; its total diffusion is the scenario's
//!   target swing. Buy orders are priced off the first half of the path, sells off the second, each
//!   1 to 800 ticks away from its mid on its own side, the depth drawn from a power law with a hump
//!   near the touch. Quantities are 1..=100.
//! - The orders are shuffled into arrival order. 15% are IOC. Of the rest, 20% get a modify (the
//!   quantity plus one, and 80% of the time a one-tick reprice towards the spread), 95% are cancelled
//!   after an exponential lifetime that grows with depth, 2% of cancels are sent twice, and 2% of
//!   orders both modified and cancelled get a stale modify after the cancel. Those duplicates must
//!   be rejected.
//! - Messages are stable-sorted by their synthetic timestamps.
//!
//! The benchmark's engines take a modify as cancel + reinsert at the new price and quantity; here it
//! is a cancel-replace, which all engines measured implement that way for a price change or a
//! quantity increase (the only modifies the workload contains).
//!
//! Accounts: buyers and sellers come from disjoint sets (odd and even accounts, 1,000 each), so no
//! order can ever trade with its own account and self-trade prevention never comes into play.

use super::{Op, Side, Tif, Workload};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Static,
    Normal,
    Swing25,
    Swing40,
    FlashCrash,
}

impl Scenario {
    pub const ALL: [Scenario; 5] =
        [Scenario::Static, Scenario::Normal, Scenario::Swing25, Scenario::Swing40, Scenario::FlashCrash];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Static => "static",
            Scenario::Normal => "normal",
            Scenario::Swing25 => "swing-25",
            Scenario::Swing40 => "swing-40",
            Scenario::FlashCrash => "flash-crash",
        }
    }

    /// (volatility, target swing) of the GBM mid-price.
    fn parameters(self) -> (f64, f64) {
        match self {
            Scenario::Static => (0.00, 0.00),
            Scenario::Normal => (0.15, 0.02),
            Scenario::Swing25 => (0.50, 0.25),
            Scenario::Swing40 => (0.50, 0.40),
            Scenario::FlashCrash => (0.50, 0.60),
        }
    }
}

/// The benchmark's canonical seed.
pub const DEFAULT_SEED: u32 = 23;
/// New orders per run in the benchmark.
pub const DEFAULT_ORDERS: usize = 1_000_000;
/// Accounts on each side.
const ACCOUNTS_PER_SIDE: u32 = 1_000;

const TICK_SIZE: f64 = 0.005;
const START_MID: f64 = 167.52;
const ALPHA: f64 = 2.23;
const MAX_LEVEL: usize = 799;
const HUMP_AMP: f64 = 5.0;
const HUMP_CENTER: f64 = 8.0;
const CANCEL_PCT: f64 = 0.95;
const MODIFY_PCT: f64 = 0.20;
const DUP_CANCEL_PCT: f64 = 0.02;
const DUP_MODIFY_PCT: f64 = 0.02;
const IOC_PCT: f64 = 0.15;
const MEDIAN_LIFE_MS: f64 = 0.431;

/// The benchmark's portable distributions on mt19937.
struct Rng {
    mt: rand_mt::Mt,
}

impl Rng {
    fn new(seed: u32) -> Rng {
        Rng { mt: rand_mt::Mt::new(seed) }
    }

    /// Uniform in [0, 1) from 53 bits of two words.
    fn uniform(&mut self) -> f64 {
        let hi = u64::from(self.mt.next_u32() >> 5);
        let lo = u64::from(self.mt.next_u32() >> 6);
        (hi as f64 * 67_108_864.0 + lo as f64) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform integer in [lo, hi].
    fn uniform_int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.uniform() * f64::from(hi - lo + 1)) as u32
    }

    /// Box-Muller, cosine branch.
    fn normal(&mut self) -> f64 {
        let mut u1 = self.uniform();
        let u2 = self.uniform();
        if u1 < 1e-300 {
            u1 = 1e-300;
        }
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn exponential(&mut self, lambda: f64) -> f64 {
        let mut u = self.uniform();
        if u < 1e-300 {
            u = 1e-300;
        }
        -u.ln() / lambda
    }
}

/// Depth in ticks beyond the touch, `k` in 0..=799, weighted `1/(k+1)^2.23 + 5 exp(-(k-8)^2/2)`.
struct LevelSampler {
    cdf: Vec<f64>,
}

impl LevelSampler {
    fn new() -> LevelSampler {
        let mut cdf = Vec::with_capacity(MAX_LEVEL + 1);
        let mut acc = 0.0;
        for k in 0..=MAX_LEVEL {
            let base = 1.0 / (k as f64 + 1.0).powf(ALPHA);
            let z = k as f64 - HUMP_CENTER;
            let bump = HUMP_AMP * (-0.5 * z * z).exp();
            acc += base + bump;
            cdf.push(acc);
        }
        LevelSampler { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let x = rng.uniform() * self.cdf[MAX_LEVEL];
        // std::lower_bound: the first element not less than x.
        self.cdf.partition_point(|&c| c < x).min(MAX_LEVEL)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    New { ioc: bool },
    Cancel,
    Modify,
}

#[derive(Clone, Copy)]
struct Msg {
    ts: i64,
    kind: Kind,
    side: Side,
    qty: u32,
    order_id: u64,
    price_ticks: i64,
}

struct NewOrder {
    side: Side,
    price_ticks: i64,
    qty: u32,
    level: usize,
}

fn to_ticks(price: f64) -> i64 {
    // llround: half away from zero, as f64::round.
    (price / TICK_SIZE).round() as i64
}

/// The benchmark's message stream for `count` new orders.
fn messages(scenario: Scenario, count: usize, seed: u32) -> Vec<Msg> {
    assert!(count >= 2, "the generator needs at least two orders");
    let (volatility, target_swing) = scenario.parameters();
    let mut rng = Rng::new(seed);
    let levels = LevelSampler::new();
    let dt = if volatility > 0.0 { (target_swing / volatility).powf(2.0) / count as f64 } else { 0.0 };
    let sigma_step = volatility * dt.sqrt();

    // Phase 1: new orders along the mid-price path.
    let mut news = Vec::with_capacity(count);
    let mut mid = START_MID;
    for i in 0..count {
        let dw = rng.normal();
        mid *= (-0.5 * sigma_step * sigma_step + sigma_step * dw).exp();
        let mid_ticks = to_ticks((mid / TICK_SIZE).round() * TICK_SIZE);
        let level = levels.sample(&mut rng);
        let side = if i < count / 2 { Side::Buy } else { Side::Sell };
        let offset = level as i64 + 1;
        let price_ticks = match side {
            Side::Buy => mid_ticks - offset,
            Side::Sell => mid_ticks + offset,
        }
        .max(1);
        let qty = rng.uniform_int(1, 100);
        news.push(NewOrder { side, price_ticks, qty, level });
    }

    // Phase 2: shuffle into arrival order (Fisher-Yates), then expand each order's lifecycle.
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        let j = rng.uniform_int(0, i as u32) as usize;
        order.swap(i, j);
    }
    let mut timeline: Vec<Msg> = Vec::with_capacity((count as f64 * (1.0 + CANCEL_PCT + MODIFY_PCT + 0.05)) as usize);
    let base_lambda = 2f64.ln() / (MEDIAN_LIFE_MS * 1000.0);
    let mut now: i64 = 0;
    for &index in &order {
        let n = &news[index];
        let order_id = index as u64 + 1;
        let msg = |ts, kind, qty, price_ticks| Msg { ts, kind, side: n.side, qty, order_id, price_ticks };
        let ioc = rng.uniform() < IOC_PCT;
        timeline.push(msg(now, Kind::New { ioc }, n.qty, n.price_ticks));
        if ioc {
            now += 1;
            continue;
        }
        let mut modified = false;
        let mut modify_price = n.price_ticks;
        let modify_qty = n.qty + 1;
        if rng.uniform() < MODIFY_PCT {
            let at = now + 30 + (rng.uniform() * 70.0) as i64;
            if rng.uniform() < 0.80 {
                modify_price += match n.side {
                    Side::Buy => 1,
                    Side::Sell => -1,
                };
            }
            timeline.push(msg(at, Kind::Modify, modify_qty, modify_price));
            now = at;
            modified = true;
        }
        let mut cancelled = false;
        if rng.uniform() < CANCEL_PCT {
            let lambda = base_lambda / (1.0 + n.level as f64).sqrt();
            let ttl = rng.exponential(lambda) as i64;
            timeline.push(msg(now + ttl, Kind::Cancel, n.qty, n.price_ticks));
            now += ttl;
            cancelled = true;
            if rng.uniform() < DUP_CANCEL_PCT {
                let gap = 1 + (rng.uniform() * 20.0) as i64;
                timeline.push(msg(now + gap, Kind::Cancel, n.qty, n.price_ticks));
                now += gap;
            }
        }
        if modified && cancelled && rng.uniform() < DUP_MODIFY_PCT {
            let gap = 1 + (rng.uniform() * 20.0) as i64;
            timeline.push(msg(now + gap, Kind::Modify, modify_qty, modify_price));
            now += gap;
        }
        now += 1;
    }
    // Stable: ties keep generation order, as std::stable_sort.
    timeline.sort_by_key(|m| m.ts);
    timeline
}

/// Owner of an order: buyers are odd accounts, sellers even, 1,000 of each.
fn account(order_id: u64, side: Side) -> u32 {
    let slot = ((order_id - 1) % u64::from(ACCOUNTS_PER_SIDE)) as u32;
    1 + 2 * slot + side.index() as u32
}

pub fn generate(scenario: Scenario, orders: usize, seed: u32) -> Workload {
    let measured = messages(scenario, orders, seed)
        .into_iter()
        .map(|m| {
            let id = u32::try_from(m.order_id).expect("order ids fit in u32");
            let account = account(m.order_id, m.side);
            match m.kind {
                Kind::New { ioc } => Op::New {
                    id,
                    account,
                    side: m.side,
                    tif: if ioc { Tif::Ioc } else { Tif::Gtc },
                    price: m.price_ticks,
                    qty: i64::from(m.qty),
                },
                Kind::Cancel => Op::Cancel { id, account },
                Kind::Modify => Op::Replace { id, account, price: m.price_ticks, qty: i64::from(m.qty) },
            }
        })
        .collect();
    Workload {
        name: format!("flash1 {}", scenario.name()),
        accounts: 2 * ACCOUNTS_PER_SIDE,
        max_client_id: u32::try_from(orders).expect("order count fits in u32"),
        warmup: Vec::new(),
        measured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Mix;

    #[test]
    fn mt19937_matches_the_standard() {
        // The 10000th output of a default-seeded std::mt19937 is 4123659995 (C++ [rand.predef]).
        let mut mt = rand_mt::Mt::new(5489);
        let mut value = 0;
        for _ in 0..10_000 {
            value = mt.next_u32();
        }
        assert_eq!(value, 4_123_659_995);
    }

    #[test]
    fn stream_has_the_documented_shape() {
        let orders = 40_000;
        let workload = generate(Scenario::Normal, orders, DEFAULT_SEED);
        let mix = workload.mix();
        assert_eq!(mix.gtc + mix.ioc, orders);
        let ioc = mix.ioc as f64 / orders as f64;
        assert!((0.14..0.16).contains(&ioc), "{mix:?}");
        // ~0.85 * 0.95 * 1.02 cancels and ~0.85 * 0.20 modifies per order.
        let cancels = mix.cancel as f64 / orders as f64;
        let modifies = mix.replace as f64 / orders as f64;
        assert!((0.80..0.85).contains(&cancels), "{mix:?}");
        assert!((0.16..0.18).contains(&modifies), "{mix:?}");
        assert_eq!(Mix::of(&generate(Scenario::Normal, orders, DEFAULT_SEED).measured), mix);
        // Every order is placed passively around its own mid: buys below, sells above ~33,504 ticks.
        let static_book = generate(Scenario::Static, 2_000, DEFAULT_SEED);
        for op in &static_book.measured {
            if let Op::New { side, price, .. } = *op {
                match side {
                    Side::Buy => assert!((32_704..33_504).contains(&price)),
                    Side::Sell => assert!((33_505..=34_304).contains(&price)),
                }
            }
        }
    }

    #[test]
    fn buyers_and_sellers_never_share_an_account() {
        for id in 1..5_000u64 {
            assert_eq!(account(id, Side::Buy) % 2, 1);
            assert_eq!(account(id, Side::Sell) % 2, 0);
            assert!((1..=2_000).contains(&account(id, Side::Sell)));
        }
    }
}
