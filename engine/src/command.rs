//! Commands: everything that can change a shard's state, each stamped with the time it happens.
//!
//! Commands are inputs from outside and may be wrong in every way; the engine answers a wrong command
//! with a rejection event, never a panic. Only `timestamp_ns` going backwards is a caller bug.

use crate::risk::RiskLimits;
use crate::types::{ClientOrderId, OrderId, OrderKind, PortfolioId, SelfTradePolicy, Side, SymbolId, TimeInForce};
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
}
