//! The engine's side of the simulation: taking reference data in, filling orders against simulated
//! liquidity, and filling resting orders the market trades through.
//!
//! Like every decision in the engine, these only emit events; `Engine::evolve` applies them. A fill
//! against the simulated market is an ordinary `Fill` whose other side is [`SIMULATED_ORDER_ID`]:
//! the real side's cash, position, fees and reservation change exactly as in a book fill.

use super::impact;
use super::{LiquidityMode, Touch, SIMULATED_ORDER_ID};
use crate::book::OrderBook;
use crate::engine::{fee_micros, Engine, NO_PORTFOLIO};
use crate::event::{Event, EventBody, Fill, RejectReason};
use crate::ledger::Ledger;
use crate::order::{Handle, Order};
use crate::types::{ClientOrderId, Side, SymbolId, TimeInForce};

impl<B: OrderBook, L: Ledger> Engine<B, L> {
    /// `ReferenceQuote`: `[bid_price, bid_qty, ask_price, ask_qty]`. Both prices positive and the bid
    /// below the ask; sizes not negative (0 = not given).
    pub(crate) fn decide_reference_quote(&mut self, symbol_id: SymbolId, quote: [i64; 4], out: &mut Vec<Event>) {
        let [bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots] = quote;
        if !self.owns(symbol_id) {
            return self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol);
        }
        if bid_price_ticks <= 0 || ask_price_ticks <= bid_price_ticks || bid_qty_lots < 0 || ask_qty_lots < 0 {
            return self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::InvalidQuote);
        }
        let body =
            EventBody::ReferenceQuoteSet { symbol_id, bid_price_ticks, bid_qty_lots, ask_price_ticks, ask_qty_lots };
        self.emit(out, body);
    }

    /// `ReferenceTrade`: records the print, then reacts to it in [`Engine::on_reference_trade`].
    pub(crate) fn decide_reference_trade(
        &mut self,
        symbol_id: SymbolId,
        price_ticks: i64,
        qty_lots: i64,
        out: &mut Vec<Event>,
    ) {
        if !self.owns(symbol_id) {
            return self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::UnknownSymbol);
        }
        if price_ticks <= 0 {
            return self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::PriceNotPositive);
        }
        if qty_lots <= 0 {
            return self.reject(out, NO_PORTFOLIO, 0, ClientOrderId::NONE, RejectReason::QuantityNotPositive);
        }
        self.emit(out, EventBody::ReferenceTradePrinted { symbol_id, price_ticks, qty_lots });
        self.on_reference_trade(symbol_id, price_ticks, qty_lots, out);
    }

    /// Everything a price printed in the outside market sets off, in one place: first fills of
    /// resting orders it traded through, then conditional orders whose trigger the price reaches
    /// (they fire in [`Engine::on_trade_price`] and trade against the book and simulated liquidity
    /// like any order sent at that moment).
    fn on_reference_trade(&mut self, symbol_id: SymbolId, price_ticks: i64, qty_lots: i64, out: &mut Vec<Event>) {
        self.fill_traded_through(symbol_id, price_ticks, qty_lots, out);
        self.on_trade_price(symbol_id, price_ticks, out);
    }

    /// Fills resting orders that a reference trade at `price_ticks` went strictly through (bids
    /// above it, asks below it), best price and then time first, up to the trade's `qty_lots` in
    /// all, each at its own limit price: never a price the market did not reach. A trade exactly at
    /// an order's price does not fill it (it may have been behind the queue), unless the instrument
    /// models queue position: then what is left of the trade fills orders at its price that the
    /// volume traded there has reached (`queue_ahead_lots` below zero), in time priority. Not in
    /// `book` mode, nor while the symbol is halted.
    fn fill_traded_through(&mut self, symbol_id: SymbolId, price_ticks: i64, qty_lots: i64, out: &mut Vec<Event>) {
        let index = usize::from(symbol_id);
        let (maker_fee_bps, mode) = {
            let instrument = self.instrument(symbol_id);
            (instrument.maker_fee_bps, instrument.sim.liquidity)
        };
        if mode == LiquidityMode::Book || self.symbols[index].halted {
            return;
        }
        let mut remaining_lots = qty_lots;
        for side in [Side::Buy, Side::Sell] {
            while remaining_lots > 0 {
                let Some((order_price_ticks, handle)) = self.books[index].best(side) else {
                    break;
                };
                let through = match side {
                    Side::Buy => order_price_ticks > price_ticks,
                    Side::Sell => order_price_ticks < price_ticks,
                };
                if !through {
                    break;
                }
                let resting = *self.orders.get(handle);
                let lots = resting.open_lots.min(remaining_lots);
                let notional_micros = self
                    .instrument(symbol_id)
                    .notional_floor_micros(order_price_ticks, lots)
                    .expect("a part of an accepted order's notional fits");
                let fill = Fill {
                    trade_id: self.last_trade_id + 1,
                    symbol_id,
                    maker_order_id: resting.order_id,
                    maker_portfolio_id: resting.portfolio_id,
                    taker_order_id: SIMULATED_ORDER_ID,
                    taker_portfolio_id: NO_PORTFOLIO,
                    taker_side: side.opposite(),
                    price_ticks: order_price_ticks,
                    qty_lots: lots,
                    notional_micros,
                    maker_fee_micros: fee_micros(notional_micros, maker_fee_bps),
                    taker_fee_micros: 0,
                };
                self.emit(out, EventBody::Fill(fill));
                remaining_lots -= lots;
            }
        }
        if !self.instrument(symbol_id).sim.queue_position {
            return;
        }
        // Each fill raises the order's `queue_ahead_lots` towards zero or closes it, so this ends.
        while remaining_lots > 0 {
            let Some((handle, owed_lots)) = self.first_owed_at(symbol_id, price_ticks) else {
                break;
            };
            let resting = *self.orders.get(handle);
            let lots = resting.open_lots.min(owed_lots).min(remaining_lots);
            let notional_micros = self
                .instrument(symbol_id)
                .notional_floor_micros(price_ticks, lots)
                .expect("a part of an accepted order's notional fits");
            let fill = Fill {
                trade_id: self.last_trade_id + 1,
                symbol_id,
                maker_order_id: resting.order_id,
                maker_portfolio_id: resting.portfolio_id,
                taker_order_id: SIMULATED_ORDER_ID,
                taker_portfolio_id: NO_PORTFOLIO,
                taker_side: resting.side.opposite(),
                price_ticks,
                qty_lots: lots,
                notional_micros,
                maker_fee_micros: fee_micros(notional_micros, maker_fee_bps),
                taker_fee_micros: 0,
            };
            self.emit(out, EventBody::Fill(fill));
            remaining_lots -= lots;
        }
    }

    /// The first order in time priority resting exactly at `price_ticks` (either side) that the
    /// volume traded there has reached, with the lots it is owed.
    fn first_owed_at(&self, symbol_id: SymbolId, price_ticks: i64) -> Option<(Handle, i64)> {
        let book = &self.books[usize::from(symbol_id)];
        let mut found = None;
        for side in [Side::Buy, Side::Sell] {
            book.scan(side, |level_ticks, handle| {
                if !side.crosses(price_ticks, level_ticks) {
                    return true;
                }
                if level_ticks != price_ticks {
                    return false;
                }
                let order = self.orders.get(handle);
                if order.queue_ahead_lots < 0 {
                    found = Some((handle, -order.queue_ahead_lots));
                    return false;
                }
                true
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The queue position an order takes when it joins the book at `price_ticks`: the reference
    /// volume ahead of it, or 0 when the instrument does not model queue position.
    pub(crate) fn queue_ahead_on_joining(&self, symbol_id: SymbolId, side: Side, price_ticks: i64) -> i64 {
        let queue_position = self.instruments.get(symbol_id).is_some_and(|i| i.sim.queue_position);
        if queue_position {
            self.symbols[usize::from(symbol_id)].market.queue_ahead_lots(side, price_ticks)
        } else {
            0
        }
    }

    /// State change of a reference trade with queue-position modelling: every order resting exactly
    /// at its price moves up the queue by its quantity. What was owed from an earlier trade and not
    /// filled is forgotten (the order is at the front), so `queue_ahead_lots` becomes
    /// `max(queue_ahead_lots, 0) - qty_lots`. Called from `evolve` only.
    pub(crate) fn advance_queues(&mut self, symbol_id: SymbolId, price_ticks: i64, qty_lots: i64) {
        if !self.instruments.get(symbol_id).is_some_and(|i| i.sim.queue_position) {
            return;
        }
        let orders = &mut self.orders;
        let book = &self.books[usize::from(symbol_id)];
        for side in [Side::Buy, Side::Sell] {
            book.scan(side, |level_ticks, handle| {
                if !side.crosses(price_ticks, level_ticks) {
                    return true;
                }
                if level_ticks != price_ticks {
                    return false;
                }
                let order = orders.get_mut(handle);
                order.queue_ahead_lots = order.queue_ahead_lots.max(0).saturating_sub(qty_lots);
                true
            });
        }
    }

    /// The liquidity mode and the simulated touch an incoming order may take, or `None` when it may
    /// take no simulated liquidity (`book` mode, a FOK order, no reference data yet).
    pub(crate) fn simulated_touch(&self, taker: &Order) -> Option<(LiquidityMode, Touch)> {
        let params = self.instrument(taker.symbol_id).sim;
        if params.liquidity == LiquidityMode::Book || taker.time_in_force == TimeInForce::Fok {
            return None;
        }
        let touch = self.symbols[usize::from(taker.symbol_id)].market.touch(taker.side, params.spread_bps)?;
        Some((params.liquidity, touch))
    }

    /// Fills an incoming order against simulated liquidity at `touch`: up to the instrument's
    /// liquidity limit, in the impact model's slices, each a `Fill`, stopping at the first slice
    /// beyond the order's limit (or a market order's protection price). Returns whether the order
    /// still has open lots because the liquidity limit (not its price) stopped it.
    pub(crate) fn match_simulated(&mut self, out: &mut Vec<Event>, handle: Handle, touch: Touch) -> bool {
        let taker = *self.orders.get(handle);
        if taker.open_lots == 0 {
            return false;
        }
        let (params, taker_fee_bps) = {
            let instrument = self.instrument(taker.symbol_id);
            (instrument.sim, instrument.taker_fee_bps)
        };
        let allowed_lots = params
            .liquidity_limit_lots(touch.displayed_lots)
            .map_or(taker.open_lots, |limit| limit.min(taker.open_lots));
        let Some(plan) = impact::plan(taker.side, touch, allowed_lots, &params) else {
            return true;
        };
        for slice in plan.slices() {
            if !taker.side.crosses(taker.price_ticks, slice.price_ticks) {
                return false;
            }
            let Some(notional_micros) =
                self.instrument(taker.symbol_id).notional_floor_micros(slice.price_ticks, slice.qty_lots)
            else {
                return true;
            };
            let fill = Fill {
                trade_id: self.last_trade_id + 1,
                symbol_id: taker.symbol_id,
                maker_order_id: SIMULATED_ORDER_ID,
                maker_portfolio_id: NO_PORTFOLIO,
                taker_order_id: taker.order_id,
                taker_portfolio_id: taker.portfolio_id,
                taker_side: taker.side,
                price_ticks: slice.price_ticks,
                qty_lots: slice.qty_lots,
                notional_micros,
                maker_fee_micros: 0,
                taker_fee_micros: fee_micros(notional_micros, taker_fee_bps),
            };
            self.emit(out, EventBody::Fill(fill));
        }
        plan.total_lots() < taker.open_lots
    }
}
