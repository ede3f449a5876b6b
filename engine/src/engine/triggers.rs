//! Deciding for conditional and linked orders: accepting them, brackets, and what a trade price
//! fires.
//!
//! # Which prices trigger
//! Every trade price goes through one function, [`Engine::on_trade_price`]: the last price of each
//! match (against the book or simulated liquidity), each `SetReferencePrice`, and each
//! `ReferenceTrade` (after the resting orders it traded through have filled). Stops, take-profits
//! and trailing stops all trigger on these trade prices; reference quotes (`ReferenceQuote`) do not
//! trigger anything.
//!
//! # Order of firing and cascades
//! The orders one price fires fire in acceptance order (order id). A fired order trades at once,
//! and its fills are new trade prices: when a batch is done, the loop looks again at the symbol's
//! last trade price and fires what that reaches, until a price fires nothing. Every order fires at
//! most once, so the cascade ends; fills inside the loop do not start a nested loop.
//!
//! # Gaps
//! A fired stop becomes a market order (or its limit) against the book and the simulated liquidity
//! as they are, so a stop that the price gapped through fills at the prices offered after the gap,
//! never at the stop.

use super::{CheckMode, Engine};
use crate::book::OrderBook;
use crate::command::NewOrder;
use crate::event::{AcceptedConditional, AcceptedOrder, CancelReason, Event, EventBody, RejectReason};
use crate::ledger::Ledger;
use crate::types::{ClientOrderId, OrderId, OrderKind, Side, SymbolId, TimeInForce, TriggerKind};

/// The widest trailing stop in basis points (exclusive): 100% would be a stop at zero.
const TRAIL_BPS_END: i64 = crate::types::BASIS_POINTS_PER_UNIT;

impl<B: OrderBook, L: Ledger> Engine<B, L> {
    /// Checks a conditional order: the trigger, then the order it will become, as far as it can be
    /// known before it fires (see `CheckMode::Conditional`). Reserves nothing.
    pub(super) fn check_conditional(&mut self, new: &NewOrder) -> Result<AcceptedConditional, RejectReason> {
        let book_order = NewOrder { trigger: TriggerKind::None, oco_order_id: 0, ..*new };
        let checked = self.check_new_order(&book_order, CheckMode::Conditional)?;
        if new.post_only {
            return Err(RejectReason::InvalidTrigger);
        }
        let trigger_price_ticks = match new.trigger {
            TriggerKind::None | TriggerKind::Delayed => return Err(RejectReason::InvalidTrigger),
            TriggerKind::Stop | TriggerKind::TakeProfit => {
                if new.trigger_price_ticks <= 0 || new.trail_ticks != 0 || new.trail_bps != 0 {
                    return Err(RejectReason::InvalidTrigger);
                }
                new.trigger_price_ticks
            }
            TriggerKind::TrailingStop => {
                let ticks_ok = new.trail_ticks > 0 && new.trail_bps == 0;
                let bps_ok = new.trail_ticks == 0 && (1..TRAIL_BPS_END).contains(&new.trail_bps);
                if new.kind != OrderKind::Market || new.trigger_price_ticks != 0 || !(ticks_ok || bps_ok) {
                    return Err(RejectReason::InvalidTrigger);
                }
                // The stop starts from the price now: the last reference or book trade.
                self.reference_price(new.symbol_id).ok_or(RejectReason::InvalidTrigger)?
            }
        };
        if new.oco_order_id != 0 {
            let linkable = self.conditionals.get(new.oco_order_id).is_some_and(|peer| {
                (peer.portfolio_id, peer.symbol_id) == (new.portfolio_id, new.symbol_id)
                    && peer.oco_order_id == 0
                    && peer.parent_order_id == 0
            });
            if !linkable {
                return Err(RejectReason::InvalidTrigger);
            }
        }
        let expire_at_ns = self.conditional_expiry(new)?;
        Ok(AcceptedConditional { trigger_price_ticks, ..waiting_order(new, &checked, expire_at_ns) })
    }

    /// Whether the latency model holds orders of this symbol between acceptance and execution.
    pub(super) fn delays(&self, symbol_id: SymbolId) -> bool {
        self.owns(symbol_id) && self.instrument(symbol_id).sim.has_latency()
    }

    /// Accepts a book order under the latency model: it waits, as a `Delayed` conditional order,
    /// until its execution time, then goes to the book checked again like any conditional order
    /// that fires (see `docs/simulation.md`). The checks now are those of a conditional order.
    pub(super) fn check_delayed(&mut self, new: &NewOrder) -> Result<AcceptedConditional, RejectReason> {
        if new.oco_order_id != 0 {
            return Err(RejectReason::InvalidTrigger);
        }
        let checked = self.check_new_order(new, CheckMode::Conditional)?;
        let execute_at_ns = self.now_ns.saturating_add(self.instrument(new.symbol_id).sim.delay_ns(checked.order_id));
        let expire_at_ns = self.conditional_expiry(new)?;
        Ok(AcceptedConditional {
            // As the book would take it now (a market order's protection price, IOC).
            price_ticks: checked.price_ticks,
            time_in_force: checked.time_in_force,
            trigger: TriggerKind::Delayed,
            trail_ticks: 0,
            trail_bps: 0,
            oco_order_id: 0,
            execute_at_ns,
            post_only: new.post_only,
            ..waiting_order(new, &checked, expire_at_ns)
        })
    }

    /// Sends every delayed order whose execution time has come to the book, earliest first, before
    /// the command that brought the time (so it meets the prices of its execution time, not the
    /// ones that command brings).
    pub(super) fn execute_due(&mut self, out: &mut Vec<Event>) {
        if !self.conditionals.has_delayed() {
            return;
        }
        let mut due = std::mem::take(&mut self.fired_scratch);
        self.conditionals.collect_due(self.now_ns, &mut due);
        for &order_id in &due {
            // An earlier one may have ended this one (an entry's fill cannot, but stay general).
            if let Some(c) = self.conditionals.get(order_id) {
                let price_ticks = self.reference_price(c.symbol_id).unwrap_or(0);
                self.fire(order_id, price_ticks, out);
            }
        }
        self.fired_scratch = due;
    }

    /// A waiting conditional order expires by its time in force (DAY, GTD), whatever it becomes.
    fn conditional_expiry(&self, new: &NewOrder) -> Result<i64, RejectReason> {
        match new.time_in_force {
            TimeInForce::Day => Ok(self.instrument(new.symbol_id).next_session_close_ns(self.now_ns)),
            TimeInForce::Gtd if new.expire_at_ns <= self.now_ns => Err(RejectReason::ExpireTimeInPast),
            TimeInForce::Gtd => Ok(new.expire_at_ns),
            _ => Ok(i64::MAX),
        }
    }

    /// An entry (a book order or a conditional one) with a take-profit and a stop-loss exit.
    pub(super) fn decide_bracket(
        &mut self,
        entry: &NewOrder,
        take_profit_price_ticks: i64,
        stop_loss_trigger_ticks: i64,
        stop_loss_limit_ticks: i64,
        out: &mut Vec<Event>,
    ) {
        let reject = |engine: &mut Self, out: &mut Vec<Event>, reason| {
            engine.reject(out, entry.portfolio_id, 0, entry.client_order_id, reason)
        };
        let exits_ok = take_profit_price_ticks >= 0
            && stop_loss_trigger_ticks >= 0
            && stop_loss_limit_ticks >= 0
            && (take_profit_price_ticks > 0 || stop_loss_trigger_ticks > 0)
            && (stop_loss_limit_ticks == 0 || stop_loss_trigger_ticks > 0)
            && entry.oco_order_id == 0
            && (take_profit_price_ticks == 0
                || stop_loss_trigger_ticks == 0
                || match entry.side {
                    Side::Buy => take_profit_price_ticks > stop_loss_trigger_ticks,
                    Side::Sell => take_profit_price_ticks < stop_loss_trigger_ticks,
                });
        if !exits_ok {
            return reject(self, out, RejectReason::InvalidTrigger);
        }
        if self.conditionals.len() + 3 > self.config.orders_max as usize {
            return reject(self, out, RejectReason::BookFull);
        }
        // The entry is checked in full (and a book entry reserves); the exits are checked when they
        // fire, when the position they close exists. Under the latency model a book entry is
        // delayed like any book order.
        let Some(entry_id) = self.accept_new(entry, out) else { return };
        let exit =
            |order_id: OrderId, kind, price_ticks, trigger, trigger_price_ticks, oco_order_id| AcceptedConditional {
                order_id,
                portfolio_id: entry.portfolio_id,
                symbol_id: entry.symbol_id,
                side: entry.side.opposite(),
                kind,
                price_ticks,
                qty_lots: 0,
                time_in_force: TimeInForce::Gtc,
                expire_at_ns: i64::MAX,
                client_order_id: ClientOrderId::NONE,
                self_trade_policy: entry.self_trade_policy,
                trigger,
                trigger_price_ticks,
                trail_ticks: 0,
                trail_bps: 0,
                parent_order_id: entry_id,
                oco_order_id,
                execute_at_ns: 0,
                post_only: false,
            };
        let take_profit_id = (take_profit_price_ticks > 0).then(|| self.next_order_id());
        let stop_loss_id =
            (stop_loss_trigger_ticks > 0).then(|| self.next_order_id() + u64::from(take_profit_id.is_some()));
        if let Some(order_id) = take_profit_id {
            let body = exit(
                order_id,
                OrderKind::Limit,
                take_profit_price_ticks,
                TriggerKind::TakeProfit,
                take_profit_price_ticks,
                stop_loss_id.unwrap_or(0),
            );
            self.emit(out, EventBody::ConditionalAccepted(body));
        }
        if let Some(order_id) = stop_loss_id {
            let kind = if stop_loss_limit_ticks > 0 { OrderKind::Limit } else { OrderKind::Market };
            let body = exit(
                order_id,
                kind,
                stop_loss_limit_ticks,
                TriggerKind::Stop,
                stop_loss_trigger_ticks,
                take_profit_id.unwrap_or(0),
            );
            self.emit(out, EventBody::ConditionalAccepted(body));
        }
        if let Some(handle) = self.orders.find(entry_id) {
            self.match_incoming(out, handle);
        }
    }

    /// The one entry point for trade prices: a book trade (the last price of a match) or a
    /// reference trade. Fires every conditional order of the symbol the price reaches, and the
    /// cascade that follows (see the module documentation).
    pub(crate) fn on_trade_price(&mut self, symbol_id: SymbolId, price_ticks: i64, out: &mut Vec<Event>) {
        // A halted symbol fires nothing: its orders could not trade. The next print after the
        // resume fires whatever it reaches.
        if self.triggering || !self.conditionals.has_triggers(symbol_id) || self.symbols[usize::from(symbol_id)].halted
        {
            return;
        }
        self.triggering = true;
        let mut price_ticks = price_ticks;
        let mut fired = std::mem::take(&mut self.fired_scratch);
        loop {
            self.conditionals.collect(symbol_id, price_ticks, &mut fired);
            if fired.is_empty() {
                break;
            }
            let trade_id_before = self.last_trade_id;
            for &order_id in &fired {
                // An earlier order of the batch may have cancelled this one (OCO).
                if self.conditionals.get(order_id).is_some() {
                    self.fire(order_id, price_ticks, out);
                }
            }
            if self.last_trade_id != trade_id_before {
                price_ticks = self.symbols[usize::from(symbol_id)].last_trade_ticks;
            }
        }
        self.fired_scratch = fired;
        self.triggering = false;
    }

    /// A conditional order's trigger fired: check it again as the order it becomes, then send it to
    /// the book with its own id, or refuse it and cancel it.
    fn fire(&mut self, order_id: OrderId, price_ticks: i64, out: &mut Vec<Event>) {
        let c = *self.conditionals.get(order_id).expect("fired order is waiting");
        let new = NewOrder {
            portfolio_id: c.portfolio_id,
            symbol_id: c.symbol_id,
            side: c.side,
            kind: c.kind,
            price_ticks: c.price_ticks,
            qty_lots: c.qty_lots,
            time_in_force: c.time_in_force,
            expire_at_ns: c.expire_at_ns,
            client_order_id: c.client_order_id,
            post_only: c.post_only,
            self_trade_policy: c.self_trade_policy,
            trigger: TriggerKind::None,
            trigger_price_ticks: 0,
            trail_ticks: 0,
            trail_bps: 0,
            oco_order_id: 0,
        };
        match self.check_new_order(&new, CheckMode::Fire(order_id)) {
            Ok(accepted) => {
                let body = EventBody::OrderTriggered {
                    order_id,
                    portfolio_id: c.portfolio_id,
                    symbol_id: c.symbol_id,
                    price_ticks,
                    qty_lots: c.qty_lots,
                };
                self.emit(out, body);
                if c.oco_order_id != 0 && self.conditionals.get(c.oco_order_id).is_some() {
                    self.cancel_conditional(out, c.oco_order_id, CancelReason::Linked);
                }
                self.emit(out, EventBody::OrderAccepted(accepted));
                let handle = self.orders.find(order_id).expect("fired order is in the book");
                self.match_incoming(out, handle);
            }
            Err(reason) => {
                self.reject(out, c.portfolio_id, order_id, c.client_order_id, reason);
                self.cancel_conditional(out, order_id, CancelReason::TriggerRejected);
            }
        }
    }
}

/// A new order as it waits off-book, once checked: what it asks for, with the id and self-trade
/// policy its check gave it; no trigger price, link, parent or execution time yet.
fn waiting_order(new: &NewOrder, checked: &AcceptedOrder, expire_at_ns: i64) -> AcceptedConditional {
    AcceptedConditional {
        order_id: checked.order_id,
        portfolio_id: new.portfolio_id,
        symbol_id: new.symbol_id,
        side: new.side,
        kind: new.kind,
        price_ticks: if new.kind == OrderKind::Market { 0 } else { new.price_ticks },
        qty_lots: new.qty_lots,
        time_in_force: new.time_in_force,
        expire_at_ns,
        client_order_id: new.client_order_id,
        self_trade_policy: checked.self_trade_policy,
        trigger: new.trigger,
        trigger_price_ticks: 0,
        trail_ticks: new.trail_ticks,
        trail_bps: new.trail_bps,
        parent_order_id: 0,
        oco_order_id: new.oco_order_id,
        execute_at_ns: 0,
        post_only: false,
    }
}
