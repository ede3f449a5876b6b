//! Folding journaled engine events into the rows of one database transaction.
//!
//! Event-shaped rows (portfolios, cash adjustments, fills, rejections) are one row per event, keyed by
//! the event's identity `(shard, seq)` (a portfolio by its id), so inserting one twice does nothing.
//! State-shaped rows are folded here so that a batch touches each row once:
//!
//! - an order accepted in this batch becomes a whole row (`new_orders`) and later events of the
//!   batch are applied to it directly;
//! - events for orders accepted in earlier batches become one [`OrderUpdate`] per order: the fills'
//!   total, the last replace (a new price and a new *open* quantity, fills after it subtracted) and
//!   a cancel. The database applies it only if the order's `last_seq` is older than the update's
//!   `first_seq`, so an update cannot be applied twice;
//! - fills add to per (portfolio, symbol) [`PositionDelta`]s, added to `positions` under the same
//!   `last_seq < first_seq` guard (a symbol, and so a position, belongs to one shard).
//!
//! Conditional orders (stops, take-profits, trailing stops, bracket exits, orders in flight under a
//! latency model) are rows from their `ConditionalAccepted` on, in status `waiting_trigger`, folded
//! as the read model (`history::model`) folds them: a new conditional naming an OCO peer links the
//! peer back; `OrderTriggered` records the trigger's time and trade price and the quantity fired;
//! the `OrderAccepted` that follows turns the same row (same id) into a book order. What the engine
//! does without an event of the order's own is followed here from the events that cause it:
//!
//! - a fill of a bracket entry grows its waiting exits (quantity and open lots);
//! - a trade price (`Fill`, `ReferencePriceSet`, `ReferenceTradePrinted`) moves a waiting trailing
//!   stop's best price, and its stop price with the engine's rounding.
//!
//! For rows of this batch both happen here. For rows of earlier batches the batch carries what
//! the database needs to do it with one statement each (`store::GROW_EXITS`, `store::TRAIL_STOPS`):
//! the fills and the [`ReferencePriceRow`]s, and per updated order the sequence at which this batch
//! ends its waiting ([`OrderUpdate::waiting_until_seq`]). A trailing stop's best price only moves
//! one way, so applying it twice changes nothing; an exit's growth is guarded by its `grown_seq`
//! (the newest entry fill counted). A batch may end between a trigger and its `OrderAccepted`: that
//! `OrderAccepted` then looks like a new order, and its row replaces the waiting one in the database
//! (`store::INSERT_ORDERS`), guarded like an update.
//!
//! Order ids, portfolio ids and sequences fit in `i64` (PostgreSQL has no unsigned integers); a value
//! that does not is a [`BatchError`], never a wrap.

use simex_engine::sim::SIMULATED_ORDER_ID;
use simex_engine::{AcceptedConditional, AcceptedOrder, CancelReason, ClientOrderId, Event, EventBody, Fill};
use simex_engine::{OrderKind, RejectReason, Side, TimeInForce, TriggerKind, BASIS_POINTS_PER_UNIT, NO_PORTFOLIO};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("shard {shard} record {seq}: {what} {value} does not fit in a signed 64-bit column")]
    OutOfRange { shard: u32, seq: u64, what: &'static str, value: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortfolioRow {
    pub portfolio_id: i64,
    pub starting_cash_micros: i64,
    pub created_at_ns: i64,
    pub shard: i32,
    pub seq: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CashAdjustmentRow {
    pub shard: i32,
    pub seq: i64,
    pub portfolio_id: i64,
    pub delta_micros: i64,
    pub timestamp_ns: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    pub order_id: i64,
    pub portfolio_id: i64,
    pub symbol_id: i32,
    pub side: &'static str,
    pub kind: &'static str,
    pub time_in_force: &'static str,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub open_lots: i64,
    pub filled_lots: i64,
    pub status: &'static str,
    pub cancel_reason: Option<&'static str>,
    pub client_order_id: Option<String>,
    pub expire_at_ns: i64,
    pub accepted_at_ns: i64,
    pub updated_at_ns: i64,
    pub shard: i32,
    pub accepted_seq: i64,
    pub last_seq: i64,
    /// `none` for an order that went to the book at once.
    pub trigger_kind: &'static str,
    /// A stop's or take-profit's trigger price; a trailing stop's current stop price.
    pub trigger_price_ticks: i64,
    pub trail_ticks: i64,
    pub trail_bps: i64,
    /// A trailing stop's best trade price since acceptance.
    pub trail_best_ticks: i64,
    pub parent_order_id: i64,
    pub oco_order_id: i64,
    pub triggered_at_ns: Option<i64>,
    pub triggered_price_ticks: Option<i64>,
    /// The newest fill of the bracket entry counted in this exit's quantity (`accepted_seq` before).
    pub grown_seq: i64,
}

/// Status of a conditional order waiting for its trigger.
pub const WAITING_TRIGGER: &str = "waiting_trigger";

/// A `ReferencePriceSet` or `ReferenceTradePrinted` of the batch: with the batch's fills, the trade
/// prices that move waiting trailing stops of earlier batches (`store::TRAIL_STOPS`). Not a table.
/// Only prices that make a new high or low of their symbol in the batch are kept: `TRAIL_STOPS`
/// takes the highest (lowest) price of a prefix of the batch, and a prefix's extreme is always one
/// of those, so the feed's other prices need not be copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferencePriceRow {
    pub symbol_id: i32,
    pub seq: i64,
    pub price_ticks: i64,
}

/// What one batch did to an order accepted in an earlier batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderUpdate {
    pub order_id: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The price of the last replace.
    pub price_ticks: Option<i64>,
    /// The open quantity the last replace set.
    pub open_base_lots: Option<i64>,
    /// Lots filled since the last replace (since the batch began if none).
    pub open_minus_lots: i64,
    /// Lots filled in the batch.
    pub filled_lots: i64,
    pub cancel_reason: Option<&'static str>,
    /// `None` when only a link changed (the read model does not count that as an update).
    pub updated_at_ns: Option<i64>,
    /// What a fired conditional order became (its `OrderAccepted`): kind, time in force, quantity.
    pub kind: Option<&'static str>,
    pub time_in_force: Option<&'static str>,
    pub qty_lots: Option<i64>,
    /// Whether the batch turned a waiting conditional order into a book order.
    pub activated: bool,
    pub oco_order_id: Option<i64>,
    pub triggered_at_ns: Option<i64>,
    pub triggered_price_ticks: Option<i64>,
    /// The sequence at which the order stopped waiting for a trigger in this batch (its first
    /// `OrderAccepted` or cancel): entry fills and trade prices from then on leave it alone.
    pub waiting_until_seq: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillRow {
    pub shard: i32,
    pub seq: i64,
    pub trade_id: i64,
    pub symbol_id: i32,
    pub maker_order_id: i64,
    pub maker_portfolio_id: i64,
    pub taker_order_id: i64,
    pub taker_portfolio_id: i64,
    pub taker_side: &'static str,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub notional_micros: i64,
    pub maker_fee_micros: i64,
    pub taker_fee_micros: i64,
    pub timestamp_ns: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionRow {
    pub shard: i32,
    pub seq: i64,
    pub portfolio_id: i64,
    pub order_id: i64,
    pub client_order_id: Option<String>,
    pub reason: &'static str,
    pub timestamp_ns: i64,
}

/// One `OrderReplaced`: the order's new price and open quantity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplacementRow {
    pub shard: i32,
    pub seq: i64,
    pub order_id: i64,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub timestamp_ns: i64,
}

/// What a batch's fills add to one (portfolio, symbol) position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PositionDelta {
    pub net_lots: i64,
    pub bought_lots: i64,
    pub sold_lots: i64,
    pub bought_notional_micros: i64,
    pub sold_notional_micros: i64,
    pub fees_micros: i64,
    pub updated_at_ns: i64,
    /// Sequences of the first and last fill counted (of the symbol's shard).
    pub first_seq: i64,
    pub last_seq: i64,
}

/// The journal range of one shard a batch covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardRange {
    pub epoch: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_timestamp_ns: i64,
}

/// The rows of one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: usize,
    pub shards: BTreeMap<u32, ShardRange>,
    pub portfolios: Vec<PortfolioRow>,
    pub cash_adjustments: Vec<CashAdjustmentRow>,
    pub new_orders: BTreeMap<i64, OrderRow>,
    pub order_updates: BTreeMap<i64, OrderUpdate>,
    pub fills: Vec<FillRow>,
    pub rejections: Vec<RejectionRow>,
    pub replacements: Vec<ReplacementRow>,
    pub positions: BTreeMap<(i64, i32), PositionDelta>,
    pub reference_prices: Vec<ReferencePriceRow>,
    /// The highest and lowest reference price of each symbol in `reference_prices`.
    reference_extremes: BTreeMap<i32, (i64, i64)>,
    /// Bracket exits among `new_orders`, by entry.
    exits_by_parent: BTreeMap<i64, Vec<i64>>,
    /// Trailing stops among `new_orders`, by symbol.
    trailing_by_symbol: BTreeMap<i32, Vec<i64>>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn clear(&mut self) {
        *self = Batch::default();
    }

    /// Adds one event of `shard` (journal epoch `epoch`). Events of a shard must come in sequence.
    pub fn add(&mut self, shard: u32, epoch: u64, event: &Event) -> Result<(), BatchError> {
        let seq = signed(shard, event.seq, "sequence", event.seq)?;
        let at_ns = event.timestamp_ns;
        let shard_i32 = shard as i32;
        let range = self.shards.entry(shard).or_insert(ShardRange {
            epoch,
            first_seq: event.seq,
            last_seq: event.seq,
            last_timestamp_ns: at_ns,
        });
        range.last_seq = event.seq;
        range.last_timestamp_ns = at_ns;
        self.records += 1;
        match event.body {
            EventBody::PortfolioCreated { portfolio_id, cash_micros } => self.portfolios.push(PortfolioRow {
                portfolio_id: i64::from(portfolio_id),
                starting_cash_micros: cash_micros,
                created_at_ns: at_ns,
                shard: shard_i32,
                seq,
            }),
            EventBody::CashAdjusted { portfolio_id, delta_micros } => self.cash_adjustments.push(CashAdjustmentRow {
                shard: shard_i32,
                seq,
                portfolio_id: i64::from(portfolio_id),
                delta_micros,
                timestamp_ns: at_ns,
            }),
            EventBody::OrderAccepted(order) => self.add_accepted(shard, seq, at_ns, &order)?,
            EventBody::ConditionalAccepted(order) => self.add_conditional(shard, seq, at_ns, &order)?,
            EventBody::OrderTriggered { order_id, price_ticks, qty_lots, .. } => {
                let order_id = signed(shard, event.seq, "order id", order_id)?;
                if let Some(row) = self.new_orders.get_mut(&order_id) {
                    row.triggered_at_ns = Some(at_ns);
                    row.triggered_price_ticks = Some(price_ticks);
                    row.qty_lots = qty_lots;
                    row.open_lots = qty_lots;
                    touch(row, seq, at_ns);
                } else {
                    let update = self.update(order_id, seq, Some(at_ns));
                    update.triggered_at_ns = Some(at_ns);
                    update.triggered_price_ticks = Some(price_ticks);
                    update.qty_lots = Some(qty_lots);
                    update.open_base_lots = Some(qty_lots);
                    update.open_minus_lots = 0;
                }
            }
            EventBody::Rejected { portfolio_id, order_id, client_order_id, reason } => {
                self.rejections.push(RejectionRow {
                    shard: shard_i32,
                    seq,
                    portfolio_id: i64::from(portfolio_id),
                    order_id: signed(shard, event.seq, "order id", order_id)?,
                    client_order_id: client_text(&client_order_id),
                    reason: reject_reason_name(reason),
                    timestamp_ns: at_ns,
                })
            }
            EventBody::Fill(fill) => self.add_fill(shard, seq, at_ns, &fill)?,
            EventBody::OrderCancelled { order_id, reason, .. } => {
                let order_id = signed(shard, event.seq, "order id", order_id)?;
                let reason = cancel_reason_name(reason);
                if let Some(row) = self.new_orders.get_mut(&order_id) {
                    row.open_lots = 0;
                    row.cancel_reason = Some(reason);
                    touch(row, seq, at_ns);
                } else {
                    let update = self.update(order_id, seq, Some(at_ns));
                    update.cancel_reason = Some(reason);
                    update.waiting_until_seq.get_or_insert(seq);
                }
            }
            EventBody::OrderReplaced { order_id, price_ticks, qty_lots, .. } => {
                let order_id = signed(shard, event.seq, "order id", order_id)?;
                self.replacements.push(ReplacementRow {
                    shard: shard_i32,
                    seq,
                    order_id,
                    price_ticks,
                    qty_lots,
                    timestamp_ns: at_ns,
                });
                if let Some(row) = self.new_orders.get_mut(&order_id) {
                    row.price_ticks = price_ticks;
                    row.open_lots = qty_lots;
                    touch(row, seq, at_ns);
                } else {
                    let update = self.update(order_id, seq, Some(at_ns));
                    update.price_ticks = Some(price_ticks);
                    update.open_base_lots = Some(qty_lots);
                    update.open_minus_lots = 0;
                }
            }
            // A trade price: it moves waiting trailing stops.
            EventBody::ReferencePriceSet { symbol_id, price_ticks }
            | EventBody::ReferenceTradePrinted { symbol_id, price_ticks, .. } => {
                let symbol_id = i32::from(symbol_id);
                let (high, low) = self.reference_extremes.entry(symbol_id).or_insert((i64::MIN, i64::MAX));
                if price_ticks > *high || price_ticks < *low {
                    (*high, *low) = ((*high).max(price_ticks), (*low).min(price_ticks));
                    self.reference_prices.push(ReferencePriceRow { symbol_id, seq, price_ticks });
                }
                self.trail(symbol_id, price_ticks);
            }
            // Market-wide settings and reference data: not projected.
            EventBody::RiskLimitsSet { .. } | EventBody::HaltedSet { .. } | EventBody::ReferenceQuoteSet { .. } => {}
        }
        Ok(())
    }

    fn add_fill(&mut self, shard: u32, seq: i64, at_ns: i64, fill: &Fill) -> Result<(), BatchError> {
        let raw_seq = seq as u64;
        let maker_order_id = signed(shard, raw_seq, "order id", fill.maker_order_id)?;
        let taker_order_id = signed(shard, raw_seq, "order id", fill.taker_order_id)?;
        self.fills.push(FillRow {
            shard: shard as i32,
            seq,
            trade_id: signed(shard, raw_seq, "trade id", fill.trade_id)?,
            symbol_id: i32::from(fill.symbol_id),
            maker_order_id,
            maker_portfolio_id: i64::from(fill.maker_portfolio_id),
            taker_order_id,
            taker_portfolio_id: i64::from(fill.taker_portfolio_id),
            taker_side: side_name(fill.taker_side),
            price_ticks: fill.price_ticks,
            qty_lots: fill.qty_lots,
            notional_micros: fill.notional_micros,
            maker_fee_micros: fill.maker_fee_micros,
            taker_fee_micros: fill.taker_fee_micros,
            timestamp_ns: at_ns,
        });
        // The simulated market (order id 0, no portfolio) has neither an order row nor a position.
        let orders = [maker_order_id, taker_order_id].into_iter().filter(|&id| id != SIMULATED_ORDER_ID as i64);
        for order_id in orders {
            if let Some(row) = self.new_orders.get_mut(&order_id) {
                row.open_lots -= fill.qty_lots;
                row.filled_lots += fill.qty_lots;
                touch(row, seq, at_ns);
            } else {
                let update = self.update(order_id, seq, Some(at_ns));
                update.open_minus_lots += fill.qty_lots;
                update.filled_lots += fill.qty_lots;
            }
            self.grow_exits(order_id, fill.qty_lots, seq);
        }
        self.trail(i32::from(fill.symbol_id), fill.price_ticks);
        let symbol_id = i32::from(fill.symbol_id);
        let (buyer, seller) = match fill.taker_side {
            Side::Buy => (fill.taker_portfolio_id, fill.maker_portfolio_id),
            Side::Sell => (fill.maker_portfolio_id, fill.taker_portfolio_id),
        };
        let (quantity, notional) = (fill.qty_lots, fill.notional_micros);
        if buyer != NO_PORTFOLIO {
            let bought = self.position(buyer, symbol_id, seq, at_ns);
            bought.net_lots += quantity;
            bought.bought_lots += quantity;
            bought.bought_notional_micros += notional;
        }
        if seller != NO_PORTFOLIO {
            let sold = self.position(seller, symbol_id, seq, at_ns);
            sold.net_lots -= quantity;
            sold.sold_lots += quantity;
            sold.sold_notional_micros += notional;
        }
        if fill.maker_portfolio_id != NO_PORTFOLIO {
            self.position(fill.maker_portfolio_id, symbol_id, seq, at_ns).fees_micros += fill.maker_fee_micros;
        }
        self.position(fill.taker_portfolio_id, symbol_id, seq, at_ns).fees_micros += fill.taker_fee_micros;
        Ok(())
    }

    fn position(&mut self, portfolio_id: u32, symbol_id: i32, seq: i64, at_ns: i64) -> &mut PositionDelta {
        let delta = self
            .positions
            .entry((i64::from(portfolio_id), symbol_id))
            .or_insert(PositionDelta { first_seq: seq, ..PositionDelta::default() });
        delta.updated_at_ns = at_ns;
        delta.last_seq = seq;
        delta
    }

    /// The update of an order of an earlier batch; `at_ns` is `None` for an event that the read
    /// model does not count as updating the order (a link).
    fn update(&mut self, order_id: i64, seq: i64, at_ns: Option<i64>) -> &mut OrderUpdate {
        let update = self.order_updates.entry(order_id).or_insert(OrderUpdate {
            order_id,
            first_seq: seq,
            last_seq: seq,
            price_ticks: None,
            open_base_lots: None,
            open_minus_lots: 0,
            filled_lots: 0,
            cancel_reason: None,
            updated_at_ns: None,
            kind: None,
            time_in_force: None,
            qty_lots: None,
            activated: false,
            oco_order_id: None,
            triggered_at_ns: None,
            triggered_price_ticks: None,
            waiting_until_seq: None,
        });
        update.last_seq = seq;
        if at_ns.is_some() {
            update.updated_at_ns = at_ns;
        }
        update
    }

    /// An `OrderAccepted`: a new order, or a conditional order that fired becoming a book order.
    fn add_accepted(&mut self, shard: u32, seq: i64, at_ns: i64, order: &AcceptedOrder) -> Result<(), BatchError> {
        let order_id = signed(shard, seq as u64, "order id", order.order_id)?;
        if let Some(row) = self.new_orders.get_mut(&order_id) {
            row.kind = kind_name(order.kind);
            row.time_in_force = time_in_force_name(order.time_in_force);
            row.price_ticks = order.price_ticks;
            row.qty_lots = order.qty_lots;
            row.open_lots = order.qty_lots;
            row.status = "open";
            touch(row, seq, at_ns);
            return Ok(());
        }
        // Fired in this batch, waiting since an earlier one.
        if self.order_updates.get(&order_id).is_some_and(|u| u.triggered_at_ns.is_some() && !u.activated) {
            let update = self.update(order_id, seq, Some(at_ns));
            update.kind = Some(kind_name(order.kind));
            update.time_in_force = Some(time_in_force_name(order.time_in_force));
            update.price_ticks = Some(order.price_ticks);
            update.qty_lots = Some(order.qty_lots);
            update.open_base_lots = Some(order.qty_lots);
            update.open_minus_lots = 0;
            update.activated = true;
            update.waiting_until_seq.get_or_insert(seq);
            return Ok(());
        }
        let row = accepted_row(shard, seq, at_ns, order)?;
        self.new_orders.insert(row.order_id, row);
        Ok(())
    }

    fn add_conditional(
        &mut self,
        shard: u32,
        seq: i64,
        at_ns: i64,
        order: &AcceptedConditional,
    ) -> Result<(), BatchError> {
        let raw_seq = seq as u64;
        let order_id = signed(shard, raw_seq, "order id", order.order_id)?;
        let parent_order_id = signed(shard, raw_seq, "order id", order.parent_order_id)?;
        let oco_order_id = signed(shard, raw_seq, "order id", order.oco_order_id)?;
        let trailing = order.trigger == TriggerKind::TrailingStop;
        let mut row = OrderRow {
            order_id,
            portfolio_id: i64::from(order.portfolio_id),
            symbol_id: i32::from(order.symbol_id),
            side: side_name(order.side),
            kind: kind_name(order.kind),
            time_in_force: time_in_force_name(order.time_in_force),
            price_ticks: order.price_ticks,
            qty_lots: order.qty_lots,
            open_lots: order.qty_lots,
            filled_lots: 0,
            status: WAITING_TRIGGER,
            cancel_reason: None,
            client_order_id: client_text(&order.client_order_id),
            expire_at_ns: order.expire_at_ns,
            accepted_at_ns: at_ns,
            updated_at_ns: at_ns,
            shard: shard as i32,
            accepted_seq: seq,
            last_seq: seq,
            trigger_kind: trigger_kind_name(order.trigger),
            trigger_price_ticks: order.trigger_price_ticks,
            trail_ticks: order.trail_ticks,
            trail_bps: order.trail_bps,
            trail_best_ticks: if trailing { order.trigger_price_ticks } else { 0 },
            parent_order_id,
            oco_order_id,
            triggered_at_ns: None,
            triggered_price_ticks: None,
            grown_seq: seq,
        };
        if trailing {
            row.trigger_price_ticks =
                trail_stop_ticks(order.side, row.trail_best_ticks, row.trail_ticks, row.trail_bps);
            self.trailing_by_symbol.entry(row.symbol_id).or_default().push(order_id);
        }
        // The link is mutual: the peer named here now names this order too.
        if oco_order_id != 0 {
            if let Some(peer) = self.new_orders.get_mut(&oco_order_id) {
                peer.oco_order_id = order_id;
                peer.last_seq = seq;
            } else {
                self.update(oco_order_id, seq, None).oco_order_id = Some(order_id);
            }
        }
        if parent_order_id != 0 {
            self.exits_by_parent.entry(parent_order_id).or_default().push(order_id);
        }
        self.new_orders.insert(order_id, row);
        Ok(())
    }

    /// A fill of a bracket entry adds its quantity to the exits of this batch still waiting.
    fn grow_exits(&mut self, entry_id: i64, qty_lots: i64, seq: i64) {
        let Some(exits) = self.exits_by_parent.get(&entry_id) else { return };
        for exit_id in exits {
            if let Some(exit) = self.new_orders.get_mut(exit_id).filter(|e| e.status == WAITING_TRIGGER) {
                exit.qty_lots += qty_lots;
                exit.open_lots += qty_lots;
                exit.grown_seq = seq;
            }
        }
    }

    /// A trade price moves the best price of the symbol's waiting trailing stops of this batch.
    fn trail(&mut self, symbol_id: i32, price_ticks: i64) {
        let Some(ids) = self.trailing_by_symbol.get_mut(&symbol_id) else { return };
        let orders = &mut self.new_orders;
        ids.retain(|id| {
            let Some(order) = orders.get_mut(id).filter(|o| o.status == WAITING_TRIGGER) else { return false };
            let better = match order.side {
                "sell" => price_ticks > order.trail_best_ticks,
                _ => price_ticks < order.trail_best_ticks,
            };
            if better {
                order.trail_best_ticks = price_ticks;
                let side = if order.side == "sell" { Side::Sell } else { Side::Buy };
                order.trigger_price_ticks = trail_stop_ticks(side, price_ticks, order.trail_ticks, order.trail_bps);
            }
            true
        });
    }
}

/// A trailing stop's stop price from its best price: `best - trail` for a sell, `best + trail` for
/// a buy, a trail in basis points being that share of the best price rounded up to a whole tick
/// (as the engine computes it, and `store::TRAIL_STOPS` in SQL).
pub fn trail_stop_ticks(side: Side, best_ticks: i64, trail_ticks: i64, trail_bps: i64) -> i64 {
    let offset_ticks = if trail_bps > 0 {
        let product = i128::from(best_ticks) * i128::from(trail_bps);
        let divisor = i128::from(BASIS_POINTS_PER_UNIT);
        i64::try_from((product + divisor - 1) / divisor).unwrap_or(i64::MAX)
    } else {
        trail_ticks
    };
    match side {
        Side::Sell => best_ticks.saturating_sub(offset_ticks),
        Side::Buy => best_ticks.saturating_add(offset_ticks),
    }
}

fn accepted_row(shard: u32, seq: i64, at_ns: i64, order: &AcceptedOrder) -> Result<OrderRow, BatchError> {
    Ok(OrderRow {
        order_id: signed(shard, seq as u64, "order id", order.order_id)?,
        portfolio_id: i64::from(order.portfolio_id),
        symbol_id: i32::from(order.symbol_id),
        side: side_name(order.side),
        kind: kind_name(order.kind),
        time_in_force: time_in_force_name(order.time_in_force),
        price_ticks: order.price_ticks,
        qty_lots: order.qty_lots,
        open_lots: order.qty_lots,
        filled_lots: 0,
        status: "open",
        cancel_reason: None,
        client_order_id: client_text(&order.client_order_id),
        expire_at_ns: order.expire_at_ns,
        accepted_at_ns: at_ns,
        updated_at_ns: at_ns,
        shard: shard as i32,
        accepted_seq: seq,
        last_seq: seq,
        trigger_kind: trigger_kind_name(TriggerKind::None),
        trigger_price_ticks: 0,
        trail_ticks: 0,
        trail_bps: 0,
        trail_best_ticks: 0,
        parent_order_id: 0,
        oco_order_id: 0,
        triggered_at_ns: None,
        triggered_price_ticks: None,
        grown_seq: seq,
    })
}

fn touch(row: &mut OrderRow, seq: i64, at_ns: i64) {
    row.last_seq = seq;
    row.updated_at_ns = at_ns;
    row.status =
        order_status(row.status == WAITING_TRIGGER, row.cancel_reason.is_some(), row.open_lots, row.filled_lots);
}

/// An order's status: a cancel decides, then whether it still waits for a trigger, then its
/// quantities. The SQL of `store::APPLY_ORDER_UPDATES` says the same.
pub fn order_status(waiting: bool, cancelled: bool, open_lots: i64, filled_lots: i64) -> &'static str {
    if cancelled {
        "cancelled"
    } else if waiting {
        WAITING_TRIGGER
    } else if open_lots <= 0 {
        "filled"
    } else if filled_lots > 0 {
        "partially_filled"
    } else {
        "open"
    }
}

fn signed(shard: u32, seq: u64, what: &'static str, value: u64) -> Result<i64, BatchError> {
    i64::try_from(value).map_err(|_| BatchError::OutOfRange { shard, seq, what, value })
}

fn client_text(id: &ClientOrderId) -> Option<String> {
    (!id.is_none()).then(|| id.as_text().to_string())
}

pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub fn kind_name(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Limit => "limit",
        OrderKind::Market => "market",
    }
}

/// The trigger's stable snake_case name, as in the engine's JSON.
pub fn trigger_kind_name(trigger: TriggerKind) -> &'static str {
    match trigger {
        TriggerKind::None => "none",
        TriggerKind::Stop => "stop",
        TriggerKind::TakeProfit => "take_profit",
        TriggerKind::TrailingStop => "trailing_stop",
        TriggerKind::Delayed => "delayed",
    }
}

pub fn time_in_force_name(time_in_force: TimeInForce) -> &'static str {
    match time_in_force {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Day => "day",
        TimeInForce::Gtd => "gtd",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

/// The reason's stable snake_case name, as in the engine's JSON.
pub fn reject_reason_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::UnknownPortfolio => "unknown_portfolio",
        RejectReason::PortfolioExists => "portfolio_exists",
        RejectReason::UnknownSymbol => "unknown_symbol",
        RejectReason::SymbolHalted => "symbol_halted",
        RejectReason::QuantityNotPositive => "quantity_not_positive",
        RejectReason::QuantityNotOnLot => "quantity_not_on_lot",
        RejectReason::QuantityBelowMinimum => "quantity_below_minimum",
        RejectReason::QuantityTooLarge => "quantity_too_large",
        RejectReason::PriceNotPositive => "price_not_positive",
        RejectReason::PriceNotOnTick => "price_not_on_tick",
        RejectReason::PriceOutsideBand => "price_outside_band",
        RejectReason::OrderNotionalTooLarge => "order_notional_too_large",
        RejectReason::InsufficientBuyingPower => "insufficient_buying_power",
        RejectReason::ShortNotAllowed => "short_not_allowed",
        RejectReason::PositionLimitExceeded => "position_limit_exceeded",
        RejectReason::GrossExposureExceeded => "gross_exposure_exceeded",
        RejectReason::OpenOrdersLimitExceeded => "open_orders_limit_exceeded",
        RejectReason::DailyLossLimitBreached => "daily_loss_limit_breached",
        RejectReason::DuplicateClientOrderId => "duplicate_client_order_id",
        RejectReason::PostOnlyWouldTake => "post_only_would_take",
        RejectReason::InvalidTimeInForce => "invalid_time_in_force",
        RejectReason::ExpireTimeInPast => "expire_time_in_past",
        RejectReason::UnknownOrder => "unknown_order",
        RejectReason::BookFull => "book_full",
        RejectReason::InsufficientCash => "insufficient_cash",
        RejectReason::InvalidAmount => "invalid_amount",
        RejectReason::ReplaceNoChange => "replace_no_change",
        RejectReason::InvalidQuote => "invalid_quote",
        RejectReason::InvalidTrigger => "invalid_trigger",
        RejectReason::NotReplaceable => "not_replaceable",
    }
}

pub fn cancel_reason_name(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::User => "user",
        CancelReason::IocRemainder => "ioc_remainder",
        CancelReason::FokUnfillable => "fok_unfillable",
        CancelReason::SelfTrade => "self_trade",
        CancelReason::Expired => "expired",
        CancelReason::NoLiquidity => "no_liquidity",
        CancelReason::LiquidityExhausted => "liquidity_exhausted",
        CancelReason::Linked => "linked",
        CancelReason::TriggerRejected => "trigger_rejected",
        CancelReason::ParentClosed => "parent_closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ReadModel;
    use simex_engine::SelfTradePolicy;

    fn at(seq: u64, body: EventBody) -> Event {
        Event { seq, timestamp_ns: 1_000 + seq as i64, body }
    }

    fn conditional(order_id: u64, side: Side, trigger: TriggerKind, trigger_price_ticks: i64) -> AcceptedConditional {
        AcceptedConditional {
            order_id,
            portfolio_id: 1,
            symbol_id: 0,
            side,
            kind: OrderKind::Market,
            price_ticks: 0,
            qty_lots: 2,
            time_in_force: TimeInForce::Ioc,
            expire_at_ns: i64::MAX,
            client_order_id: ClientOrderId::NONE,
            self_trade_policy: SelfTradePolicy::Default,
            trigger,
            trigger_price_ticks,
            trail_ticks: 0,
            trail_bps: 0,
            parent_order_id: 0,
            oco_order_id: 0,
            execute_at_ns: 0,
            post_only: false,
        }
    }

    fn accepted(order_id: u64, kind: OrderKind, side: Side, price_ticks: i64, qty_lots: i64) -> EventBody {
        EventBody::OrderAccepted(AcceptedOrder {
            order_id,
            portfolio_id: 1,
            symbol_id: 0,
            side,
            kind,
            price_ticks,
            qty_lots,
            time_in_force: if kind == OrderKind::Market { TimeInForce::Ioc } else { TimeInForce::Gtc },
            expire_at_ns: i64::MAX,
            client_order_id: ClientOrderId::NONE,
            post_only: false,
            self_trade_policy: SelfTradePolicy::Default,
            reserved_cash_micros: 0,
            reserved_lots: 0,
        })
    }

    /// `order_id` (portfolio 1) trades `qty_lots` at `price_ticks` with the simulated market.
    fn fill(order_id: u64, side: Side, price_ticks: i64, qty_lots: i64) -> EventBody {
        EventBody::Fill(Fill {
            trade_id: price_ticks as u64,
            symbol_id: 0,
            maker_order_id: SIMULATED_ORDER_ID,
            maker_portfolio_id: NO_PORTFOLIO,
            taker_order_id: order_id,
            taker_portfolio_id: 1,
            taker_side: side,
            price_ticks,
            qty_lots,
            notional_micros: price_ticks * qty_lots,
            maker_fee_micros: 0,
            taker_fee_micros: 0,
        })
    }

    fn triggered(order_id: u64, price_ticks: i64, qty_lots: i64) -> EventBody {
        EventBody::OrderTriggered { order_id, portfolio_id: 1, symbol_id: 0, price_ticks, qty_lots }
    }

    fn batch_of(events: &[Event]) -> Batch {
        let mut batch = Batch::default();
        for event in events {
            batch.add(0, 1, event).unwrap();
        }
        batch
    }

    /// A stop accepted, fired, accepted as a market order and filled, all in one batch: one row.
    #[test]
    fn a_conditional_order_accepted_and_fired_in_one_batch_is_one_row() {
        let events = [
            at(1, EventBody::ConditionalAccepted(conditional(5, Side::Buy, TriggerKind::Stop, 10_100))),
            at(2, triggered(5, 10_100, 2)),
            at(3, accepted(5, OrderKind::Market, Side::Buy, 11_000, 2)),
            at(4, fill(5, Side::Buy, 10_150, 2)),
        ];
        let batch = batch_of(&events[..1]);
        let waiting = &batch.new_orders[&5];
        assert_eq!(
            (waiting.status, waiting.trigger_kind, waiting.trigger_price_ticks),
            (WAITING_TRIGGER, "stop", 10_100)
        );
        let batch = batch_of(&events);
        assert!(batch.order_updates.is_empty());
        let row = &batch.new_orders[&5];
        assert_eq!((row.status, row.kind, row.qty_lots, row.open_lots, row.filled_lots), ("filled", "market", 2, 0, 2));
        assert_eq!((row.triggered_at_ns, row.triggered_price_ticks), (Some(1_002), Some(10_100)));
        assert_eq!((row.accepted_at_ns, row.updated_at_ns, row.accepted_seq, row.last_seq), (1_001, 1_004, 1, 4));
        assert_eq!((row.trigger_kind, row.trigger_price_ticks), ("stop", 10_100));
    }

    /// The same events with the acceptance in an earlier batch: the later batch's events are one
    /// guarded update that turns the waiting row into the filled order; a batch that ends between
    /// the trigger and its `OrderAccepted` leaves that acceptance as a row that replaces the
    /// waiting one (`store::INSERT_ORDERS`).
    #[test]
    fn a_conditional_order_fired_in_a_later_batch_is_an_update_of_its_row() {
        let later = batch_of(&[
            at(2, triggered(5, 10_100, 2)),
            at(3, accepted(5, OrderKind::Market, Side::Buy, 11_000, 2)),
            at(4, fill(5, Side::Buy, 10_150, 2)),
        ]);
        assert!(later.new_orders.is_empty());
        let update = &later.order_updates[&5];
        assert_eq!((update.first_seq, update.last_seq, update.waiting_until_seq), (2, 4, Some(3)));
        assert!(update.activated);
        assert_eq!((update.kind, update.time_in_force, update.qty_lots), (Some("market"), Some("ioc"), Some(2)));
        assert_eq!((update.open_base_lots, update.open_minus_lots, update.filled_lots), (Some(2), 2, 2));
        assert_eq!((update.triggered_at_ns, update.triggered_price_ticks), (Some(1_002), Some(10_100)));
        assert_eq!(update.updated_at_ns, Some(1_004));

        let fired = batch_of(&[at(2, triggered(5, 10_100, 2))]);
        assert!(!fired.order_updates[&5].activated);
        assert_eq!(fired.order_updates[&5].waiting_until_seq, None);
        let accepted_later = batch_of(&[at(3, accepted(5, OrderKind::Market, Side::Buy, 11_000, 2))]);
        let row = &accepted_later.new_orders[&5];
        assert_eq!((row.status, row.accepted_seq, row.trigger_kind), ("open", 3, "none"));
    }

    /// Linking to an order of an earlier batch changes its link, not its update time; a cancel
    /// ends a waiting order's waiting.
    #[test]
    fn a_link_and_a_cancel_of_earlier_orders_are_updates() {
        let batch = batch_of(&[
            at(
                10,
                EventBody::ConditionalAccepted(AcceptedConditional {
                    oco_order_id: 6,
                    ..conditional(7, Side::Sell, TriggerKind::Stop, 9_000)
                }),
            ),
            at(
                11,
                EventBody::OrderCancelled {
                    order_id: 8,
                    portfolio_id: 1,
                    symbol_id: 0,
                    qty_lots: 2,
                    reason: CancelReason::User,
                },
            ),
        ]);
        let link = &batch.order_updates[&6];
        assert_eq!((link.oco_order_id, link.updated_at_ns, link.first_seq), (Some(7), None, 10));
        let cancel = &batch.order_updates[&8];
        assert_eq!((cancel.cancel_reason, cancel.waiting_until_seq), (Some("user"), Some(11)));
        assert_eq!(batch.new_orders[&7].oco_order_id, 6);
    }

    /// Within one batch, bracket exits grow with their entry's fills and a trailing stop's best
    /// and stop prices follow trade prices, exactly as the read model folds them.
    #[test]
    fn exits_and_trailing_stops_follow_the_read_model_within_a_batch() {
        let exit = |order_id, trigger, oco_order_id| AcceptedConditional {
            qty_lots: 0,
            parent_order_id: 1,
            oco_order_id,
            ..conditional(order_id, Side::Sell, trigger, 10_400)
        };
        let events = [
            at(1, accepted(1, OrderKind::Limit, Side::Buy, 10_200, 4)),
            at(2, EventBody::ConditionalAccepted(exit(2, TriggerKind::TakeProfit, 0))),
            at(3, EventBody::ConditionalAccepted(exit(3, TriggerKind::Stop, 2))),
            at(
                4,
                EventBody::ConditionalAccepted(AcceptedConditional {
                    trail_bps: 150,
                    ..conditional(4, Side::Sell, TriggerKind::TrailingStop, 10_000)
                }),
            ),
            at(5, fill(1, Side::Buy, 10_200, 1)),
            at(6, EventBody::ReferencePriceSet { symbol_id: 0, price_ticks: 10_301 }),
            at(7, EventBody::ReferenceTradePrinted { symbol_id: 0, price_ticks: 10_250, qty_lots: 1 }),
            at(8, fill(1, Side::Buy, 10_200, 3)),
        ];
        let batch = batch_of(&events);
        let mut model = ReadModel::default();
        for event in &events {
            model.apply(0, event);
        }
        for order_id in [1, 2, 3, 4] {
            let (row, record) = (&batch.new_orders[&(order_id as i64)], model.order(order_id).unwrap());
            assert_eq!(row.qty_lots, record.qty_lots, "order {order_id}");
            assert_eq!(row.open_lots, record.open_lots, "order {order_id}");
            assert_eq!(row.trigger_price_ticks, record.trigger_price_ticks, "order {order_id}");
            assert_eq!(row.trail_best_ticks, record.trail_best_ticks, "order {order_id}");
            assert_eq!(row.oco_order_id as u64, record.oco_order_id, "order {order_id}");
            assert_eq!(row.updated_at_ns, record.updated_ns, "order {order_id}");
        }
        assert_eq!((batch.new_orders[&2].qty_lots, batch.new_orders[&2].grown_seq), (4, 8));
        // 1.5% of 10,301 is 154.515 ticks, rounded up to 155.
        assert_eq!((batch.new_orders[&4].trail_best_ticks, batch.new_orders[&4].trigger_price_ticks), (10_301, 10_146));
        assert_eq!(batch.reference_prices.len(), 2);
        assert!(batch.order_updates.is_empty());
    }

    #[test]
    fn trail_stop_prices_round_a_share_of_the_best_price_up_to_a_tick() {
        assert_eq!(trail_stop_ticks(Side::Sell, 10_000, 0, 150), 9_850);
        // 1.5% of 10,001 is 150.015 ticks: the trail is 151.
        assert_eq!(trail_stop_ticks(Side::Sell, 10_001, 0, 150), 9_850);
        assert_eq!(trail_stop_ticks(Side::Buy, 10_001, 0, 150), 10_152);
        assert_eq!(trail_stop_ticks(Side::Buy, 10_000, 25, 0), 10_025);
        assert_eq!(trail_stop_ticks(Side::Sell, i64::MIN + 1, 5, 0), i64::MIN);
    }

    #[test]
    fn reason_names_match_the_engine_json() {
        for reason in RejectReason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json.as_str(), Some(reject_reason_name(reason)));
        }
        for reason in CancelReason::ALL {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json.as_str(), Some(cancel_reason_name(reason)));
        }
    }

    #[test]
    fn an_order_id_beyond_i64_is_an_error() {
        let event = Event {
            seq: 5,
            timestamp_ns: 1,
            body: EventBody::OrderCancelled {
                order_id: u64::MAX,
                portfolio_id: 1,
                symbol_id: 0,
                qty_lots: 1,
                reason: CancelReason::User,
            },
        };
        let error = Batch::default().add(0, 1, &event).unwrap_err();
        assert_eq!(error, BatchError::OutOfRange { shard: 0, seq: 5, what: "order id", value: u64::MAX });
    }
}
