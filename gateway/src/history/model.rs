//! The read model: the venue's events folded into what clients ask about.
//!
//! Fed one event at a time, in each shard's sequence order, from the runtime's event tap (live)
//! and from the journal (on start). It decides nothing: every number comes from an event, and
//! positions use the engine's own [`Position::apply_trade`], so the read model's P&L is the
//! engine's.
//!
//! Conditional orders (stops, take-profits, trailing stops, bracket exits) enter as
//! `waiting_trigger` on `ConditionalAccepted` and become ordinary orders, under the same id, on
//! the `OrderAccepted` that follows their `OrderTriggered`. What the engine does without an event
//! is mirrored here from the events that cause it: a bracket exit grows by each fill of its entry,
//! and a trailing stop's best price follows trade prices (`Fill`, `ReferencePriceSet`,
//! `ReferenceTradePrinted`, as the engine's replay does).
//!
//! The book model keeps, per symbol and side, the open lots of resting orders by price. Only
//! orders that may rest (limit, GTC/DAY/GTD) enter it; their open quantity follows fills, cancels
//! and replaces. Between the events of one command a book may look crossed; after the command's
//! last event it is the engine's book.

use super::{OrderFilter, TradePage};
use simex_engine::{
    AcceptedConditional, AcceptedOrder, CancelReason, ClientOrderId, Event, EventBody, Fill, OrderId, OrderKind,
    PortfolioId, Position, Side, SymbolId, TimeInForce, TriggerKind,
};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderState {
    /// A conditional order waiting off-book for its trigger.
    WaitingTrigger,
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::WaitingTrigger => "waiting_trigger",
            OrderState::Open => "open",
            OrderState::PartiallyFilled => "partially_filled",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
            OrderState::Expired => "expired",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, OrderState::WaitingTrigger | OrderState::Open | OrderState::PartiallyFilled)
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
    /// `None` for an order that went to the book at once.
    pub trigger: TriggerKind,
    /// A stop's or take-profit's trigger price; a trailing stop's current stop price.
    pub trigger_price_ticks: i64,
    pub trail_ticks: i64,
    pub trail_bps: i64,
    /// A trailing stop's best price since acceptance.
    pub trail_best_ticks: i64,
    /// The entry this order is a bracket exit of (0 for none).
    pub parent_order_id: OrderId,
    /// The order this one is one-cancels-other linked with (0 for none).
    pub oco_order_id: OrderId,
    /// When and at which trade price a conditional order fired.
    pub triggered: Option<(i64, i64)>,
    /// The shard and sequence of the order's acceptance (its `OrderAccepted`, or its
    /// `ConditionalAccepted` for a conditional order): with `created_ns`, its place in listings.
    pub shard: u16,
    pub accepted_seq: u64,
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
    /// The shard and sequence of the fill: with `timestamp_ns`, its place in listings.
    pub shard: u16,
    pub seq: u64,
}

/// Open lots by price on one side of a book.
pub type BookSide = BTreeMap<i64, i64>;

/// Book levels as (price ticks, open lots), best first.
pub type Levels = Vec<(i64, i64)>;

/// One book level's new open quantity after an event (0: the level is gone). A level an event
/// changes several times is recorded once, with its final quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelChange {
    pub symbol_id: SymbolId,
    /// The shard whose event it was.
    pub shard: u16,
    /// The sequence of the event that changed the level.
    pub sequence: u64,
    /// The symbol's previous book-changing sequence: a client that saw it has seen every change
    /// before this one.
    pub prev_sequence: u64,
    pub side: Side,
    pub price_ticks: i64,
    pub qty_lots: i64,
}

/// What is known of one symbol's market.
#[derive(Clone, Debug, Default)]
pub struct SymbolMarket {
    pub bids: BookSide,
    pub asks: BookSide,
    pub last_trade_ticks: Option<i64>,
    pub reference_ticks: Option<i64>,
    /// Sequence of the last event that touched this symbol (in its shard).
    pub sequence: u64,
    /// Sequence of the last event that changed a level of this symbol's book (0 for none yet).
    pub book_sequence: u64,
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
    /// Book level changes since the last [`ReadModel::take_level_changes`], while recording.
    level_changes: Option<Vec<LevelChange>>,
    /// The shard of the event being applied.
    applying_shard: u16,
    orders: HashMap<OrderId, OrderRecord>,
    orders_by_portfolio: HashMap<PortfolioId, Vec<OrderId>>,
    trades_by_portfolio: HashMap<PortfolioId, Vec<TradeRecord>>,
    positions: HashMap<PortfolioId, BTreeMap<SymbolId, Position>>,
    markets: HashMap<SymbolId, SymbolMarket>,
    /// Bracket exits by entry order id, while they may still grow (an entry's fill forgets its
    /// exits that no longer wait).
    exits_by_parent: HashMap<OrderId, Vec<OrderId>>,
    /// Waiting trailing stops by symbol (pruned as they leave the waiting state).
    trailing_by_symbol: HashMap<SymbolId, Vec<OrderId>>,
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
        self.applying_shard = shard;
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
                self.trail(symbol_id, price_ticks);
            }
            EventBody::ReferenceQuoteSet { symbol_id, bid_price_ticks, ask_price_ticks, .. } => {
                // The mid, rounded down to the tick.
                let market = self.markets.entry(symbol_id).or_default();
                market.reference_ticks = Some(bid_price_ticks + (ask_price_ticks - bid_price_ticks) / 2);
                market.sequence = event.seq;
            }
            EventBody::ConditionalAccepted(order) => self.accept_conditional(order, at_ns, event.seq),
            EventBody::OrderTriggered { order_id, price_ticks, qty_lots, .. } => {
                if let Some(order) = self.orders.get_mut(&order_id) {
                    order.triggered = Some((at_ns, price_ticks));
                    order.qty_lots = qty_lots;
                    order.open_lots = qty_lots;
                    order.updated_ns = at_ns;
                }
            }
            EventBody::CashAdjusted { .. }
            | EventBody::RiskLimitsSet { .. }
            | EventBody::Rejected { .. }
            | EventBody::HaltedSet { .. } => {}
        }
    }

    fn accept(&mut self, order: AcceptedOrder, at_ns: i64, seq: u64) {
        let resting = order.kind == OrderKind::Limit && order.time_in_force.rests();
        // A conditional order that fired: the same record goes on as a book order.
        if let Some(fired) = self.orders.get_mut(&order.order_id) {
            fired.kind = order.kind;
            fired.price_ticks = order.price_ticks;
            fired.qty_lots = order.qty_lots;
            fired.open_lots = order.qty_lots;
            fired.time_in_force = order.time_in_force;
            fired.state = OrderState::Open;
            fired.updated_ns = at_ns;
            fired.resting = resting;
            if resting {
                self.book_add(order.symbol_id, order.side, order.price_ticks, order.qty_lots, seq);
            }
            return;
        }
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
                trigger: TriggerKind::None,
                trigger_price_ticks: 0,
                trail_ticks: 0,
                trail_bps: 0,
                trail_best_ticks: 0,
                parent_order_id: 0,
                oco_order_id: 0,
                triggered: None,
                shard: self.applying_shard,
                accepted_seq: seq,
                resting,
            },
        );
        self.list_order(order.portfolio_id, order.order_id);
        if resting {
            self.book_add(order.symbol_id, order.side, order.price_ticks, order.qty_lots, seq);
        }
    }

    fn accept_conditional(&mut self, order: AcceptedConditional, at_ns: i64, seq: u64) {
        let trailing = order.trigger == TriggerKind::TrailingStop;
        let mut record = OrderRecord {
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
            state: OrderState::WaitingTrigger,
            cancel_reason: None,
            created_ns: at_ns,
            updated_ns: at_ns,
            trigger: order.trigger,
            trigger_price_ticks: order.trigger_price_ticks,
            trail_ticks: order.trail_ticks,
            trail_bps: order.trail_bps,
            trail_best_ticks: if trailing { order.trigger_price_ticks } else { 0 },
            parent_order_id: order.parent_order_id,
            oco_order_id: order.oco_order_id,
            triggered: None,
            shard: self.applying_shard,
            accepted_seq: seq,
            resting: false,
        };
        if trailing {
            record.trigger_price_ticks = trail_stop_ticks(&record);
            self.trailing_by_symbol.entry(order.symbol_id).or_default().push(order.order_id);
        }
        // The link is mutual: the peer named here now names this order too.
        if order.oco_order_id != 0 {
            if let Some(peer) = self.orders.get_mut(&order.oco_order_id) {
                peer.oco_order_id = order.order_id;
            }
        }
        if order.parent_order_id != 0 {
            self.exits_by_parent.entry(order.parent_order_id).or_default().push(order.order_id);
        }
        self.orders.insert(order.order_id, record);
        self.list_order(order.portfolio_id, order.order_id);
    }

    /// Files a new order in its portfolio's listing, ordered by venue time, then shard, then
    /// sequence: an order independent of the order in which shards' events arrive (live, or
    /// shard by shard when rebuilt from the journals), and the one PostgreSQL lists by.
    fn list_order(&mut self, portfolio_id: PortfolioId, order_id: OrderId) {
        let orders = &self.orders;
        let key = |id: &OrderId| orders.get(id).map(|o| (o.created_ns, o.shard, o.accepted_seq));
        let new_key = key(&order_id);
        let ids = self.orders_by_portfolio.entry(portfolio_id).or_default();
        let at = ids.iter().rposition(|id| key(id) <= new_key).map_or(0, |i| i + 1);
        ids.insert(at, order_id);
    }

    /// A trade price moves the best price of the symbol's waiting trailing stops.
    fn trail(&mut self, symbol_id: SymbolId, price_ticks: i64) {
        let Some(ids) = self.trailing_by_symbol.get_mut(&symbol_id) else { return };
        let orders = &mut self.orders;
        ids.retain(|id| {
            let Some(order) = orders.get_mut(id) else { return false };
            if order.state != OrderState::WaitingTrigger {
                return false;
            }
            let better = match order.side {
                Side::Sell => price_ticks > order.trail_best_ticks,
                Side::Buy => price_ticks < order.trail_best_ticks,
            };
            if better {
                order.trail_best_ticks = price_ticks;
                order.trigger_price_ticks = trail_stop_ticks(order);
            }
            true
        });
    }

    /// A fill of a bracket entry adds its quantity to the exits still waiting.
    fn grow_exits(&mut self, entry_id: OrderId, qty_lots: i64) {
        let Some(exits) = self.exits_by_parent.get_mut(&entry_id) else { return };
        let orders = &mut self.orders;
        // Exits that no longer wait (fired, cancelled) never grow again: forget them.
        exits.retain(|exit_id| {
            let Some(exit) = orders.get_mut(exit_id).filter(|e| e.state == OrderState::WaitingTrigger) else {
                return false;
            };
            exit.qty_lots += qty_lots;
            exit.open_lots += qty_lots;
            true
        });
        if exits.is_empty() {
            self.exits_by_parent.remove(&entry_id);
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
            self.grow_exits(order_id, fill.qty_lots);
            let trade = TradeRecord {
                trade_id: fill.trade_id,
                order_id,
                symbol_id: fill.symbol_id,
                side,
                price_ticks: fill.price_ticks,
                qty_lots: fill.qty_lots,
                fee_micros,
                notional_micros: fill.notional_micros,
                timestamp_ns: at_ns,
                shard: self.applying_shard,
                seq,
            };
            // Ordered by venue time, shard, sequence (see `list_order`); a fill's two sides of one
            // portfolio keep their order, taker first.
            let trades = self.trades_by_portfolio.entry(portfolio_id).or_default();
            let key = (trade.timestamp_ns, trade.shard, trade.seq);
            let at = trades.iter().rposition(|t| (t.timestamp_ns, t.shard, t.seq) <= key).map_or(0, |i| i + 1);
            trades.insert(at, trade);
            let position = self.positions.entry(portfolio_id).or_default().entry(fill.symbol_id).or_default();
            position.apply_trade(side.sign(), fill.qty_lots, fill.notional_micros);
            position.fees_micros += fee_micros;
        }
        let market = self.markets.entry(fill.symbol_id).or_default();
        market.last_trade_ticks = Some(fill.price_ticks);
        market.sequence = seq;
        self.trail(fill.symbol_id, fill.price_ticks);
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
        let total_lots = (*level).max(0);
        if *level <= 0 {
            book.remove(&price_ticks);
        }
        if qty_lots == 0 {
            return;
        }
        let prev_sequence = market.book_sequence;
        market.book_sequence = seq;
        let shard = self.applying_shard;
        let Some(changes) = self.level_changes.as_mut() else { return };
        // Several changes of one level by one event are one change; a later event's change chains
        // to the sequence before it.
        // This event's changes so far are the last ones (an event touches one symbol).
        let this_event = changes.iter().rev().take_while(|c| c.symbol_id == symbol_id && c.sequence == seq).count();
        match (this_event > 0).then(|| changes.len() - this_event) {
            Some(index) => {
                let prev_sequence = changes[index].prev_sequence;
                let level = changes[index..]
                    .iter_mut()
                    .find(|c| c.symbol_id == symbol_id && c.side == side && c.price_ticks == price_ticks);
                match level {
                    Some(change) => change.qty_lots = total_lots,
                    None => changes.push(LevelChange {
                        symbol_id,
                        shard,
                        sequence: seq,
                        prev_sequence,
                        side,
                        price_ticks,
                        qty_lots: total_lots,
                    }),
                }
            }
            None => changes.push(LevelChange {
                symbol_id,
                shard,
                sequence: seq,
                prev_sequence,
                side,
                price_ticks,
                qty_lots: total_lots,
            }),
        }
    }

    /// Starts (or stops) recording book level changes for [`ReadModel::take_level_changes`].
    pub fn record_level_changes(&mut self, record: bool) {
        self.level_changes = record.then(Vec::new);
    }

    /// The level changes recorded since the last call, in event order.
    pub fn take_level_changes(&mut self) -> Vec<LevelChange> {
        self.level_changes.as_mut().map(std::mem::take).unwrap_or_default()
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
        ids.iter().rev().filter_map(|id| self.orders.get(id)).filter(|o| filter.keeps(o.state)).cloned().collect()
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

    /// Per shard, the last sequence of an event that changed some portfolio's history.
    pub fn history_seqs(&self) -> Vec<(u16, u64)> {
        let mut seqs: Vec<_> = self.last_history_seq_by_shard.iter().map(|(s, q)| (*s, *q)).collect();
        seqs.sort_unstable();
        seqs
    }

    /// The largest engine portfolio id an event has created.
    pub fn portfolio_id_max(&self) -> PortfolioId {
        self.portfolio_id_max
    }
}

/// A trailing stop's stop price from its best price: `best - trail` for a sell, `best + trail` for
/// a buy, a trail in basis points being that share of the best price rounded up to a whole tick
/// (as the engine computes it).
fn trail_stop_ticks(order: &OrderRecord) -> i64 {
    crate::projection::batch::trail_stop_ticks(order.side, order.trail_best_ticks, order.trail_ticks, order.trail_bps)
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

    /// Waiting conditional orders, bracket exits' sizes and trailing stops in the read model agree
    /// with the engine's after a stream of conditional commands; the recorded level changes,
    /// applied in order to an empty book, give the read model's books.
    #[test]
    fn conditional_orders_and_level_changes_follow_the_engine() {
        use simex_engine::TriggerKind;
        let instruments = InstrumentTable::default_table();
        let aapl = instruments.by_symbol("AAPL").unwrap().symbol_id;
        let mut engine = Engine::new(EngineConfig::default(), instruments);
        let mut model = ReadModel::default();
        model.record_level_changes(true);
        let limit = |p, side, price, qty| CommandBody::NewOrder(NewOrder::limit(p, aapl, side, price, qty));
        let market = |p, side, qty| CommandBody::NewOrder(NewOrder::market(p, aapl, side, qty));
        let commands = [
            CommandBody::CreatePortfolio { portfolio_id: 1, cash_micros: 1_000_000_000_000 },
            CommandBody::CreatePortfolio { portfolio_id: 2, cash_micros: 1_000_000_000_000 },
            CommandBody::CreatePortfolio { portfolio_id: 3, cash_micros: 1_000_000_000_000 },
            limit(1, Side::Sell, 15_000, 5),
            market(2, Side::Buy, 1),
            // Order 3: a trailing stop by ticks; 4: by basis points; 5: a stop; 6: OCO with 5.
            CommandBody::NewOrder(NewOrder::market(3, aapl, Side::Sell, 2).trailing_ticks(100)),
            CommandBody::NewOrder(NewOrder::market(3, aapl, Side::Sell, 2).trailing_bps(500)),
            CommandBody::NewOrder(NewOrder::market(3, aapl, Side::Sell, 1).triggered_at(TriggerKind::Stop, 14_000)),
            CommandBody::NewOrder(NewOrder {
                oco_order_id: 5,
                ..NewOrder::limit(3, aapl, Side::Sell, 16_000, 1).triggered_at(TriggerKind::TakeProfit, 16_000)
            }),
            // Order 7: a bracket whose limit entry fills in parts (exits 8 and 9).
            CommandBody::NewBracket {
                entry: NewOrder::limit(3, aapl, Side::Buy, 14_900, 6),
                take_profit_price_ticks: 15_800,
                stop_loss_trigger_ticks: 14_200,
                stop_loss_limit_ticks: 0,
            },
            limit(1, Side::Sell, 14_900, 2),
            limit(1, Side::Sell, 15_200, 3),
            market(2, Side::Buy, 7),
            limit(1, Side::Sell, 14_900, 1),
            CommandBody::Cancel { portfolio_id: 3, order_id: 6 },
            CommandBody::Replace { portfolio_id: 3, order_id: 7, price_ticks: 14_950, qty_lots: 2 },
            limit(2, Side::Buy, 15_100, 4),
            market(1, Side::Sell, 5),
        ];
        let mut events = Vec::new();
        for (index, body) in commands.into_iter().enumerate() {
            events.clear();
            engine.apply(&Command { timestamp_ns: index as i64 + 1, body }, &mut events);
            for event in &events {
                model.apply(0, event);
            }
        }
        let waiting: Vec<_> =
            model.orders(3, OrderFilter::Open).into_iter().filter(|o| o.state == OrderState::WaitingTrigger).collect();
        let mut engine_waiting = engine.conditional_orders();
        engine_waiting.sort_by_key(|c| c.order_id);
        let mut waiting_ids: Vec<_> = waiting.iter().map(|o| o.order_id).collect();
        waiting_ids.sort_unstable();
        assert_eq!(waiting_ids, engine_waiting.iter().map(|c| c.order_id).collect::<Vec<_>>());
        assert!(waiting_ids.len() >= 3, "{waiting_ids:?}");
        for conditional in &engine_waiting {
            let order = model.order(conditional.order_id).unwrap();
            assert_eq!(order.qty_lots, conditional.qty_lots, "{conditional:?}");
            assert_eq!(order.oco_order_id, conditional.oco_order_id, "{conditional:?}");
            match engine.trailing_stop_ticks(conditional.order_id) {
                Some(stop_ticks) => assert_eq!(order.trigger_price_ticks, stop_ticks, "{conditional:?}"),
                None => assert_eq!(order.trigger_price_ticks, conditional.trigger_price_ticks),
            }
        }
        // The bracket's exits grew with the entry's fills; the cancelled OCO leg took its peer.
        assert!(engine_waiting.iter().any(|c| c.parent_order_id == 7 && c.qty_lots > 0));
        assert_eq!(model.order(5).unwrap().cancel_reason, Some(CancelReason::Linked));
        assert!(engine.trailing_stop_ticks(4).is_some(), "a trailing stop still waits");
        assert!(model.order(3).unwrap().triggered.is_some(), "a trailing stop fired");
        let (bids, asks) = model.market(aapl).unwrap().depth(usize::MAX);
        let levels =
            |side| engine.levels(aapl, side, 100).iter().map(|l| (l.price_ticks, l.qty_lots)).collect::<Vec<_>>();
        assert_eq!((bids.clone(), asks.clone()), (levels(Side::Buy), levels(Side::Sell)));
        let mut rebuilt = SymbolMarket::default();
        let mut sequence = 0;
        for change in model.take_level_changes() {
            if change.sequence != sequence {
                assert_eq!(change.prev_sequence, sequence, "{change:?}");
                sequence = change.sequence;
            }
            let side = if change.side == Side::Buy { &mut rebuilt.bids } else { &mut rebuilt.asks };
            match change.qty_lots {
                0 => side.remove(&change.price_ticks),
                qty_lots => side.insert(change.price_ticks, qty_lots),
            };
        }
        assert_eq!(rebuilt.depth(usize::MAX), (bids, asks));
        assert_eq!(sequence, model.market(aapl).unwrap().book_sequence);
    }
}
