//! The read model: the venue's events folded into what clients ask about.
//!
//! Fed one event at a time, in each shard's sequence order, from the runtime's event tap (live)
//! and from the journal (on start). It decides nothing: every number comes from an event, and
//! positions use the engine's own [`Position::apply_trade`], so the read model's P&L is the
//! engine's.
//!
//! The book model keeps, per symbol and side, the open lots of resting orders by price. Only
//! orders that may rest (limit, GTC/DAY/GTD) enter it; their open quantity follows fills, cancels
//! and replaces. Between the events of one command a book may look crossed; after the command's
//! last event it is the engine's book.

use super::{OrderFilter, TradePage};
use simex_engine::{
    AcceptedOrder, CancelReason, ClientOrderId, Event, EventBody, Fill, OrderId, OrderKind, PortfolioId, Position,
    Side, SymbolId, TimeInForce,
};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::PartiallyFilled => "partially_filled",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
            OrderState::Expired => "expired",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, OrderState::Open | OrderState::PartiallyFilled)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub order_id: OrderId,
    pub portfolio_id: PortfolioId,
    pub symbol_id: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    pub price_ticks: i64,
    /// Quantity ordered (after replaces: filled plus the new open quantity).
    pub qty_lots: i64,
    pub filled_lots: i64,
    pub open_lots: i64,
    pub time_in_force: TimeInForce,
    pub client_order_id: ClientOrderId,
    pub state: OrderState,
    pub cancel_reason: Option<CancelReason>,
    pub created_ns: i64,
    pub updated_ns: i64,
    /// Whether the order's open lots are in the book model.
    pub(crate) resting: bool,
}

/// One side of one portfolio's trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeRecord {
    pub trade_id: u64,
    pub order_id: OrderId,
    pub symbol_id: SymbolId,
    pub side: Side,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub fee_micros: i64,
    pub notional_micros: i64,
    pub timestamp_ns: i64,
}

/// Open lots by price on one side of a book.
pub type BookSide = BTreeMap<i64, i64>;

/// Book levels as (price ticks, open lots), best first.
pub type Levels = Vec<(i64, i64)>;

/// What is known of one symbol's market.
#[derive(Clone, Debug, Default)]
pub struct SymbolMarket {
    pub bids: BookSide,
    pub asks: BookSide,
    pub last_trade_ticks: Option<i64>,
    pub reference_ticks: Option<i64>,
    /// Sequence of the last event that touched this symbol (in its shard).
    pub sequence: u64,
}

impl SymbolMarket {
    /// The best `depth` levels: bids from the highest price, asks from the lowest.
    pub fn depth(&self, depth: usize) -> (Levels, Levels) {
        let bids = self.bids.iter().rev().take(depth).map(|(p, q)| (*p, *q)).collect();
        let asks = self.asks.iter().take(depth).map(|(p, q)| (*p, *q)).collect();
        (bids, asks)
    }

    /// The price positions are valued at: the last trade, else the reference price.
    pub fn mark_ticks(&self) -> Option<i64> {
        self.last_trade_ticks.or(self.reference_ticks)
    }
}

#[derive(Default)]
pub struct ReadModel {
    orders: HashMap<OrderId, OrderRecord>,
    orders_by_portfolio: HashMap<PortfolioId, Vec<OrderId>>,
    trades_by_portfolio: HashMap<PortfolioId, Vec<TradeRecord>>,
    positions: HashMap<PortfolioId, BTreeMap<SymbolId, Position>>,
    markets: HashMap<SymbolId, SymbolMarket>,
    portfolio_id_max: PortfolioId,
    last_seq_by_shard: HashMap<u16, u64>,
    /// The last sequence per shard of an event that changes some portfolio's history (not market
    /// data, halts or risk limits): how far another history store must have come to answer alike.
    last_history_seq_by_shard: HashMap<u16, u64>,
}

impl ReadModel {
    /// Folds one event of `shard` in. Events of a shard at or below its last applied sequence are
    /// ignored, so the journal and the tap may overlap.
    pub fn apply(&mut self, shard: u16, event: &Event) {
        let last = self.last_seq_by_shard.entry(shard).or_insert(0);
        if event.seq <= *last {
            return;
        }
        *last = event.seq;
        let market_only = matches!(
            event.body,
            EventBody::ReferencePriceSet { .. }
                | EventBody::ReferenceTradePrinted { .. }
                | EventBody::ReferenceQuoteSet { .. }
                | EventBody::HaltedSet { .. }
                | EventBody::RiskLimitsSet { .. }
        );
        if !market_only {
            self.last_history_seq_by_shard.insert(shard, event.seq);
        }
        let at_ns = event.timestamp_ns;
        match event.body {
            EventBody::PortfolioCreated { portfolio_id, .. } => {
                if portfolio_id != simex_engine::NO_PORTFOLIO {
                    self.portfolio_id_max = self.portfolio_id_max.max(portfolio_id);
                }
            }
            EventBody::OrderAccepted(order) => self.accept(order, at_ns, event.seq),
            EventBody::Fill(fill) => self.fill(&fill, at_ns, event.seq),
            EventBody::OrderCancelled { order_id, qty_lots, reason, .. } => {
                self.reduce_open(order_id, qty_lots, at_ns, event.seq);
                if let Some(order) = self.orders.get_mut(&order_id) {
                    order.state =
                        if reason == CancelReason::Expired { OrderState::Expired } else { OrderState::Cancelled };
                    order.cancel_reason = Some(reason);
                }
            }
            EventBody::OrderReplaced { order_id, price_ticks, qty_lots, .. } => {
                let Some(order) = self.orders.get(&order_id).cloned() else { return };
                self.reduce_open(order_id, order.open_lots, at_ns, event.seq);
                if let Some(stored) = self.orders.get_mut(&order_id) {
                    stored.price_ticks = price_ticks;
                    stored.open_lots = qty_lots;
                    stored.qty_lots = stored.filled_lots + qty_lots;
                    stored.state = if stored.filled_lots > 0 { OrderState::PartiallyFilled } else { OrderState::Open };
                    stored.updated_ns = at_ns;
                }
                if order.resting {
                    self.book_add(order.symbol_id, order.side, price_ticks, qty_lots, event.seq);
                }
            }
            EventBody::ReferencePriceSet { symbol_id, price_ticks }
            | EventBody::ReferenceTradePrinted { symbol_id, price_ticks, .. } => {
                let market = self.markets.entry(symbol_id).or_default();
                market.reference_ticks = Some(price_ticks);
                market.sequence = event.seq;
            }
            EventBody::ReferenceQuoteSet { symbol_id, bid_price_ticks, ask_price_ticks, .. } => {
                // The mid, rounded down to the tick.
                let market = self.markets.entry(symbol_id).or_default();
                market.reference_ticks = Some(bid_price_ticks + (ask_price_ticks - bid_price_ticks) / 2);
                market.sequence = event.seq;
            }
            // Conditional orders cannot be entered over HTTP yet; a fired one arrives as `OrderAccepted`.
            EventBody::CashAdjusted { .. }
            | EventBody::RiskLimitsSet { .. }
            | EventBody::Rejected { .. }
            | EventBody::HaltedSet { .. }
            | EventBody::ConditionalAccepted(_)
            | EventBody::OrderTriggered { .. } => {}
        }
    }

    fn accept(&mut self, order: AcceptedOrder, at_ns: i64, seq: u64) {
        let resting = order.kind == OrderKind::Limit && order.time_in_force.rests();
        self.orders.insert(
            order.order_id,
            OrderRecord {
                order_id: order.order_id,
                portfolio_id: order.portfolio_id,
                symbol_id: order.symbol_id,
                side: order.side,
                kind: order.kind,
                price_ticks: order.price_ticks,
                qty_lots: order.qty_lots,
                filled_lots: 0,
                open_lots: order.qty_lots,
                time_in_force: order.time_in_force,
                client_order_id: order.client_order_id,
                state: OrderState::Open,
                cancel_reason: None,
                created_ns: at_ns,
                updated_ns: at_ns,
                resting,
            },
        );
        self.orders_by_portfolio.entry(order.portfolio_id).or_default().push(order.order_id);
        if resting {
            self.book_add(order.symbol_id, order.side, order.price_ticks, order.qty_lots, seq);
        }
    }

    fn fill(&mut self, fill: &Fill, at_ns: i64, seq: u64) {
        let sides = [
            (fill.taker_order_id, fill.taker_portfolio_id, fill.taker_side, fill.taker_fee_micros),
            (fill.maker_order_id, fill.maker_portfolio_id, fill.taker_side.opposite(), fill.maker_fee_micros),
        ];
        // The simulated market (no portfolio) has no orders or trades to keep.
        for (order_id, portfolio_id, side, fee_micros) in
            sides.into_iter().filter(|s| s.1 != simex_engine::NO_PORTFOLIO)
        {
            self.reduce_open(order_id, fill.qty_lots, at_ns, seq);
            if let Some(order) = self.orders.get_mut(&order_id) {
                order.filled_lots += fill.qty_lots;
                order.state = if order.open_lots == 0 { OrderState::Filled } else { OrderState::PartiallyFilled };
            }
            self.trades_by_portfolio.entry(portfolio_id).or_default().push(TradeRecord {
                trade_id: fill.trade_id,
                order_id,
                symbol_id: fill.symbol_id,
                side,
                price_ticks: fill.price_ticks,
                qty_lots: fill.qty_lots,
                fee_micros,
                notional_micros: fill.notional_micros,
                timestamp_ns: at_ns,
            });
            let position = self.positions.entry(portfolio_id).or_default().entry(fill.symbol_id).or_default();
            position.apply_trade(side.sign(), fill.qty_lots, fill.notional_micros);
            position.fees_micros += fee_micros;
        }
        let market = self.markets.entry(fill.symbol_id).or_default();
        market.last_trade_ticks = Some(fill.price_ticks);
        market.sequence = seq;
    }

    /// Takes `qty_lots` off an order's open quantity (and off the book if it rests there).
    fn reduce_open(&mut self, order_id: OrderId, qty_lots: i64, at_ns: i64, seq: u64) {
        let Some(order) = self.orders.get_mut(&order_id) else { return };
        let taken = qty_lots.min(order.open_lots).max(0);
        order.open_lots -= taken;
        order.updated_ns = at_ns;
        let (resting, symbol_id, side, price_ticks) = (order.resting, order.symbol_id, order.side, order.price_ticks);
        if resting {
            self.book_add(symbol_id, side, price_ticks, -taken, seq);
        }
    }

    fn book_add(&mut self, symbol_id: SymbolId, side: Side, price_ticks: i64, qty_lots: i64, seq: u64) {
        let market = self.markets.entry(symbol_id).or_default();
        market.sequence = seq;
        let book = if side == Side::Buy { &mut market.bids } else { &mut market.asks };
        let level = book.entry(price_ticks).or_insert(0);
        *level += qty_lots;
        if *level <= 0 {
            book.remove(&price_ticks);
        }
    }

    pub fn trades(&self, portfolio_id: PortfolioId, limit: usize, offset: usize) -> TradePage {
        let Some(trades) = self.trades_by_portfolio.get(&portfolio_id) else { return TradePage::default() };
        TradePage {
            trades: trades.iter().rev().skip(offset).take(limit).copied().collect(),
            total: trades.len() as u64,
        }
    }

    pub fn orders(&self, portfolio_id: PortfolioId, filter: OrderFilter) -> Vec<OrderRecord> {
        let Some(ids) = self.orders_by_portfolio.get(&portfolio_id) else { return Vec::new() };
        ids.iter()
            .rev()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| match filter {
                OrderFilter::Open => o.state.is_open(),
                OrderFilter::Closed => !o.state.is_open(),
                OrderFilter::All => true,
            })
            .cloned()
            .collect()
    }

    pub fn order(&self, order_id: OrderId) -> Option<&OrderRecord> {
        self.orders.get(&order_id)
    }

    /// A portfolio's positions that are not flat, by symbol.
    pub fn positions(&self, portfolio_id: PortfolioId) -> Vec<(SymbolId, Position)> {
        self.positions
            .get(&portfolio_id)
            .map(|p| {
                p.iter().filter(|(_, p)| p.qty_lots != 0 || p.realized_pnl_micros != 0).map(|(s, p)| (*s, *p)).collect()
            })
            .unwrap_or_default()
    }

    pub fn market(&self, symbol_id: SymbolId) -> Option<&SymbolMarket> {
        self.markets.get(&symbol_id)
    }

    /// The last sequence folded in, per shard, by shard.
    pub fn last_seqs(&self) -> Vec<(u16, u64)> {
        let mut seqs: Vec<_> = self.last_seq_by_shard.iter().map(|(s, q)| (*s, *q)).collect();
        seqs.sort_unstable();
        seqs
    }

    /// The largest engine portfolio id an event has created.
    /// Per shard, the last sequence of an event that changed some portfolio's history.
    pub fn history_seqs(&self) -> Vec<(u16, u64)> {
        let mut seqs: Vec<_> = self.last_history_seq_by_shard.iter().map(|(s, q)| (*s, *q)).collect();
        seqs.sort_unstable();
        seqs
    }

    pub fn portfolio_id_max(&self) -> PortfolioId {
        self.portfolio_id_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::{Command, CommandBody, Engine, EngineConfig, InstrumentTable, NewOrder};

    /// The read model's books and positions agree with the engine's after a stream of commands.
    #[test]
    fn books_and_positions_follow_the_engine() {
        let instruments = InstrumentTable::default_table();
        let aapl = instruments.by_symbol("AAPL").unwrap().symbol_id;
        let mut engine = Engine::new(EngineConfig::default(), instruments);
        let mut model = ReadModel::default();
        let mut events = Vec::new();
        let commands = [
            CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 1_000_000_000_000 },
            CommandBody::CreatePortfolio { portfolio_id: 2, cash_micros: 1_000_000_000_000 },
            CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Sell, 15_010, 50)),
            CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Sell, 15_020, 50)),
            CommandBody::NewOrder(NewOrder::limit(1, aapl, Side::Buy, 14_990, 30)),
            CommandBody::NewOrder(NewOrder::market(2, aapl, Side::Buy, 70)),
            CommandBody::NewOrder(NewOrder::limit(2, aapl, Side::Buy, 15_020, 40)),
            CommandBody::Replace { portfolio_id: 1, order_id: 3, price_ticks: 14_980, qty_lots: 10 },
            CommandBody::NewOrder(NewOrder::limit(2, aapl, Side::Sell, 14_980, 4)),
        ];
        for (index, body) in commands.into_iter().enumerate() {
            events.clear();
            engine.apply(&Command { timestamp_ns: index as i64 + 1, body }, &mut events);
            for event in &events {
                model.apply(0, event);
            }
        }
        let market = model.market(aapl).unwrap();
        let (bids, asks) = market.depth(10);
        let levels =
            |side| engine.levels(aapl, side, 10).iter().map(|l| (l.price_ticks, l.qty_lots)).collect::<Vec<_>>();
        assert_eq!(bids, levels(Side::Buy));
        assert_eq!(asks, levels(Side::Sell));
        assert!(!bids.is_empty() || !asks.is_empty());
        for portfolio_id in [1, 2] {
            let position = engine.position(portfolio_id, aapl);
            let modelled = model.positions(portfolio_id).into_iter().find(|(s, _)| *s == aapl).map(|(_, p)| p);
            let modelled = modelled.unwrap_or_default();
            assert_eq!(modelled.qty_lots, position.qty_lots);
            assert_eq!(modelled.cost_basis_micros, position.cost_basis_micros);
            assert_eq!(modelled.realized_pnl_micros, position.realized_pnl_micros);
        }
        let all = model.orders(2, OrderFilter::All);
        assert_eq!(all.len(), 3);
        assert!(model.orders(2, OrderFilter::Closed).iter().all(|o| !o.state.is_open()));
        let page = model.trades(2, 2, 0);
        assert_eq!(page.total as usize, model.trades(2, 100, 0).trades.len());
        assert_eq!(page.trades.len(), 2);
        // Replaying the same events again changes nothing.
        let before = model.trades(2, 100, 0).total;
        events.clear();
        model.apply(
            0,
            &Event { seq: 1, timestamp_ns: 1, body: EventBody::PortfolioCreated { portfolio_id: 9, cash_micros: 1 } },
        );
        assert_eq!(model.trades(2, 100, 0).total, before);
        assert_eq!(model.portfolio_id_max(), 2);
    }
}
