//! The synthetic source: per-symbol geometric Brownian motion with a quoted spread and optional
//! jumps, seeded and bit-for-bit deterministic across runs and platforms.
//!
//! # Model
//! Each symbol's log price moves every `interval_ms` by
//! `(drift - volatility^2 / 2) * dt + volatility * sqrt(dt) * z` plus, with probability
//! `jumps_per_day * dt_days`, a jump of `jump_size_bps * z'`, where `z` and `z'` are standard
//! normal draws and `dt` is the interval as a fraction of the volatility period (a 365-day year or
//! one day). The mid is `start_price * exp(log price)`; the quote is the mid less and plus half of
//! `spread_bps`, the bid rounded down and the ask up to the tick, at least one tick apart. Every
//! step emits that quote and then one trade at the ask after an up move (else at the bid) of
//! `1..=trade_size_max` lots.
//!
//! # Determinism
//! No floating point and no libm: everything is integer arithmetic.
//! - Randomness: one `ChaCha8Rng` per symbol, seeded with `seed ^ xxh3(symbol)`, so a symbol's path
//!   does not depend on which other symbols run. Only `next_u32`/`next_u64` are used, whose output
//!   `rand_chacha` fixes across platforms.
//! - Normal draws: the Irwin-Hall method, `z = sum of 12 uniform u32 / 2^32 - 6`, computed exactly in
//!   Q32 fixed point. Its variance is exactly 1; its tails stop at ±6 (jumps supply fat tails).
//! - The log price is Q32 fixed point (`i64`, clamped to ±20 so prices stay in range); `exp` is
//!   range reduction by `ln 2` and a 16-term Taylor series in `i128` (relative error below
//!   10^-8, far finer than a tick); `sqrt(dt)` is an integer
//!   square root. Divisions truncate toward zero.
//!
//! `tests::the_first_ticks_of_a_seed_are_pinned` pins the first ticks of a seed, so any change to
//! the generator shows up as a failing test.

use super::config::FeedConfigError;
use super::pace::Sleeper;
use super::status::{Counter, FeedStatus};
use super::tick::{Converter, Tick, TickKind};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use simex_engine::decimal::{Decimal, Step};
use simex_engine::InstrumentTable;

/// The synthetic source's configuration (`[synthetic]` in the feed file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// Base seed; each symbol's generator is seeded with `seed ^ xxh3(symbol)`.
    #[serde(default)]
    pub seed: u64,
    #[serde(rename = "symbol", default)]
    pub symbols: Vec<SyntheticSymbolConfig>,
}

/// One symbol's random walk. Decimals are strings, read exactly on the instrument's grid.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSymbolConfig {
    pub symbol: String,
    /// Where the walk starts (must be on the tick).
    pub start_price: String,
    /// Standard deviation of the log return over `volatility_period`, in basis points.
    #[serde(default = "default_volatility_bps")]
    pub volatility_bps: u32,
    #[serde(default)]
    pub volatility_period: VolatilityPeriod,
    /// Expected log return over `volatility_period`, in basis points (may be negative).
    #[serde(default)]
    pub drift_bps: i32,
    /// Full quoted spread around the mid, in basis points.
    #[serde(default = "default_spread_bps")]
    pub spread_bps: u32,
    /// Size quoted on each side (a multiple of the lot).
    #[serde(default = "default_size")]
    pub quote_size: String,
    /// Largest trade size (a multiple of the lot); trades are 1 lot to this.
    #[serde(default = "default_size")]
    pub trade_size_max: String,
    /// Time between steps.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Expected number of jumps per day (a decimal, e.g. "0.5"); "0" disables jumps.
    #[serde(default = "default_jumps_per_day")]
    pub jumps_per_day: String,
    /// Standard deviation of a jump's log size, in basis points.
    #[serde(default)]
    pub jump_size_bps: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolatilityPeriod {
    /// A 365-day year.
    #[default]
    Annual,
    Daily,
}

fn default_volatility_bps() -> u32 {
    2_000
}
fn default_spread_bps() -> u32 {
    2
}
fn default_size() -> String {
    "1".into()
}
fn default_interval_ms() -> u64 {
    250
}
fn default_jumps_per_day() -> String {
    "0".into()
}

const Q32: i128 = 1 << 32;
/// ln 2 in Q32, rounded to nearest.
const LN2_Q32: i64 = 2_977_044_472;
/// The log price is clamped to ±20 (a factor of about 5 * 10^8 either way).
const LOG_Q32_MAX: i64 = 20 << 32;
const MS_PER_DAY: u64 = 86_400_000;
const BPS: i128 = 10_000;

/// `e^x` for `x` in Q32, as Q32. Exact integer arithmetic: the same bits on every platform.
fn exp_q32(x_q32: i64) -> i128 {
    debug_assert!(x_q32.abs() <= LOG_Q32_MAX);
    let k = (x_q32 + LN2_Q32 / 2).div_euclid(LN2_Q32);
    let r = i128::from(x_q32 - k * LN2_Q32);
    let (mut term, mut sum) = (Q32, Q32);
    for n in 1..=16 {
        term = term * r / (Q32 * n);
        sum += term;
    }
    if k >= 0 {
        sum << k
    } else {
        sum >> -k
    }
}

/// A standard normal draw in Q32 (Irwin-Hall with 12 uniforms).
fn normal_q32(rng: &mut ChaCha8Rng) -> i64 {
    let sum: i64 = (0..12).map(|_| i64::from(rng.next_u32())).sum();
    sum - (6 << 32)
}

/// One symbol's generator.
#[derive(Clone, Debug)]
pub struct SymbolPath {
    symbol_id: u16,
    start_price_ticks: i64,
    /// Per-step volatility, and drift less half the variance, of the log price (Q32).
    sigma_q32: i64,
    drift_q32: i64,
    jump_threshold_u32: u64,
    jump_sigma_q32: i64,
    spread_bps: i64,
    quote_lots: i64,
    trade_lots_max: i64,
    interval_ns: i64,
    rng: ChaCha8Rng,
    log_q32: i64,
    next_timestamp_ns: i64,
}

impl SymbolPath {
    pub fn new(
        config: &SyntheticSymbolConfig,
        seed: u64,
        instruments: &InstrumentTable,
        start_timestamp_ns: i64,
    ) -> Result<SymbolPath, FeedConfigError> {
        let problem = |problem: String| FeedConfigError::Symbol {
            source_name: "synthetic",
            symbol: config.symbol.clone(),
            problem,
        };
        let instrument = instruments.by_symbol(&config.symbol).ok_or_else(|| problem("not an instrument".into()))?;
        let start_price_ticks =
            instrument.price_ticks_from_text(&config.start_price).map_err(|e| problem(format!("start_price: {e}")))?;
        if start_price_ticks <= 0 {
            return Err(problem("start_price must be positive".into()));
        }
        let converter = Converter { instrument };
        let quote_lots = converter.qty_lots("quote_size", &config.quote_size).map_err(|e| problem(e.to_string()))?;
        let trade_lots_max =
            converter.qty_lots("trade_size_max", &config.trade_size_max).map_err(|e| problem(e.to_string()))?;
        if quote_lots <= 0 || trade_lots_max <= 0 {
            return Err(problem("quote_size and trade_size_max must be at least one lot".into()));
        }
        if config.interval_ms == 0 || config.interval_ms > MS_PER_DAY {
            return Err(problem("interval_ms must be 1 to 86400000".into()));
        }
        if config.volatility_bps > 100_000 || config.jump_size_bps > 100_000 || config.spread_bps > 10_000 {
            return Err(problem("volatility and jump size at most 100000 bps, spread at most 10000".into()));
        }
        let jumps_per_day_micro = Decimal::parse(&config.jumps_per_day)
            .and_then(|d| d.to_steps(Step { mantissa: 1, scale: 6 }))
            .map_err(|e| problem(format!("jumps_per_day: {e} (a decimal with at most 6 places)")))?;
        if !(0..=1_000_000_000_000).contains(&jumps_per_day_micro) {
            return Err(problem("jumps_per_day must be 0 to 1000000".into()));
        }

        let period_ms = match config.volatility_period {
            VolatilityPeriod::Annual => 365 * MS_PER_DAY,
            VolatilityPeriod::Daily => MS_PER_DAY,
        };
        let interval_ms = u128::from(config.interval_ms);
        // sqrt(dt) in Q32: the integer square root of dt in Q64.
        let sqrt_dt_q32 = ((interval_ms << 64) / u128::from(period_ms)).isqrt() as i128;
        let sigma_q32 = i128::from(config.volatility_bps) * sqrt_dt_q32 / BPS;
        let drift_q32 = i128::from(config.drift_bps) * Q32 * interval_ms as i128 / (BPS * period_ms as i128)
            - sigma_q32 * sigma_q32 / Q32 / 2;
        // P(jump in one step) = jumps_per_day * interval / day, as a threshold on a u32 draw.
        let jump_threshold_u32 =
            (jumps_per_day_micro as u128 * interval_ms * (1u128 << 32) / (u128::from(MS_PER_DAY) * 1_000_000)) as u64;
        let jump_sigma_q32 = i128::from(config.jump_size_bps) * Q32 / BPS;

        let symbol_seed = seed ^ xxhash_rust::xxh3::xxh3_64(config.symbol.as_bytes());
        Ok(SymbolPath {
            symbol_id: instrument.symbol_id,
            start_price_ticks,
            sigma_q32: sigma_q32 as i64,
            drift_q32: drift_q32 as i64,
            jump_threshold_u32,
            jump_sigma_q32: jump_sigma_q32 as i64,
            spread_bps: i64::from(config.spread_bps),
            quote_lots,
            trade_lots_max,
            interval_ns: config.interval_ms as i64 * 1_000_000,
            rng: ChaCha8Rng::seed_from_u64(symbol_seed),
            log_q32: 0,
            next_timestamp_ns: start_timestamp_ns,
        })
    }

    pub fn next_timestamp_ns(&self) -> i64 {
        self.next_timestamp_ns
    }

    /// The next step: a quote, then a trade, both at the step's timestamp.
    pub fn step(&mut self) -> [Tick; 2] {
        let z = i128::from(normal_q32(&mut self.rng));
        let mut delta_q32 = i128::from(self.drift_q32) + i128::from(self.sigma_q32) * z / Q32;
        if u64::from(self.rng.next_u32()) < self.jump_threshold_u32 {
            delta_q32 += i128::from(self.jump_sigma_q32) * i128::from(normal_q32(&mut self.rng)) / Q32;
        }
        let delta_q32 = delta_q32.clamp(-i128::from(LOG_Q32_MAX), i128::from(LOG_Q32_MAX)) as i64;
        self.log_q32 = (self.log_q32 + delta_q32).clamp(-LOG_Q32_MAX, LOG_Q32_MAX);

        let mid_q32 = i128::from(self.start_price_ticks) * exp_q32(self.log_q32);
        let half_spread_q32 = mid_q32 * i128::from(self.spread_bps) / (2 * BPS);
        let bid_price_ticks = ((mid_q32 - half_spread_q32).div_euclid(Q32) as i64).max(1);
        let ask_price_ticks = (-(-(mid_q32 + half_spread_q32)).div_euclid(Q32) as i64).max(bid_price_ticks + 1);
        let qty_lots = 1 + ((u128::from(self.rng.next_u64()) * self.trade_lots_max as u128) >> 64) as i64;
        let price_ticks = if delta_q32 > 0 { ask_price_ticks } else { bid_price_ticks };

        let timestamp_ns = self.next_timestamp_ns;
        self.next_timestamp_ns += self.interval_ns;
        let quote = TickKind::Quote {
            bid_price_ticks,
            bid_qty_lots: self.quote_lots,
            ask_price_ticks,
            ask_qty_lots: self.quote_lots,
        };
        [
            Tick { symbol_id: self.symbol_id, timestamp_ns, kind: quote },
            Tick { symbol_id: self.symbol_id, timestamp_ns, kind: TickKind::Trade { price_ticks, qty_lots } },
        ]
    }
}

/// Every configured symbol's path, merged in timestamp order (ties by configuration order).
pub struct SyntheticSource {
    paths: Vec<SymbolPath>,
    pending: std::collections::VecDeque<Tick>,
}

impl SyntheticSource {
    pub fn new(
        config: &SyntheticConfig,
        instruments: &InstrumentTable,
        start_timestamp_ns: i64,
    ) -> Result<SyntheticSource, FeedConfigError> {
        let paths = config
            .symbols
            .iter()
            .map(|symbol| SymbolPath::new(symbol, config.seed, instruments, start_timestamp_ns))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SyntheticSource { paths, pending: Default::default() })
    }

    /// The next tick; the stream never ends while a symbol is configured.
    pub fn next_tick(&mut self) -> Option<Tick> {
        if self.pending.is_empty() {
            let path = self.paths.iter_mut().min_by_key(|path| path.next_timestamp_ns())?;
            self.pending.extend(path.step());
        }
        self.pending.pop_front()
    }
}

/// Runs the source in real time: each tick is sent when its timestamp comes, until stopped or the
/// pump is gone.
pub fn run(
    mut source: SyntheticSource,
    mut sleeper: impl Sleeper,
    sender: &tokio::sync::mpsc::Sender<Tick>,
    status: &FeedStatus,
) {
    let mut first_ns = None;
    while let Some(tick) = source.next_tick() {
        let first_ns = *first_ns.get_or_insert(tick.timestamp_ns);
        let offset_ns = tick.timestamp_ns.saturating_sub(first_ns).max(0) as u64;
        if !sleeper.sleep_until_ns(offset_ns) || sender.blocking_send(tick).is_err() {
            return;
        }
        status.add(Counter::Ticks, 1);
    }
}

#[cfg(test)]
#[allow(clippy::float_arithmetic)] // the statistics test measures in floating point
mod tests {
    use super::*;

    fn config(symbol: &str, start_price: &str) -> SyntheticSymbolConfig {
        toml::from_str(&format!("symbol = \"{symbol}\"\nstart_price = \"{start_price}\"")).unwrap()
    }

    #[test]
    fn exp_is_accurate_to_within_1e_minus_8_and_exact_at_zero() {
        assert_eq!(exp_q32(0), Q32);
        // e^1 = 2.718281828..., e^-1 = 0.367879441..., e^10 = 22026.4657948...
        let close = |x: i64, expected_q32: i128| {
            let error = (exp_q32(x << 32) - expected_q32).abs();
            assert!(error * 100_000_000 <= expected_q32, "e^{x}: {} vs {expected_q32}", exp_q32(x << 32));
        };
        close(1, 11_674_931_555);
        close(-1, 1_580_030_169);
        close(10, 94_602_950_235_157);
    }

    #[test]
    fn the_first_ticks_of_a_seed_are_pinned() {
        let instruments = InstrumentTable::default_table();
        let mut btc = config("BTC-USD", "60000.00");
        btc.volatility_bps = 8_000;
        btc.trade_size_max = "0.5".into();
        btc.jumps_per_day = "5000".into();
        btc.jump_size_bps = 100;
        let mut aapl = config("AAPL", "190.00");
        aapl.volatility_bps = 400;
        aapl.volatility_period = VolatilityPeriod::Daily;
        aapl.trade_size_max = "100".into();
        let config = SyntheticConfig { seed: 42, symbols: vec![aapl, btc] };
        let mut source = SyntheticSource::new(&config, &instruments, 0).unwrap();
        let ticks: Vec<Tick> = (0..12).map(|_| source.next_tick().unwrap()).collect();
        let quote = |symbol_id, timestamp_ns, bid_price_ticks, ask_price_ticks, qty_lots| Tick {
            symbol_id,
            timestamp_ns,
            kind: TickKind::Quote { bid_price_ticks, bid_qty_lots: qty_lots, ask_price_ticks, ask_qty_lots: qty_lots },
        };
        let trade = |symbol_id, timestamp_ns, price_ticks, qty_lots| Tick {
            symbol_id,
            timestamp_ns,
            kind: TickKind::Trade { price_ticks, qty_lots },
        };
        let (aapl, btc, ms) = (0, 6, 1_000_000);
        let expected = [
            quote(aapl, 0, 18_999, 19_004, 1),
            trade(aapl, 0, 19_004, 8),
            quote(btc, 0, 5_999_257, 6_000_458, 100_000_000),
            trade(btc, 0, 5_999_257, 48_448_165),
            quote(aapl, 250 * ms, 19_000, 19_005, 1),
            trade(aapl, 250 * ms, 19_005, 45),
            quote(btc, 250 * ms, 5_999_291, 6_000_492, 100_000_000),
            trade(btc, 250 * ms, 6_000_492, 4_899_985),
            quote(aapl, 500 * ms, 19_001, 19_005, 1),
            trade(aapl, 500 * ms, 19_005, 42),
            quote(btc, 500 * ms, 5_998_838, 6_000_039, 100_000_000),
            trade(btc, 500 * ms, 5_998_838, 39_140_156),
        ];
        assert_eq!(ticks, expected);
    }

    #[test]
    fn the_same_seed_gives_the_same_ticks_and_another_seed_does_not() {
        let instruments = InstrumentTable::default_table();
        let mut config =
            SyntheticConfig { seed: 7, symbols: vec![config("AAPL", "190.00"), config("BTC-USD", "60000")] };
        let first: Vec<Tick> = {
            let mut source = SyntheticSource::new(&config, &instruments, 0).unwrap();
            (0..200).map(|_| source.next_tick().unwrap()).collect()
        };
        let mut again = SyntheticSource::new(&config, &instruments, 0).unwrap();
        assert!(first.iter().all(|tick| Some(*tick) == again.next_tick()));
        config.seed = 8;
        let mut other = SyntheticSource::new(&config, &instruments, 0).unwrap();
        assert!(first.iter().any(|tick| Some(*tick) != other.next_tick()));
    }

    #[test]
    fn quotes_are_on_the_grid_and_never_crossed_and_trades_hit_the_touch() {
        let instruments = InstrumentTable::default_table();
        let mut symbol = config("EUR-USD", "1.08000");
        symbol.volatility_bps = 5_000;
        symbol.volatility_period = VolatilityPeriod::Daily;
        symbol.jumps_per_day = "100".into();
        symbol.jump_size_bps = 500;
        symbol.trade_size_max = "3".into();
        let mut path = SymbolPath::new(&symbol, 1, &instruments, 1_000).unwrap();
        for step in 0..5_000 {
            let [quote, trade] = path.step();
            assert_eq!(quote.timestamp_ns, 1_000 + step * 250_000_000);
            let TickKind::Quote { bid_price_ticks, ask_price_ticks, .. } = quote.kind else { panic!("quote first") };
            assert!(0 < bid_price_ticks && bid_price_ticks < ask_price_ticks);
            let TickKind::Trade { price_ticks, qty_lots } = trade.kind else { panic!("trade second") };
            assert!(price_ticks == bid_price_ticks || price_ticks == ask_price_ticks);
            assert!((1..=3).contains(&qty_lots));
        }
    }

    /// Log returns of the mid, per step (floating point is fine in a test of the statistics).
    fn mid_log_returns(symbol: &SyntheticSymbolConfig, steps: usize) -> Vec<f64> {
        let instruments = InstrumentTable::default_table();
        let mut path = SymbolPath::new(symbol, 5, &instruments, 0).unwrap();
        let mids: Vec<f64> = (0..=steps)
            .map(|_| match path.step()[0].kind {
                TickKind::Quote { bid_price_ticks, ask_price_ticks, .. } => (bid_price_ticks + ask_price_ticks) as f64,
                TickKind::Trade { .. } => unreachable!("quotes come first"),
            })
            .collect();
        mids.windows(2).map(|pair| (pair[1] / pair[0]).ln()).collect()
    }

    #[test]
    fn realized_volatility_and_jump_frequency_match_the_configuration() {
        let steps = 20_000;
        let mut btc = config("BTC-USD", "60000.00");
        btc.volatility_bps = 500;
        btc.volatility_period = VolatilityPeriod::Daily;
        // 500 bps a day over 250 ms steps: 0.05 * sqrt(250 / 86_400_000) per step.
        let sigma_step = 0.05 * (250.0f64 / 86_400_000.0).sqrt();
        let returns = mid_log_returns(&btc, steps);
        let mean = returns.iter().sum::<f64>() / steps as f64;
        let variance = returns.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (steps - 1) as f64;
        let ratio = variance.sqrt() / sigma_step;
        assert!((0.97..1.03).contains(&ratio), "realized / configured volatility = {ratio}");

        // Jumps in one step of ten (34560 a day at 4 a second), 10% each: almost every jump is far
        // beyond six diffusive standard deviations, where the walk itself never goes.
        btc.jumps_per_day = "34560".into();
        btc.jump_size_bps = 1_000;
        let jumps = mid_log_returns(&btc, steps).iter().filter(|r| r.abs() > 6.0 * sigma_step).count();
        let expected = steps as f64 * 0.1;
        assert!((expected * 0.9..expected * 1.1).contains(&(jumps as f64)), "{jumps} jumps, expected {expected}");
    }

    #[test]
    fn bad_configuration_is_a_typed_error() {
        let instruments = InstrumentTable::default_table();
        let off_tick = config("AAPL", "190.001");
        assert!(SymbolPath::new(&off_tick, 0, &instruments, 0).unwrap_err().to_string().contains("start_price"));
        assert!(SymbolPath::new(&config("NOPE", "1"), 0, &instruments, 0).is_err());
        let mut no_interval = config("AAPL", "190");
        no_interval.interval_ms = 0;
        assert!(SymbolPath::new(&no_interval, 0, &instruments, 0).is_err());
    }
}
