//! A portfolio's position in one symbol, owned by the shard that owns the symbol.
//!
//! The position keeps its cost basis as a signed sum of notionals (positive long, negative short),
//! so the average entry price is derived, never stored rounded. Closing part of a position removes
//! the proportional part of the basis (rounded toward zero; all of it on a full close), and the
//! difference between that and the closing trade's cash flow is realized P&L. Fees are kept apart
//! from P&L.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Position {
    /// Signed: long positive, short negative.
    pub qty_lots: i64,
    /// Signed sum of the notionals of the open lots.
    pub cost_basis_micros: i64,
    /// Long lots held by open sell orders.
    pub reserved_lots: i64,
    pub open_buy_lots: i64,
    pub open_sell_lots: i64,
    /// Cash held against the short exposure (see [`Position::short_exposure_lots`]).
    pub margin_micros: i64,
    pub realized_pnl_micros: i64,
    pub fees_micros: i64,
}

/// What one trade did to a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeEffect {
    pub realized_pnl_micros: i64,
    /// Change of |cost basis|, for the portfolio's gross exposure.
    pub gross_exposure_delta_micros: i64,
}

impl Position {
    /// Lots the portfolio is committed to deliver beyond what it holds: an actual short, plus open
    /// sells' reserved lots that the position no longer covers. Margin is held while this is positive.
    pub fn short_exposure_lots(&self) -> i64 {
        (self.reserved_lots - self.qty_lots).max(0)
    }

    /// Long lots no open sell holds.
    pub fn free_long_lots(&self) -> i64 {
        (self.qty_lots - self.reserved_lots).max(0)
    }

    pub fn is_flat_and_idle(&self) -> bool {
        self.qty_lots == 0
            && self.reserved_lots == 0
            && self.open_buy_lots == 0
            && self.open_sell_lots == 0
            && self.margin_micros == 0
    }

    /// Applies a trade of `qty_lots` (signed by `side_sign`) worth `notional_micros`.
    pub fn apply_trade(&mut self, side_sign: i64, qty_lots: i64, notional_micros: i64) -> TradeEffect {
        debug_assert!(qty_lots > 0 && notional_micros >= 0 && (side_sign == 1 || side_sign == -1));
        let gross_before = self.cost_basis_micros.abs();
        let mut realized = 0i64;
        if self.qty_lots == 0 || self.qty_lots.signum() == side_sign {
            self.qty_lots += side_sign * qty_lots;
            self.cost_basis_micros += side_sign * notional_micros;
        } else {
            let held = self.qty_lots.abs();
            let closing = qty_lots.min(held);
            let closing_notional =
                if closing == qty_lots { notional_micros } else { mul_div(notional_micros, closing, qty_lots) };
            let removed_basis =
                if closing == held { self.cost_basis_micros } else { mul_div(self.cost_basis_micros, closing, held) };
            // Cash flow of the closing part minus the basis it retires.
            realized = -side_sign * closing_notional - removed_basis;
            self.cost_basis_micros -= removed_basis;
            self.qty_lots += side_sign * closing;
            let opening = qty_lots - closing;
            if opening > 0 {
                self.qty_lots += side_sign * opening;
                self.cost_basis_micros += side_sign * (notional_micros - closing_notional);
            }
        }
        debug_assert!(self.qty_lots != 0 || self.cost_basis_micros == 0);
        self.realized_pnl_micros += realized;
        TradeEffect {
            realized_pnl_micros: realized,
            gross_exposure_delta_micros: self.cost_basis_micros.abs() - gross_before,
        }
    }
}

/// `value * numerator / denominator`, rounded toward zero, in `i128`.
fn mul_div(value: i64, numerator: i64, denominator: i64) -> i64 {
    let result = i128::from(value) * i128::from(numerator) / i128::from(denominator);
    i64::try_from(result).expect("a part of an i64 fits in an i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_round_trip_realizes_the_difference() {
        let mut position = Position::default();
        position.apply_trade(1, 10, 1_000);
        position.apply_trade(1, 10, 3_000);
        assert_eq!((position.qty_lots, position.cost_basis_micros), (20, 4_000));
        let effect = position.apply_trade(-1, 5, 1_500);
        // 5 of 20 lots retire 1000 of basis; sold for 1500.
        assert_eq!(effect.realized_pnl_micros, 500);
        assert_eq!(effect.gross_exposure_delta_micros, -1_000);
        let effect = position.apply_trade(-1, 15, 3_000);
        assert_eq!(effect.realized_pnl_micros, 0);
        assert_eq!(position.qty_lots, 0);
        assert_eq!(position.cost_basis_micros, 0);
        assert_eq!(position.realized_pnl_micros, 500);
    }

    #[test]
    fn a_trade_through_zero_closes_then_opens() {
        let mut position = Position::default();
        position.apply_trade(1, 4, 400);
        let effect = position.apply_trade(-1, 10, 1_200);
        // closes 4 lots for 480 (basis 400), opens a short of 6 lots worth 720
        assert_eq!(effect.realized_pnl_micros, 80);
        assert_eq!((position.qty_lots, position.cost_basis_micros), (-6, -720));
        let effect = position.apply_trade(1, 6, 600);
        assert_eq!(effect.realized_pnl_micros, 120);
        assert_eq!(position.cost_basis_micros, 0);
    }

    #[test]
    fn short_exposure_counts_uncovered_reservations() {
        let position = Position { qty_lots: 7, reserved_lots: 10, ..Position::default() };
        assert_eq!(position.short_exposure_lots(), 3);
        assert_eq!(position.free_long_lots(), 0);
        let position = Position { qty_lots: -2, reserved_lots: 1, ..Position::default() };
        assert_eq!(position.short_exposure_lots(), 3);
    }
}
