//! Per-portfolio risk limits. The checks themselves run in `engine`, in one place, in a fixed order
//! (so that the reason a client is given is deterministic); per-instrument limits live in `instrument`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskLimits {
    /// Largest value of one order at its limit (or protection) price.
    pub order_notional_max_micros: i64,
    /// Largest sum over symbols of |position value at cost| that an order may lead to.
    pub gross_exposure_max_micros: i64,
    /// Most open orders per shard.
    pub open_orders_max: u32,
    /// Once the day's realized loss including fees reaches this, only risk-reducing orders are accepted.
    pub daily_loss_max_micros: i64,
}

impl Default for RiskLimits {
    fn default() -> RiskLimits {
        RiskLimits {
            order_notional_max_micros: 10_000_000 * 1_000_000,
            gross_exposure_max_micros: 50_000_000 * 1_000_000,
            open_orders_max: 10_000,
            daily_loss_max_micros: i64::MAX,
        }
    }
}

impl RiskLimits {
    /// Whether every limit is a sensible value (positive).
    pub fn is_valid(&self) -> bool {
        self.order_notional_max_micros > 0
            && self.gross_exposure_max_micros > 0
            && self.open_orders_max > 0
            && self.daily_loss_max_micros > 0
    }
}
