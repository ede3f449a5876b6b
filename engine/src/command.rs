//! Commands: everything that can change a shard's state, each stamped with the time it happens.
//!
//! Commands are inputs from outside and may be wrong in every way; the engine answers a wrong command
//! with a rejection event, never a panic. Only `timestamp_ns` going backwards is a caller bug.

use crate::risk::RiskLimits;
use crate::types::{
    ClientOrderId, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side, SymbolId, TimeInForce, TriggerKind,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// When the command takes effect; never earlier than the previous command's.
    pub timestamp_ns: i64,
    #[serde(flatten)]
    pub body: CommandBody,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandBody {
    CreatePortfolio {
        portfolio_id: PortfolioId,
        cash_micros: i64,
    },
    /// Deposit (positive) or withdraw (negative) cash.
    AdjustCash {
        portfolio_id: PortfolioId,
        delta_micros: i64,
    },
    SetRiskLimits {
        portfolio_id: PortfolioId,
        limits: RiskLimits,
    },
    NewOrder(NewOrder),
    /// An entry order with exits that activate on its fills: a take-profit (a take-profit-limit at
    /// `take_profit_price_ticks`) and a stop-loss (a stop at `stop_loss_trigger_ticks`, a market
    /// when `stop_loss_limit_ticks` is 0, else a stop-limit). Either exit may be 0 (none); with one
    /// exit this is a one-triggers-other pair. The exits are sized to the entry's filled quantity
    /// and cancel each other (OCO).
    NewBracket {
        entry: NewOrder,
        #[serde(default)]
        take_profit_price_ticks: i64,
        #[serde(default)]
        stop_loss_trigger_ticks: i64,
        #[serde(default)]
        stop_loss_limit_ticks: i64,
    },
    Cancel {
        portfolio_id: PortfolioId,
        order_id: OrderId,
    },
    /// Cancel-replace: a new limit price and a new open (remaining) quantity.
    Replace {
        portfolio_id: PortfolioId,
        order_id: OrderId,
        price_ticks: i64,
        qty_lots: i64,
    },
    /// Cancel every open order of a portfolio, or only those in one symbol.
    MassCancel {
        portfolio_id: PortfolioId,
        symbol_id: Option<SymbolId>,
    },
    SetReferencePrice {
        symbol_id: SymbolId,
        price_ticks: i64,
    },
    SetHalted {
        symbol_id: SymbolId,
        halted: bool,
    },
    /// The outside market's best bid and offer (sizes 0 when the feed gives none). Feeds simulated
    /// liquidity and marks positions; see `docs/simulation.md`.
    ReferenceQuote {
        symbol_id: SymbolId,
        bid_price_ticks: i64,
        bid_qty_lots: i64,
        ask_price_ticks: i64,
        ask_qty_lots: i64,
    },
    /// A trade printed in the outside market. Moves the price band's anchor, fills resting orders
    /// it trades through, and models a quote when the feed has none.
    ReferenceTrade {
        symbol_id: SymbolId,
        price_ticks: i64,
        qty_lots: i64,
    },
    /// Lets time pass with nothing else happening, so that orders due to expire do.
    AdvanceTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub portfolio_id: PortfolioId,
    pub symbol_id: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    /// The limit price; ignored (and best left 0) for market orders.
    #[serde(default)]
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub time_in_force: TimeInForce,
    /// Expiry of a GTD order; ignored otherwise.
    #[serde(default)]
    pub expire_at_ns: i64,
    #[serde(default)]
    pub client_order_id: ClientOrderId,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default)]
    pub self_trade_policy: SelfTradePolicy,
    /// `none` for an order that goes to the book at once; otherwise the order waits off-book until
    /// its trigger fires (see `docs/orders.md`).
    #[serde(default)]
    pub trigger: TriggerKind,
    /// The trigger price of a stop or take-profit.
    #[serde(default)]
    pub trigger_price_ticks: i64,
    /// A trailing stop's distance in ticks (exactly one of `trail_ticks`, `trail_bps` is set).
    #[serde(default)]
    pub trail_ticks: i64,
    /// A trailing stop's distance in basis points of the best price, 1 to 9999.
    #[serde(default)]
    pub trail_bps: i64,
    /// Links this conditional order with an open conditional order of the same portfolio and
    /// symbol (0 for none): when either fires or ends, the other is cancelled.
    #[serde(default)]
    pub oco_order_id: OrderId,
}

impl NewOrder {
    /// A GTC limit order with no client id and default self-trade policy.
    pub fn limit(
        portfolio_id: PortfolioId,
        symbol_id: SymbolId,
        side: Side,
        price_ticks: i64,
        qty_lots: i64,
    ) -> NewOrder {
        NewOrder {
            portfolio_id,
            symbol_id,
            side,
            kind: OrderKind::Limit,
            price_ticks,
            qty_lots,
            time_in_force: TimeInForce::Gtc,
            expire_at_ns: 0,
            client_order_id: ClientOrderId::NONE,
            post_only: false,
            self_trade_policy: SelfTradePolicy::Default,
            trigger: TriggerKind::None,
            trigger_price_ticks: 0,
            trail_ticks: 0,
            trail_bps: 0,
            oco_order_id: 0,
        }
    }

    /// An immediate market order.
    pub fn market(portfolio_id: PortfolioId, symbol_id: SymbolId, side: Side, qty_lots: i64) -> NewOrder {
        NewOrder {
            kind: OrderKind::Market,
            price_ticks: 0,
            time_in_force: TimeInForce::Ioc,
            ..NewOrder::limit(portfolio_id, symbol_id, side, 0, qty_lots)
        }
    }

    pub fn with_tif(self, time_in_force: TimeInForce) -> NewOrder {
        NewOrder { time_in_force, ..self }
    }

    /// This order as a stop (`TriggerKind::Stop`) or take-profit waiting for `trigger_price_ticks`.
    pub fn triggered_at(self, trigger: TriggerKind, trigger_price_ticks: i64) -> NewOrder {
        NewOrder { trigger, trigger_price_ticks, ..self }
    }

    /// This order as a trailing stop `trail_ticks` behind the best price.
    pub fn trailing_ticks(self, trail_ticks: i64) -> NewOrder {
        NewOrder { trigger: TriggerKind::TrailingStop, trail_ticks, ..self }
    }

    /// This order as a trailing stop `trail_bps` basis points behind the best price.
    pub fn trailing_bps(self, trail_bps: i64) -> NewOrder {
        NewOrder { trigger: TriggerKind::TrailingStop, trail_bps, ..self }
    }
}
