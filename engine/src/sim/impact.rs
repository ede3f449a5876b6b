//! The square-root market impact model and the slices an execution against simulated liquidity
//! is split into, in exact integer arithmetic.
//!
//! # The model
//! Taking `Q` lots moves the *average* execution price away from the touch by
//! `Y * sigma_daily * sqrt(Q / ADV)` of the price (the square-root law; Y is about 0.7, measured
//! between 0.5 and 1). The cost of the impact of the first `C` lots, in ticks times lots, is
//! therefore
//!
//! ```text
//! E(C) = touch_ticks * Y * sigma * C * sqrt(C / ADV)
//! ```
//!
//! and an execution of `Q` lots that pays `Q * touch + E(Q)` has exactly the law's average price.
//!
//! # Slicing
//! `Q` is split into slices of `max(displayed size at the touch, ceil(Q / slices_max))` lots (the
//! last one smaller), so an order within the displayed size is one slice and a larger one walks in
//! at most `slices_max` steps. Slice `k`, covering cumulative quantity `C(k-1)..C(k)`, is priced at
//! the touch plus (buy) or minus (sell) `ceil((E(C(k)) - E(C(k-1))) / q(k))` ticks. Since `E` is
//! convex, each slice is priced no better than the one before; a computed price that would be
//! better (only possible through rounding) is raised to the previous slice's price.
//!
//! # Rounding: always against the taker, exactly
//! With rates in basis points and `ADV` in lots,
//! `root = ceil(sqrt(ceil(C * 10^18 / ADV)))` is `sqrt(C / ADV)` in units of 10^-9 rounded up
//! (`u128::isqrt`, exact), and
//! `E(C) = ceil(touch * Y_bps * sigma_bps * C * root / 10^17)` (10^8 for two rates in basis points,
//! 10^9 for the root's scale). Every step rounds up, so the impact charged is never less than the
//! law's; at most one tick per slice more. All products are checked `u128`: a plan that would
//! overflow is `None`, and the engine then offers no simulated liquidity rather than a wrong price.
//!
//! The `fixed` crate was considered for the square root; `u128::isqrt` is exact, in std, and the
//! rest is integer multiplication and division, so no fixed-point type is needed.

use super::{SimParams, Touch};
use crate::types::Side;

/// The most slices any plan has (`SimParams::slices_max` is capped to it): plans live on the stack.
pub const SLICES_MAX: usize = 16;

/// 10^18: the scale of `C / ADV` under the square root (so the root has a scale of 10^9).
const RATIO_SCALE: u128 = 1_000_000_000_000_000_000;
/// 10^17: two basis-point rates (10^8) times the root's scale (10^9).
const COST_DIVISOR: u128 = 100_000_000_000_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    pub price_ticks: i64,
    pub qty_lots: i64,
}

/// The slices of one simulated execution, best price first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlicePlan {
    slices: [Slice; SLICES_MAX],
    len: usize,
}

impl SlicePlan {
    pub fn slices(&self) -> &[Slice] {
        &self.slices[..self.len]
    }

    pub fn total_lots(&self) -> i64 {
        self.slices().iter().map(|s| s.qty_lots).sum()
    }
}

fn ceil_div(numerator: u128, denominator: u128) -> u128 {
    numerator / denominator + u128::from(numerator % denominator != 0)
}

fn ceil_sqrt(value: u128) -> u128 {
    let root = value.isqrt();
    if root * root < value {
        root + 1
    } else {
        root
    }
}

/// `E(C)`: the impact cost of the first `qty_lots` lots in ticks times lots, rounded up. Zero when
/// the model has no volume, volatility or coefficient. `None` on overflow.
pub fn impact_cost_tick_lots(touch_ticks: i64, qty_lots: i64, params: &SimParams) -> Option<u128> {
    let positive = |value: i64| u128::try_from(value).ok().filter(|&v| v > 0);
    let (Some(touch), Some(qty), Some(adv), Some(sigma), Some(coefficient)) = (
        positive(touch_ticks),
        positive(qty_lots),
        positive(params.adv_lots),
        positive(params.sigma_daily_bps),
        positive(params.impact_coefficient_bps),
    ) else {
        return Some(0);
    };
    let root = ceil_sqrt(ceil_div(qty.checked_mul(RATIO_SCALE)?, adv));
    let numerator = touch.checked_mul(coefficient)?.checked_mul(sigma)?.checked_mul(qty)?.checked_mul(root)?;
    Some(ceil_div(numerator, COST_DIVISOR))
}

/// The slices in which a taker of `side` takes `qty_lots` from simulated liquidity at `touch`.
/// Slices whose price would not be positive are left out (a sell into a collapsing bid). `None` on
/// overflow or a quantity that is not positive.
pub fn plan(side: Side, touch: Touch, qty_lots: i64, params: &SimParams) -> Option<SlicePlan> {
    if qty_lots <= 0 || touch.price_ticks <= 0 {
        return None;
    }
    let slices_max = params.slices_max.clamp(1, SLICES_MAX as i64);
    let slice_lots = touch.displayed_lots.max(qty_lots / slices_max + i64::from(qty_lots % slices_max != 0));
    let mut result = SlicePlan { slices: [Slice::default(); SLICES_MAX], len: 0 };
    let (mut cumulative_lots, mut cost_before, mut price_before) = (0i64, 0u128, touch.price_ticks);
    while cumulative_lots < qty_lots {
        let lots = slice_lots.min(qty_lots - cumulative_lots);
        cumulative_lots += lots;
        let cost = impact_cost_tick_lots(touch.price_ticks, cumulative_lots, params)?;
        let extra_ticks = i64::try_from(ceil_div(cost.checked_sub(cost_before)?, lots as u128)).ok()?;
        cost_before = cost;
        let price_ticks = match side {
            Side::Buy => touch.price_ticks.checked_add(extra_ticks)?.max(price_before),
            Side::Sell => touch.price_ticks.checked_sub(extra_ticks)?.min(price_before),
        };
        if price_ticks <= 0 {
            break;
        }
        price_before = price_ticks;
        result.slices[result.len] = Slice { price_ticks, qty_lots: lots };
        result.len += 1;
    }
    (result.len > 0).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::AssetClass;

    fn aapl() -> SimParams {
        // Y = 0.7, sigma = 2% a day, ADV = 1_000_000 shares.
        SimParams { adv_lots: 1_000_000, ..SimParams::defaults(AssetClass::Equity) }
    }

    #[test]
    fn the_average_price_moves_by_the_square_root_law() {
        // 10_000 shares at a 150.00 ask: Q/ADV = 0.01, sqrt = 0.1;
        // impact = 0.7 * 0.02 * 0.1 = 0.0014 of 15_000 ticks = 21 ticks a share;
        // E = 21 * 10_000 = 210_000 tick-lots (the root is exact, so no rounding).
        assert_eq!(impact_cost_tick_lots(15_000, 10_000, &aapl()), Some(210_000));
        // 5_000 shares: sqrt(0.005) = 0.0707106781..., root = 70_710_679 (rounded up);
        // 15_000 * 7_000 * 200 * 5_000 * 70_710_679 / 10^17 = 74_246.21295 -> 74_247.
        assert_eq!(impact_cost_tick_lots(15_000, 5_000, &aapl()), Some(74_247));
        // No volume, no impact.
        assert_eq!(impact_cost_tick_lots(15_000, 5_000, &SimParams::defaults(AssetClass::Equity)), Some(0));
    }

    #[test]
    fn a_large_order_walks_in_slices_at_successively_worse_prices() {
        // Displayed 5_000 at 150.00: slices of max(5_000, ceil(10_000 / 4)) = 5_000 lots.
        // Slice 1: ceil(74_247 / 5_000) = 15 ticks -> 150.15.
        // Slice 2: ceil((210_000 - 74_247) / 5_000) = ceil(27.15) = 28 ticks -> 150.28.
        // Average 150.215: the law's 150.21 plus the half tick that rounding charges the taker.
        let touch = Touch { price_ticks: 15_000, displayed_lots: 5_000 };
        let plan = plan(Side::Buy, touch, 10_000, &aapl()).unwrap();
        assert_eq!(
            plan.slices(),
            &[Slice { price_ticks: 15_015, qty_lots: 5_000 }, Slice { price_ticks: 15_028, qty_lots: 5_000 }]
        );
        // A sell at a 149.99 bid moves down by the same law on 14_999 ticks:
        // E(5_000) = ceil(14_999 * 7_000 * 200 * 5_000 * 70_710_679 / 10^17) = ceil(74_241.26...) = 74_242,
        // slice 1 = 14_999 - ceil(14.8484) = 14_984; E(10_000) = 209_986, slice 2 = 14_999 - ceil(27.1488) = 14_971.
        let bid = Touch { price_ticks: 14_999, displayed_lots: 5_000 };
        let plan = super::plan(Side::Sell, bid, 10_000, &aapl()).unwrap();
        assert_eq!(
            plan.slices(),
            &[Slice { price_ticks: 14_984, qty_lots: 5_000 }, Slice { price_ticks: 14_971, qty_lots: 5_000 }]
        );
    }

    #[test]
    fn an_order_within_the_displayed_size_is_one_slice_and_unknown_size_uses_slices_max() {
        let touch = Touch { price_ticks: 15_000, displayed_lots: 500 };
        // 100 shares: Q/ADV = 10^-4, sqrt = 0.01, impact = 0.7 * 0.02 * 0.01 * 15_000 = 2.1 ticks;
        // E = 210 tick-lots, one slice at 15_000 + ceil(2.1) = 15_003.
        assert_eq!(
            plan(Side::Buy, touch, 100, &aapl()).unwrap().slices(),
            &[Slice { price_ticks: 15_003, qty_lots: 100 }]
        );
        let unknown = Touch { price_ticks: 15_000, displayed_lots: 0 };
        let plan = plan(Side::Buy, unknown, 10, &aapl()).unwrap();
        assert_eq!(plan.slices().len(), 4);
        assert_eq!(plan.total_lots(), 10);
        assert!(plan.slices().windows(2).all(|w| w[0].price_ticks <= w[1].price_ticks));
    }

    #[test]
    fn overflow_is_none_and_prices_stay_positive() {
        let touch = Touch { price_ticks: i64::MAX, displayed_lots: 0 };
        assert_eq!(plan(Side::Buy, touch, i64::MAX, &aapl()), None);
        let tiny = Touch { price_ticks: 2, displayed_lots: 0 };
        let huge = SimParams { adv_lots: 1, sigma_daily_bps: 10_000, ..aapl() };
        assert!(plan(Side::Sell, tiny, 1_000, &huge).is_none_or(|p| p.slices().iter().all(|s| s.price_ticks > 0)));
    }
}
