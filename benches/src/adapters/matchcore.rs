//! matchcore 0.4.0 through `OrderBook::execute`.
//!
//! matchcore numbers orders itself: an order's id is the sequence number of the command that
//! submitted it, and every command (a rejected one too) must carry the next sequence number. So the
//! adapter keeps the sequence and a client id → `OrderId` table. A replace is one `Amend` carrying
//! both the new price and the new quantity, which matchcore handles as cancel + reinsert (a price
//! change or a quantity increase) or in place (a decrease), like simex. A cancel or amend of an
//! order that is gone comes back `Rejected(OrderNotFound)`.
//!
//! Known defect, reported and not worked around: a limit order that crosses is matched with no
//! price bound (`match_order(.., None, ..)` in `submit.rs` and `amend.rs`), so when the liquidity
//! within its limit does not fill it, it keeps trading at worse prices (matchcore issue #167).

use super::{Adapter, Setup};
use crate::fills::{FillSink, Trade};
use crate::workload::{Op, Side, Tif, Workload};
use matchcore::{
    AmendCmd, AmendPatch, CancelCmd, Command, CommandKind, CommandMeta, CommandOutcome, CommandReport, LimitOrder,
    LimitOrderPatch, NewOrder, OrderBook, OrderFlags, OrderId, OrderKind, Price, Quantity, QuantityPolicy,
    SequenceNumber, SubmitCmd, TimeInForce, Timestamp,
};

/// Stands for "never submitted"; matchcore answers `OrderNotFound`.
const UNKNOWN: OrderId = OrderId(u64::MAX);

pub struct Matchcore {
    book: OrderBook,
    seq: u64,
    /// matchcore id by client id.
    order_ids: Vec<OrderId>,
    /// Client id by matchcore id (= sequence number); kept only when fills are collected (warm-up
    /// included).
    clients: Vec<u32>,
    collect_fills: bool,
}

fn side(side: Side) -> matchcore::Side {
    match side {
        Side::Buy => matchcore::Side::Buy,
        Side::Sell => matchcore::Side::Sell,
    }
}

impl Matchcore {
    fn execute(&mut self, kind: CommandKind) -> CommandOutcome {
        let sequence_number = self.seq;
        self.seq += 1;
        let command = Command {
            meta: CommandMeta {
                sequence_number: SequenceNumber(sequence_number),
                timestamp: Timestamp(sequence_number),
            },
            kind,
        };
        self.book.execute(&command)
    }
}

impl Adapter for Matchcore {
    fn new(workload: &Workload, setup: &Setup) -> Matchcore {
        let collect_fills = setup.collect_fills;
        let ops = workload.warmup.len() + workload.measured.len();
        Matchcore {
            book: OrderBook::new("BENCH"),
            seq: 0,
            order_ids: vec![UNKNOWN; workload.max_client_id as usize + 1],
            clients: if collect_fills { vec![0; ops] } else { Vec::new() },
            collect_fills,
        }
    }

    #[inline]
    fn apply<S: FillSink>(&mut self, op: &Op, fills: &mut S) -> bool {
        let kind = match *op {
            Op::New { id, side: order_side, tif, price, qty, .. } => {
                self.order_ids[id as usize] = OrderId(self.seq);
                if self.collect_fills {
                    self.clients[self.seq as usize] = id;
                }
                let tif = match tif {
                    Tif::Gtc => TimeInForce::Gtc,
                    Tif::Ioc => TimeInForce::Ioc,
                };
                CommandKind::Submit(SubmitCmd {
                    order: NewOrder::Limit(LimitOrder::new(
                        Price(price as u64),
                        QuantityPolicy::Standard { quantity: Quantity(qty as u64) },
                        OrderFlags::new(side(order_side), false, tif),
                    )),
                })
            }
            Op::Cancel { id, .. } => {
                CommandKind::Cancel(CancelCmd { order_id: self.order_ids[id as usize], order_kind: OrderKind::Limit })
            }
            Op::Replace { id, price, qty, .. } => CommandKind::Amend(AmendCmd {
                order_id: self.order_ids[id as usize],
                patch: AmendPatch::Limit(
                    LimitOrderPatch::new()
                        .with_price(Price(price as u64))
                        .with_quantity_policy(QuantityPolicy::Standard { quantity: Quantity(qty as u64) }),
                ),
            }),
        };
        let outcome = self.execute(kind);
        match &outcome {
            CommandOutcome::Rejected(_) => true,
            CommandOutcome::Applied(report) => {
                if S::COLLECTS {
                    if let CommandReport::Submit(effects) | CommandReport::Amend(effects) = report {
                        let orders = std::iter::once(effects.target_order()).chain(effects.triggered_orders());
                        for order in orders {
                            let Some(result) = order.match_result() else {
                                continue;
                            };
                            let taker = self.clients[order.order_id().0 as usize];
                            for trade in result.trades() {
                                fills.fill(Trade {
                                    taker,
                                    maker: self.clients[trade.maker_order_id().0 as usize],
                                    price: trade.price().0 as i64,
                                    qty: trade.quantity().0 as i64,
                                });
                            }
                        }
                    }
                }
                false
            }
        }
    }
}
