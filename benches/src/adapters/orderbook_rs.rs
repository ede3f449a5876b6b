//! orderbook-rs 0.15.3 (with pricelevel 0.10.2), single-threaded, through its public API.
//!
//! Client ids are used as order ids directly (`Id::sequential`). New orders of either kind go
//! through `add_order_with_committed`, because an IOC that does not fill completely returns
//! `Err(InsufficientLiquidity)` and only that call still hands back what it traded. A replace is
//! `update_order(UpdatePriceAndQuantity)`: cancel then re-add, at the back of the new level, with a
//! sweep if it crosses. A cancel or update of an order that is gone returns `Ok(None)`, counted as
//! a rejection.
//!
//! `update_order` does not return the trades of a re-add that crosses; they are only published to
//! the book's trade listener. So when fills are collected, every fill is taken from a listener
//! installed at construction; when they are not (the timed passes), the book has no listener.

use super::{Adapter, Setup};
use crate::fills::{FillSink, Trade};
use crate::workload::{Op, Side, Tif, Workload};
use orderbook_rs::orderbook::trade::TradeListener;
use orderbook_rs::{Id, OrderBook, OrderBookError, OrderType, TimeInForce, TradeResult};
use pricelevel::{Hash32, OrderUpdate, Price, Quantity};
use std::sync::{Arc, Mutex};

pub struct OrderbookRs {
    book: OrderBook<()>,
    /// Fills published to the listener and not yet handed to a sink.
    published: Option<Arc<Mutex<Vec<Trade>>>>,
}

fn side(side: Side) -> orderbook_rs::Side {
    match side {
        Side::Buy => orderbook_rs::Side::Buy,
        Side::Sell => orderbook_rs::Side::Sell,
    }
}

fn client(id: Id) -> u32 {
    id.as_u64().and_then(|id| u32::try_from(id).ok()).expect("only sequential ids from client ids are used")
}

fn translate(result: &TradeResult) -> impl Iterator<Item = Trade> + '_ {
    result.match_result.trades().as_vec().iter().map(|t| Trade {
        taker: client(t.taker_order_id()),
        maker: client(t.maker_order_id()),
        price: i64::try_from(t.price().as_u128()).expect("prices fit in i64"),
        qty: i64::try_from(t.quantity().as_u64()).expect("quantities fit in i64"),
    })
}

impl Adapter for OrderbookRs {
    fn new(_workload: &Workload, setup: &Setup) -> OrderbookRs {
        if !setup.collect_fills {
            return OrderbookRs { book: OrderBook::new("BENCH"), published: None };
        }
        let published: Arc<Mutex<Vec<Trade>>> = Arc::default();
        let sink = Arc::clone(&published);
        let listener: TradeListener = Arc::new(move |result: &TradeResult| {
            sink.lock().expect("listener lock").extend(translate(result));
        });
        OrderbookRs { book: OrderBook::with_trade_listener("BENCH", listener), published: Some(published) }
    }

    #[inline]
    fn apply<S: FillSink>(&mut self, op: &Op, fills: &mut S) -> bool {
        let rejected = match *op {
            Op::New { id, side: order_side, tif, price, qty, .. } => {
                let order = OrderType::Standard {
                    id: Id::sequential(u64::from(id)),
                    price: Price::new(price as u128),
                    quantity: Quantity::new(qty as u64),
                    side: side(order_side),
                    user_id: Hash32::zero(),
                    timestamp: self.book.clock().now_millis(),
                    time_in_force: match tif {
                        Tif::Gtc => TimeInForce::Gtc,
                        Tif::Ioc => TimeInForce::Ioc,
                    },
                    extra_fields: (),
                };
                match self.book.add_order_with_committed(order) {
                    Ok(_) => false,
                    // An IOC's unfilled remainder is reported as an error; it is not a rejection.
                    Err(failure) => {
                        !(tif == Tif::Ioc && matches!(failure.error, OrderBookError::InsufficientLiquidity { .. }))
                    }
                }
            }
            Op::Cancel { id, .. } => !matches!(self.book.cancel_order(Id::sequential(u64::from(id))), Ok(Some(_))),
            Op::Replace { id, price, qty, .. } => !matches!(
                self.book.update_order(OrderUpdate::UpdatePriceAndQuantity {
                    order_id: Id::sequential(u64::from(id)),
                    new_price: Price::new(price as u128),
                    new_quantity: Quantity::new(qty as u64),
                }),
                Ok(Some(_))
            ),
        };
        if let Some(published) = &self.published {
            // Drained after every command, also into a sink that drops them (the warm-up).
            for trade in published.lock().expect("listener lock").drain(..) {
                fills.fill(trade);
            }
        }
        rejected
    }
}
