//! Simulated liquidity: what a shard knows of the outside market for each symbol, and how orders
//! execute against it when no bot is on the other side.
//!
//! # Why
//! A paper-trading bot wants realistic fills in AAPL or BTC-USD even when the book is empty. The
//! reference feed (quotes and trades) enters each shard as commands, like orders, so the journal
//! records every price the engine acted on, and recovery and replay reproduce each price-driven fill.
//!
//! # Parts
//! - [`MarketState`]: per symbol, the last reference quote and trade, and the net position of the
//!   simulated market (the counterparty of every simulated fill), so that positions still net to zero.
//! - [`SimParams`]: per instrument, the liquidity mode and the model's parameters (spread, volatility,
//!   average daily volume, impact coefficient, liquidity limits, slicing).
//! - [`impact`]: the square-root impact model and the slice plan, in exact integer arithmetic.
//! - `execution`: the engine's decisions on reference data and simulated fills.
//! - `mark`: mark-to-market queries ([`Valuation`]: unrealized P&L, portfolio value, return).
//!
//! The engine calls into this module from `Engine::match_incoming` (marketable orders) and
//! `Engine::on_reference_trade` (resting orders the market trades through). See `docs/simulation.md`.

mod execution;
pub mod impact;
mod mark;

pub use mark::Valuation;

use crate::instrument::AssetClass;
use crate::types::{OrderId, Side, BASIS_POINTS_PER_UNIT};
use serde::{Deserialize, Serialize};

/// The order id that stands for the simulated market in a [`crate::Fill`]: no real order has it
/// (order ids count from 1). Its portfolio is [`crate::NO_PORTFOLIO`].
pub const SIMULATED_ORDER_ID: OrderId = 0;

/// Where an instrument's liquidity comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidityMode {
    /// Only real resting orders; reference data only anchors the price band and marks positions.
    Book,
    /// Only liquidity derived from reference prices (resting orders still fill when the market
    /// trades through them, and a remainder never crosses the book: see `docs/simulation.md`).
    Simulated,
    /// Resting orders at prices at least as good as the simulated quote first, then simulated
    /// liquidity, then the rest of the book.
    #[default]
    Hybrid,
}

/// One instrument's simulation parameters, validated. Rates are integer basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimParams {
    pub liquidity: LiquidityMode,
    /// Modelled full spread when only trades are known: the quote is the last trade price plus and
    /// minus half of it, each half rounded up to a whole tick.
    pub spread_bps: i64,
    /// Daily volatility (sigma) in basis points of the price.
    pub sigma_daily_bps: i64,
    /// Average daily volume in lots; 0 when unknown (then no impact and no volume limit).
    pub adv_lots: i64,
    /// The square-root law's coefficient Y, in basis points (7000 = 0.7).
    pub impact_coefficient_bps: i64,
    /// Most an order may take from simulated liquidity, in basis points of the displayed quote size
    /// (50000 = five times the size at the touch); applies when the quote's size is known.
    pub quote_size_limit_bps: i64,
    /// Most an order may take from simulated liquidity, in basis points of `adv_lots`.
    pub adv_limit_bps: i64,
    /// Most slices a simulated execution is split into.
    pub slices_max: i64,
    /// Whether a resting order also fills on reference trades exactly at its price, once the volume
    /// traded there exceeds what stood ahead of it when it joined (see `docs/simulation.md`).
    pub queue_position: bool,
    /// The latency model's base delay between an order's acceptance and its execution; 0 is off.
    pub latency_ns: i64,
    /// The latency model's uniform extra delay, 0 to this many nanoseconds per order.
    pub latency_jitter_ns: i64,
    /// The seed the extra delay is drawn from (with the order id).
    pub latency_seed: u64,
}

impl SimParams {
    /// The defaults for an asset class, before an instrument's own settings.
    pub fn defaults(asset_class: AssetClass) -> SimParams {
        let (spread_bps, sigma_daily_bps) = match asset_class {
            AssetClass::Equity => (2, 200),
            AssetClass::Etf => (1, 100),
            AssetClass::Crypto => (4, 350),
            AssetClass::Forex => (1, 60),
        };
        SimParams {
            liquidity: LiquidityMode::Hybrid,
            spread_bps,
            sigma_daily_bps,
            adv_lots: 0,
            impact_coefficient_bps: 7_000,
            quote_size_limit_bps: 50_000,
            adv_limit_bps: 1_000,
            slices_max: 4,
            queue_position: false,
            latency_ns: 0,
            latency_jitter_ns: 0,
            latency_seed: 0,
        }
    }

    /// Whether orders wait between acceptance and execution (see [`SimParams::delay_ns`]).
    pub fn has_latency(&self) -> bool {
        self.latency_ns > 0 || self.latency_jitter_ns > 0
    }

    /// The latency model's delay for one order: the base delay plus a uniform draw of 0 to
    /// `latency_jitter_ns` from a hash of the seed and the order id, so the same seed and orders
    /// give the same delays in every run, replay and backtest.
    pub fn delay_ns(&self, order_id: OrderId) -> i64 {
        let jitter_ns = match u64::try_from(self.latency_jitter_ns) {
            Ok(0) | Err(_) => 0,
            Ok(span) => {
                let draw = xxhash_rust::xxh3::xxh3_64_with_seed(&order_id.to_le_bytes(), self.latency_seed);
                i64::try_from(draw % (span + 1)).expect("below latency_jitter_ns")
            }
        };
        self.latency_ns + jitter_ns
    }

    /// The most lots one order may take from simulated liquidity given the size displayed at the
    /// touch (0 when unknown); `None` when nothing limits it.
    pub fn liquidity_limit_lots(&self, displayed_lots: i64) -> Option<i64> {
        let share = |base: i64, bps: i64| {
            i64::try_from(i128::from(base) * i128::from(bps) / i128::from(BASIS_POINTS_PER_UNIT)).unwrap_or(i64::MAX)
        };
        let by_quote = (displayed_lots > 0).then(|| share(displayed_lots, self.quote_size_limit_bps));
        let by_volume = (self.adv_lots > 0).then(|| share(self.adv_lots, self.adv_limit_bps));
        match (by_quote, by_volume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a shard knows of the outside market in one symbol. All zero until the first reference data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketState {
    /// The last reference quote; prices 0 before the first. Sizes 0 when the feed gives none.
    pub bid_ticks: i64,
    pub bid_lots: i64,
    pub ask_ticks: i64,
    pub ask_lots: i64,
    /// The last reference trade's price; 0 before the first.
    pub last_trade_ticks: i64,
    /// The simulated market's net position: minus the sum of every simulated fill's effect on real
    /// portfolios. Positions in a symbol plus this net to zero.
    pub counterparty_lots: i64,
}

/// Where simulated liquidity stands for an order of one side: the opposite touch and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touch {
    pub price_ticks: i64,
    /// 0 when unknown (a modelled quote, or a feed without sizes).
    pub displayed_lots: i64,
}

impl MarketState {
    pub fn has_quote(&self) -> bool {
        self.bid_ticks > 0 && self.ask_ticks > 0
    }

    /// The price simulated liquidity offers a taker of `side`: the quote's ask to a buyer and bid to
    /// a seller; with no quote, the last trade plus or minus half the modelled spread (each half
    /// rounded up to a whole tick, so a modelled quote is never narrower than the model). `None`
    /// before any reference data, or when the modelled bid would not be positive.
    pub fn touch(&self, side: Side, spread_bps: i64) -> Option<Touch> {
        if self.has_quote() {
            return Some(match side {
                Side::Buy => Touch { price_ticks: self.ask_ticks, displayed_lots: self.ask_lots },
                Side::Sell => Touch { price_ticks: self.bid_ticks, displayed_lots: self.bid_lots },
            });
        }
        if self.last_trade_ticks <= 0 {
            return None;
        }
        let half_spread_ticks = half_spread_ticks(self.last_trade_ticks, spread_bps);
        let price_ticks = self.last_trade_ticks.checked_add(side.sign().checked_mul(half_spread_ticks)?)?;
        (price_ticks > 0).then_some(Touch { price_ticks, displayed_lots: 0 })
    }

    /// The price positions are marked at: the quote's mid (rounded down) if there is a quote, else
    /// the last reference trade. `None` before any reference data.
    /// Reference volume ahead of an order of `side` joining the book at `price_ticks`: the quote's
    /// size on its own side when it joins at the quote's price, the same size when it joins behind
    /// it (deeper depth is unknown; the touch's size stands in for it), and 0 when it improves on
    /// the quote or there is none.
    pub fn queue_ahead_lots(&self, side: Side, price_ticks: i64) -> i64 {
        if !self.has_quote() {
            return 0;
        }
        let (touch_ticks, touch_lots) = match side {
            Side::Buy => (self.bid_ticks, self.bid_lots),
            Side::Sell => (self.ask_ticks, self.ask_lots),
        };
        if side.crosses(touch_ticks, price_ticks) {
            touch_lots
        } else {
            0
        }
    }

    pub fn mark_ticks(&self) -> Option<i64> {
        if self.has_quote() {
            Some(self.bid_ticks + (self.ask_ticks - self.bid_ticks) / 2)
        } else {
            (self.last_trade_ticks > 0).then_some(self.last_trade_ticks)
        }
    }
}

/// Half of `spread_bps` of `price_ticks`, rounded up to a whole tick.
pub fn half_spread_ticks(price_ticks: i64, spread_bps: i64) -> i64 {
    let divisor = 2 * i128::from(BASIS_POINTS_PER_UNIT);
    let half = (i128::from(price_ticks) * i128::from(spread_bps) + divisor - 1) / divisor;
    i64::try_from(half).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_touch_is_the_quote_or_the_modelled_spread_around_the_last_trade() {
        let mut market = MarketState::default();
        assert_eq!(market.touch(Side::Buy, 2), None);
        market.last_trade_ticks = 15_000;
        // 2 bps of 150.00 is 0.03; half is 0.015, rounded up to 0.02.
        assert_eq!(market.touch(Side::Buy, 2), Some(Touch { price_ticks: 15_002, displayed_lots: 0 }));
        assert_eq!(market.touch(Side::Sell, 2), Some(Touch { price_ticks: 14_998, displayed_lots: 0 }));
        assert_eq!(market.mark_ticks(), Some(15_000));
        market.bid_ticks = 14_999;
        market.bid_lots = 300;
        market.ask_ticks = 15_004;
        market.ask_lots = 200;
        assert_eq!(market.touch(Side::Buy, 2), Some(Touch { price_ticks: 15_004, displayed_lots: 200 }));
        assert_eq!(market.touch(Side::Sell, 2), Some(Touch { price_ticks: 14_999, displayed_lots: 300 }));
        assert_eq!(market.mark_ticks(), Some(15_001));
    }

    #[test]
    fn the_liquidity_limit_is_the_tighter_of_quote_size_and_volume() {
        let params = SimParams { adv_lots: 1_000_000, ..SimParams::defaults(AssetClass::Equity) };
        // 5x the displayed 2_000 = 10_000; 10% of ADV = 100_000.
        assert_eq!(params.liquidity_limit_lots(2_000), Some(10_000));
        assert_eq!(params.liquidity_limit_lots(0), Some(100_000));
        let unknown = SimParams::defaults(AssetClass::Equity);
        assert_eq!(unknown.liquidity_limit_lots(0), None);
    }
}
