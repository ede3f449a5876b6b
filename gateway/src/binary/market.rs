//! Market data for binary sessions: a mirror of each book's levels, kept from the event tap.
//!
//! The shards own the books; the gateway sees only their events. This mirror folds the events that
//! change a book (an accepted resting order, fills, cancels, replaces) into aggregate levels per
//! price, from which the best bid and ask are read. A taker order is never added: the engine adds an
//! incoming order and matches it within one command, and only a resting remainder stays, so the
//! mirror adds an accepted limit order that may rest and lets the fills that follow take it down.
//! A top of book is published for every symbol whose best prices changed since the last drain of
//! the tap, stamped with the engine sequence of the last event folded in.

use super::protocol::{side_code, TopOfBook, Trade};
use rustc_hash::FxHashMap;
use simex_engine::{EventBody, OrderId, OrderKind, Side, SymbolId};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct OpenOrder {
    symbol_id: SymbolId,
    side: Side,
    price_ticks: i64,
    open_lots: i64,
}

#[derive(Clone, Debug, Default)]
struct MirrorBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_seq: u64,
    shard: u16,
    published: Option<(i64, i64, i64, i64)>,
    dirty: bool,
}

impl MirrorBook {
    fn side(&mut self, side: Side) -> &mut BTreeMap<i64, i64> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn change(&mut self, side: Side, price_ticks: i64, delta_lots: i64) {
        let levels = self.side(side);
        let remaining = {
            let level = levels.entry(price_ticks).or_insert(0);
            *level += delta_lots;
            *level
        };
        if remaining <= 0 {
            levels.remove(&price_ticks);
        }
        self.dirty = true;
    }

    fn top(&self) -> (i64, i64, i64, i64) {
        let (bid_price, bid_qty) = self.bids.iter().next_back().map_or((0, 0), |(&p, &q)| (p, q));
        let (ask_price, ask_qty) = self.asks.iter().next().map_or((0, 0), |(&p, &q)| (p, q));
        (bid_price, bid_qty, ask_price, ask_qty)
    }
}

/// The mirror of every book.
#[derive(Debug, Default)]
pub struct MarketMirror {
    books: Vec<MirrorBook>,
    orders: FxHashMap<OrderId, OpenOrder>,
    dirty: Vec<SymbolId>,
}

impl MarketMirror {
    pub fn new(symbols: usize) -> MarketMirror {
        MarketMirror { books: vec![MirrorBook::default(); symbols], orders: FxHashMap::default(), dirty: Vec::new() }
    }

    /// Folds one event in; returns the trade it was, if it was one.
    pub fn apply(&mut self, shard: u16, seq: u64, body: &EventBody) -> Option<Trade> {
        let mut trade = None;
        let symbol_id = match *body {
            EventBody::OrderAccepted(order) => {
                if order.kind == OrderKind::Limit && order.time_in_force.rests() {
                    self.orders.insert(
                        order.order_id,
                        OpenOrder {
                            symbol_id: order.symbol_id,
                            side: order.side,
                            price_ticks: order.price_ticks,
                            open_lots: order.qty_lots,
                        },
                    );
                    self.book(order.symbol_id)?.change(order.side, order.price_ticks, order.qty_lots);
                }
                order.symbol_id
            }
            EventBody::Fill(fill) => {
                self.take(fill.maker_order_id, fill.qty_lots);
                self.take(fill.taker_order_id, fill.qty_lots);
                trade = Some(Trade {
                    engine_seq: seq,
                    trade_id: fill.trade_id,
                    price_ticks: fill.price_ticks,
                    qty_lots: fill.qty_lots,
                    symbol_id: fill.symbol_id,
                    shard,
                    taker_side: side_code(fill.taker_side),
                    ..Trade::default()
                });
                fill.symbol_id
            }
            EventBody::OrderCancelled { order_id, symbol_id, qty_lots, .. } => {
                self.take(order_id, qty_lots);
                symbol_id
            }
            EventBody::OrderReplaced { order_id, symbol_id, price_ticks, qty_lots, .. } => {
                if let Some(order) = self.orders.get_mut(&order_id) {
                    let old = *order;
                    order.price_ticks = price_ticks;
                    order.open_lots = qty_lots;
                    let book = self.books.get_mut(usize::from(symbol_id))?;
                    book.change(old.side, old.price_ticks, -old.open_lots);
                    book.change(old.side, price_ticks, qty_lots);
                }
                symbol_id
            }
            _ => return None,
        };
        let book = self.books.get_mut(usize::from(symbol_id))?;
        book.last_seq = seq;
        book.shard = shard;
        if book.dirty && !self.dirty.contains(&symbol_id) {
            self.dirty.push(symbol_id);
        }
        trade
    }

    fn book(&mut self, symbol_id: SymbolId) -> Option<&mut MirrorBook> {
        self.books.get_mut(usize::from(symbol_id))
    }

    fn take(&mut self, order_id: OrderId, qty_lots: i64) {
        let Some(order) = self.orders.get_mut(&order_id) else { return };
        order.open_lots -= qty_lots;
        let order = *order;
        if order.open_lots <= 0 {
            self.orders.remove(&order_id);
        }
        if let Some(book) = self.books.get_mut(usize::from(order.symbol_id)) {
            book.change(order.side, order.price_ticks, -qty_lots);
        }
    }

    /// The top of book of every symbol whose best prices changed since the last call.
    pub fn changed_tops(&mut self, mut publish: impl FnMut(TopOfBook)) {
        for symbol_id in self.dirty.drain(..) {
            let Some(book) = self.books.get_mut(usize::from(symbol_id)) else { continue };
            book.dirty = false;
            let top = book.top();
            if book.published == Some(top) {
                continue;
            }
            book.published = Some(top);
            publish(TopOfBook {
                engine_seq: book.last_seq,
                bid_price_ticks: top.0,
                bid_qty_lots: top.1,
                ask_price_ticks: top.2,
                ask_qty_lots: top.3,
                symbol_id,
                shard: book.shard,
                ..TopOfBook::default()
            });
        }
    }

    /// The current top of book of one symbol.
    pub fn top_of(&self, symbol_id: SymbolId) -> Option<TopOfBook> {
        let book = self.books.get(usize::from(symbol_id))?;
        let top = book.top();
        Some(TopOfBook {
            engine_seq: book.last_seq,
            bid_price_ticks: top.0,
            bid_qty_lots: top.1,
            ask_price_ticks: top.2,
            ask_qty_lots: top.3,
            symbol_id,
            shard: book.shard,
            ..TopOfBook::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simex_engine::{AcceptedOrder, ClientOrderId, Fill, SelfTradePolicy, TimeInForce};

    fn accepted(order_id: OrderId, side: Side, price_ticks: i64, qty_lots: i64, tif: TimeInForce) -> EventBody {
        EventBody::OrderAccepted(AcceptedOrder {
            order_id,
            portfolio_id: 1,
            symbol_id: 0,
            side,
            kind: OrderKind::Limit,
            price_ticks,
            qty_lots,
            time_in_force: tif,
            expire_at_ns: i64::MAX,
            client_order_id: ClientOrderId::NONE,
            post_only: false,
            self_trade_policy: SelfTradePolicy::Default,
            reserved_cash_micros: 0,
            reserved_lots: 0,
        })
    }

    #[test]
    fn resting_orders_make_the_top_and_fills_take_it_down() {
        let mut mirror = MarketMirror::new(1);
        mirror.apply(0, 1, &accepted(1, Side::Sell, 101, 5, TimeInForce::Gtc));
        mirror.apply(0, 2, &accepted(2, Side::Buy, 99, 3, TimeInForce::Gtc));
        let mut tops = Vec::new();
        mirror.changed_tops(|top| tops.push(top));
        assert_eq!(tops.len(), 1);
        assert_eq!(
            (tops[0].bid_price_ticks, tops[0].bid_qty_lots, tops[0].ask_price_ticks, tops[0].ask_qty_lots),
            (99, 3, 101, 5)
        );
        assert_eq!(tops[0].engine_seq, 2);

        mirror.apply(0, 3, &accepted(3, Side::Buy, 101, 2, TimeInForce::Ioc));
        let fill = Fill {
            trade_id: 1,
            symbol_id: 0,
            maker_order_id: 1,
            maker_portfolio_id: 1,
            taker_order_id: 3,
            taker_portfolio_id: 2,
            taker_side: Side::Buy,
            price_ticks: 101,
            qty_lots: 2,
            notional_micros: 0,
            maker_fee_micros: 0,
            taker_fee_micros: 0,
        };
        let trade = mirror.apply(0, 4, &EventBody::Fill(fill)).expect("a fill is a trade");
        assert_eq!((trade.price_ticks, trade.qty_lots, trade.engine_seq), (101, 2, 4));
        let mut tops = Vec::new();
        mirror.changed_tops(|top| tops.push(top));
        assert_eq!((tops[0].ask_price_ticks, tops[0].ask_qty_lots), (101, 3));
        assert!(!mirror.orders.contains_key(&3), "an IOC order never rests");
    }
}
