//! Order mixes for the load generator: what each connection sends next.
//!
//! - `exchange-core`: the shape of exchange-core's published throughput mix (9% GTC, 3% IOC,
//!   6% cancel, 82% move), around a fixed mid price. A move is a replace of one of the connection's
//!   own open orders one tick away. The benchmark suite's generator (`benches/src/workload`) keeps a
//!   model book to steer the book size; over a network the generator only learns of its orders from
//!   their reports, so this one picks among the orders it has seen accepted and not yet seen leave,
//!   and falls back to a new GTC order when it knows of none. Cancels and moves of orders that filled
//!   meanwhile are answered with an `unknown_order` reject: still a round trip, and counted as one.
//! - `new-cancel`: alternately a GTC order that rests and a cancel of the oldest one.
//!
//! Prices stay within a few dozen ticks of the mid, inside any price band.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simex::binary::protocol::{
    order_kind, report_type, side, time_in_force, Cancel, ExecutionReport, Message, NewOrder, Replace,
};
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MixKind {
    ExchangeCore,
    NewCancel,
}

/// Index into `loadgen::KINDS`.
pub const KIND_NEW: u8 = 0;
pub const KIND_CANCEL: u8 = 1;
pub const KIND_REPLACE: u8 = 2;

const MID_TICKS: i64 = 15_000;
/// Open orders a connection remembers; older ones are forgotten (and rest until the run ends).
pub const REMEMBERED_MAX: usize = 4_096;

#[derive(Clone, Copy, Debug)]
pub struct OpenOrder {
    pub order_id: u64,
    pub side: u8,
    pub price_ticks: i64,
    pub qty_lots: i64,
}

pub struct Request {
    pub message: Message,
    pub kind: u8,
}

pub struct Mix {
    kind: MixKind,
    rng: ChaCha8Rng,
    portfolio_id: u32,
    symbol_id: u16,
    toggle: bool,
}

impl Mix {
    pub fn new(kind: MixKind, seed: u64, portfolio_id: u32, symbol_id: u16) -> Mix {
        Mix { kind, rng: ChaCha8Rng::seed_from_u64(seed), portfolio_id, symbol_id, toggle: false }
    }

    pub fn next(&mut self, request_id: u64, open_orders: &Mutex<VecDeque<OpenOrder>>) -> Request {
        let draw: u32 = self.rng.gen_range(0..100);
        let (cancel, replace) = match self.kind {
            MixKind::ExchangeCore => ((12..18).contains(&draw), draw >= 18),
            MixKind::NewCancel => {
                self.toggle = !self.toggle;
                (!self.toggle, false)
            }
        };
        if cancel || replace {
            let picked = {
                let mut orders = open_orders.lock().unwrap_or_else(|e| e.into_inner());
                if cancel {
                    orders.pop_front()
                } else {
                    orders.front().copied()
                }
            };
            if let Some(order) = picked {
                return if cancel {
                    let message = Message::Cancel(Cancel {
                        request_id,
                        order_id: order.order_id,
                        portfolio_id: self.portfolio_id,
                        padding: [0; 4],
                    });
                    Request { message, kind: KIND_CANCEL }
                } else {
                    let step = if self.rng.gen_bool(0.5) { 1 } else { -1 };
                    let price_ticks = (order.price_ticks + step).max(1);
                    if let Some(front) = open_orders.lock().unwrap_or_else(|e| e.into_inner()).front_mut() {
                        if front.order_id == order.order_id {
                            front.price_ticks = price_ticks;
                        }
                    }
                    let message = Message::Replace(Replace {
                        request_id,
                        order_id: order.order_id,
                        price_ticks,
                        qty_lots: order.qty_lots,
                        portfolio_id: self.portfolio_id,
                        padding: [0; 4],
                    });
                    Request { message, kind: KIND_REPLACE }
                };
            }
        }
        let buy = self.rng.gen_bool(0.5);
        let ioc = self.kind == MixKind::ExchangeCore && (9..12).contains(&draw);
        let offset = if ioc { -self.rng.gen_range(1..20) } else { self.rng.gen_range(1..50) };
        let price_ticks = if buy { MID_TICKS - offset } else { MID_TICKS + offset };
        let message = Message::NewOrder(NewOrder {
            request_id,
            portfolio_id: self.portfolio_id,
            symbol_id: self.symbol_id,
            side: if buy { side::BUY } else { side::SELL },
            order_kind: order_kind::LIMIT,
            price_ticks,
            qty_lots: self.rng.gen_range(1..10),
            time_in_force: if ioc { time_in_force::IOC } else { time_in_force::GTC },
            ..NewOrder::default()
        });
        Request { message, kind: KIND_NEW }
    }
}

/// Keeps the list of a connection's open orders up to date from its reports.
pub fn track_open_orders(report: &ExecutionReport, open_orders: &Mutex<VecDeque<OpenOrder>>) {
    let mut orders = open_orders.lock().unwrap_or_else(|e| e.into_inner());
    match report.report_type {
        report_type::ACCEPTED if report.time_in_force == time_in_force::GTC => {
            if orders.len() >= REMEMBERED_MAX {
                orders.pop_front();
            }
            orders.push_back(OpenOrder {
                order_id: report.order_id,
                side: report.side,
                price_ticks: report.price_ticks,
                qty_lots: report.qty_lots,
            });
        }
        report_type::CANCELLED | report_type::EXPIRED => orders.retain(|o| o.order_id != report.order_id),
        report_type::FILL => {
            if let Some(index) = orders.iter().position(|o| o.order_id == report.order_id) {
                orders[index].qty_lots -= report.qty_lots;
                if orders[index].qty_lots <= 0 {
                    orders.remove(index);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_core_mix_is_mostly_moves_once_orders_are_known() {
        let open = Mutex::new(VecDeque::new());
        let mut mix = Mix::new(MixKind::ExchangeCore, 1, 1, 0);
        let mut counts = [0u32; 3];
        for request_id in 1..=10_000 {
            let request = mix.next(request_id, &open);
            counts[usize::from(request.kind)] += 1;
            if let Message::NewOrder(order) = request.message {
                if order.time_in_force == time_in_force::GTC {
                    open.lock().unwrap().push_back(OpenOrder {
                        order_id: request_id,
                        side: order.side,
                        price_ticks: order.price_ticks,
                        qty_lots: order.qty_lots,
                    });
                }
            }
        }
        // 12% new orders, 6% cancels, 82% moves, give or take the draws.
        assert!((1_000..1_500).contains(&counts[0]), "{counts:?}");
        assert!((450..750).contains(&counts[1]), "{counts:?}");
        assert!((7_900..8_500).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn fills_and_cancels_remove_open_orders() {
        let open = Mutex::new(VecDeque::new());
        let accepted = ExecutionReport {
            report_type: report_type::ACCEPTED,
            time_in_force: time_in_force::GTC,
            order_id: 5,
            qty_lots: 3,
            ..Default::default()
        };
        track_open_orders(&accepted, &open);
        track_open_orders(
            &ExecutionReport { report_type: report_type::FILL, order_id: 5, qty_lots: 2, ..Default::default() },
            &open,
        );
        assert_eq!(open.lock().unwrap().front().map(|o| o.qty_lots), Some(1));
        track_open_orders(
            &ExecutionReport { report_type: report_type::FILL, order_id: 5, qty_lots: 1, ..Default::default() },
            &open,
        );
        assert!(open.lock().unwrap().is_empty());
    }
}
