//! Order mixes for the load generator: what each connection sends next.
//!
//! - `exchange-core` (the default): exchange-core's throughput mix, from the same generator the
//!   engine benchmark uses (`simex_workload::exchange_core`, a port of exchange-core's
//!   `TestOrdersGenerator`). It settles to 9% GTC, 3% IOC, 6% cancel and 82% move (a replace to a
//!   new price, the open quantity unchanged) over about a thousand resting orders, priced around
//!   100,000 ticks (±5% for new orders, moves 1% of the way to the last trade); quantities are
//!   `1 + a·b·c` with `a, b, c` uniform in 0..6. The generator keeps its own model of the book (it
//!   applies each command as it makes it), so the stream is exactly the benchmark's for the same
//!   seed; the first commands are its warm-up, mostly GTC orders that build the book, which
//!   exchange-core leaves out of its measurement and the load generator sends like the rest. Each
//!   connection runs its own generator (seed + connection index) on one portfolio, with self-trade
//!   prevention off (`allow`) so that it trades with itself as in the model. Cancels and moves name
//!   the generator's client ids; the venue's order id is learned from the order's `accepted`
//!   report (its `client_order_id` is the client id). Where the venue does not follow the model
//!   (another connection took the order, or its report has not arrived yet) the request names
//!   order 0 or a gone order and is answered `unknown_order`: still a round trip, counted as one.
//!   An IOC, which exchange-core prices at the edge of its ±25% band to sweep the book, is limited
//!   to [`IOC_REACH_BPS`] of the generator's last trade price, inside the venue's default ±10%
//!   price band, so that it trades instead of being refused.
//! - `new-cancel`: alternately a GTC order that rests and a cancel of the oldest one, 1 to 49 ticks
//!   from 15,000.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simex::binary::protocol::{
    order_kind, report_type, self_trade, side, text_of, time_in_force, Cancel, ExecutionReport, Message, NewOrder,
    Replace,
};
use simex_workload::exchange_core::{Generator, Params};
use simex_workload::{Op, Side, Tif};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MixKind {
    /// exchange-core's throughput mix (9% GTC, 3% IOC, 6% cancel, 82% move), from the engine
    /// benchmark's generator.
    ExchangeCore,
    /// Alternately a resting GTC order and a cancel of the oldest one.
    NewCancel,
}

/// Index into `loadgen::KINDS`.
pub const KIND_NEW: u8 = 0;
pub const KIND_CANCEL: u8 = 1;
pub const KIND_REPLACE: u8 = 2;

/// The new-cancel mix's middle price.
const MID_TICKS: i64 = 15_000;
/// The exchange-core generator's first trade price: the benchmark's, which gives its book of about
/// a thousand orders on about 750 levels.
pub const START_PRICE_TICKS: i64 = 100_000;
/// The resting orders the exchange-core generator aims for (exchange-core's published figure).
pub const TARGET_ORDERS: usize = 1_000;
/// How far from the generator's last trade price an exchange-core IOC is limited, in basis points.
pub const IOC_REACH_BPS: i64 = 900;
/// Open orders a connection remembers; older ones are forgotten (and rest until the run ends).
pub const REMEMBERED_MAX: usize = 4_096;

#[derive(Clone, Copy, Debug)]
pub struct OpenOrder {
    pub order_id: u64,
    pub side: u8,
    pub price_ticks: i64,
    pub qty_lots: i64,
}

/// What a connection knows of its orders at the venue, from their reports.
#[derive(Debug)]
pub struct OpenOrders {
    /// GTC orders seen accepted and not yet seen leave, oldest first (the new-cancel mix).
    pub queue: VecDeque<OpenOrder>,
    /// Whether `queue` is kept: only the new-cancel mix reads it, and for the exchange-core mix,
    /// whose orders rarely leave, keeping it would scan thousands of entries per report.
    pub keep_queue: bool,
    /// The venue's order id by the exchange-core generator's client id (the order's
    /// `client_order_id`), from its `accepted` report; dropped when the generator cancels it.
    pub by_client_id: HashMap<u32, u64>,
}

impl Default for OpenOrders {
    fn default() -> OpenOrders {
        OpenOrders { queue: VecDeque::new(), keep_queue: true, by_client_id: HashMap::new() }
    }
}

impl OpenOrders {
    /// What a connection running `mix` needs to track.
    pub fn for_mix(mix: MixKind) -> OpenOrders {
        OpenOrders { keep_queue: mix == MixKind::NewCancel, ..OpenOrders::default() }
    }
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
    generator: Option<Generator>,
}

impl Mix {
    pub fn new(kind: MixKind, seed: u64, portfolio_id: u32, symbol_id: u16) -> Mix {
        let generator = (kind == MixKind::ExchangeCore).then(|| {
            Generator::new(&Params {
                commands: 0,
                accounts: 1,
                target_orders: TARGET_ORDERS,
                start_price: START_PRICE_TICKS,
                seed,
            })
        });
        Mix { kind, rng: ChaCha8Rng::seed_from_u64(seed), portfolio_id, symbol_id, toggle: false, generator }
    }

    pub fn next(&mut self, request_id: u64, open_orders: &Mutex<OpenOrders>) -> Request {
        match self.kind {
            MixKind::ExchangeCore => self.next_exchange_core(request_id, open_orders),
            MixKind::NewCancel => self.next_new_cancel(request_id, open_orders),
        }
    }

    fn next_exchange_core(&mut self, request_id: u64, open_orders: &Mutex<OpenOrders>) -> Request {
        let generator = self.generator.as_mut().expect("an exchange-core mix has its generator");
        let (op, _measured) = generator.next_op();
        let last_trade_ticks = generator.last_trade_price();
        let venue_id = |client_id: u32, forget: bool| {
            let mut orders = open_orders.lock().unwrap_or_else(|e| e.into_inner());
            let found = orders.by_client_id.get(&client_id).copied().unwrap_or(0);
            if forget {
                orders.by_client_id.remove(&client_id);
            }
            found
        };
        match op {
            Op::New { id, side: order_side, tif, price, qty, .. } => {
                let reach = last_trade_ticks * IOC_REACH_BPS / 10_000;
                let price_ticks = match (tif, order_side) {
                    (Tif::Gtc, _) => price,
                    (Tif::Ioc, Side::Buy) => price.min(last_trade_ticks + reach),
                    (Tif::Ioc, Side::Sell) => price.max(last_trade_ticks - reach),
                };
                let message = Message::NewOrder(NewOrder {
                    request_id,
                    client_order_id: client_order_id(id),
                    portfolio_id: self.portfolio_id,
                    symbol_id: self.symbol_id,
                    side: if order_side == Side::Buy { side::BUY } else { side::SELL },
                    order_kind: order_kind::LIMIT,
                    price_ticks,
                    qty_lots: qty,
                    time_in_force: if tif == Tif::Ioc { time_in_force::IOC } else { time_in_force::GTC },
                    self_trade_policy: self_trade::ALLOW,
                    ..NewOrder::default()
                });
                Request { message, kind: KIND_NEW }
            }
            Op::Cancel { id, .. } => {
                let message = Message::Cancel(Cancel {
                    request_id,
                    order_id: venue_id(id, true),
                    portfolio_id: self.portfolio_id,
                    padding: [0; 4],
                });
                Request { message, kind: KIND_CANCEL }
            }
            Op::Replace { id, price, qty, .. } => {
                let message = Message::Replace(Replace {
                    request_id,
                    order_id: venue_id(id, false),
                    price_ticks: price,
                    qty_lots: qty,
                    portfolio_id: self.portfolio_id,
                    padding: [0; 4],
                });
                Request { message, kind: KIND_REPLACE }
            }
        }
    }

    fn next_new_cancel(&mut self, request_id: u64, open_orders: &Mutex<OpenOrders>) -> Request {
        self.toggle = !self.toggle;
        if !self.toggle {
            let picked = open_orders.lock().unwrap_or_else(|e| e.into_inner()).queue.pop_front();
            if let Some(order) = picked {
                let message = Message::Cancel(Cancel {
                    request_id,
                    order_id: order.order_id,
                    portfolio_id: self.portfolio_id,
                    padding: [0; 4],
                });
                return Request { message, kind: KIND_CANCEL };
            }
        }
        let buy = self.rng.gen_bool(0.5);
        let offset = self.rng.gen_range(1..50);
        let price_ticks = if buy { MID_TICKS - offset } else { MID_TICKS + offset };
        let message = Message::NewOrder(NewOrder {
            request_id,
            portfolio_id: self.portfolio_id,
            symbol_id: self.symbol_id,
            side: if buy { side::BUY } else { side::SELL },
            order_kind: order_kind::LIMIT,
            price_ticks,
            qty_lots: self.rng.gen_range(1..10),
            time_in_force: time_in_force::GTC,
            ..NewOrder::default()
        });
        Request { message, kind: KIND_NEW }
    }
}

/// The generator's client id as a `client_order_id`: its decimal digits.
pub fn client_order_id(client_id: u32) -> [u8; 16] {
    simex::binary::protocol::fixed_text(&client_id.to_string()).unwrap_or_default()
}

/// The generator's client id in a `client_order_id`, if it holds one.
pub fn client_id_of(client_order_id: &[u8; 16]) -> Option<u32> {
    text_of(client_order_id)?.parse().ok()
}

/// Keeps what a connection knows of its open orders up to date from its reports.
pub fn track_open_orders(report: &ExecutionReport, open_orders: &Mutex<OpenOrders>) {
    let mut orders = open_orders.lock().unwrap_or_else(|e| e.into_inner());
    match report.report_type {
        report_type::ACCEPTED if report.time_in_force == time_in_force::GTC => {
            if let Some(client_id) = client_id_of(&report.client_order_id) {
                orders.by_client_id.insert(client_id, report.order_id);
            }
            if !orders.keep_queue {
                return;
            }
            if orders.queue.len() >= REMEMBERED_MAX {
                orders.queue.pop_front();
            }
            orders.queue.push_back(OpenOrder {
                order_id: report.order_id,
                side: report.side,
                price_ticks: report.price_ticks,
                qty_lots: report.qty_lots,
            });
        }
        report_type::CANCELLED | report_type::EXPIRED => orders.queue.retain(|o| o.order_id != report.order_id),
        report_type::FILL => {
            if let Some(index) = orders.queue.iter().position(|o| o.order_id == report.order_id) {
                orders.queue[index].qty_lots -= report.qty_lots;
                if orders.queue[index].qty_lots <= 0 {
                    orders.queue.remove(index);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts of (GTC, IOC, cancel, replace) among `requests` requests after `skip`.
    fn counts(mix: &mut Mix, open: &Mutex<OpenOrders>, skip: u64, requests: u64) -> [u32; 4] {
        let mut counts = [0u32; 4];
        for request_id in 1..=skip + requests {
            let request = mix.next(request_id, open);
            if request_id <= skip {
                continue;
            }
            let index = match request.message {
                Message::NewOrder(order) if order.time_in_force == time_in_force::GTC => 0,
                Message::NewOrder(_) => 1,
                Message::Cancel(_) => 2,
                Message::Replace(_) => 3,
                other => panic!("the mix made {other:?}"),
            };
            counts[index] += 1;
        }
        counts
    }

    #[test]
    fn the_exchange_core_mix_has_the_published_proportions_after_its_warm_up() {
        let open = Mutex::new(OpenOrders::default());
        let mut mix = Mix::new(MixKind::ExchangeCore, 1, 1, 0);
        // The warm-up fills the book with about a thousand GTC orders; then 9% GTC, 3% IOC,
        // 6% cancel and 82% move, give or take what the generator's size regulation makes of them.
        let [gtc, ioc, cancel, replace] = counts(&mut mix, &open, 5_000, 50_000);
        let percent = |n: u32| f64::from(n) * 100.0 / 50_000.0;
        assert!((6.0..12.0).contains(&percent(gtc)), "GTC {}%", percent(gtc));
        assert!((1.5..4.5).contains(&percent(ioc)), "IOC {}%", percent(ioc));
        assert!((4.0..8.0).contains(&percent(cancel)), "cancel {}%", percent(cancel));
        assert!((78.0..86.0).contains(&percent(replace)), "move {}%", percent(replace));
    }

    #[test]
    fn the_exchange_core_mix_is_the_benchmark_stream_in_protocol_messages() {
        let params = Params {
            commands: 3_000,
            accounts: 1,
            target_orders: TARGET_ORDERS,
            start_price: START_PRICE_TICKS,
            seed: 7,
        };
        let workload = simex_workload::exchange_core::generate(&params);
        let stream: Vec<Op> = workload.warmup.iter().chain(&workload.measured).copied().collect();
        let open = Mutex::new(OpenOrders::default());
        let mut mix = Mix::new(MixKind::ExchangeCore, 7, 3, 0);
        for (index, op) in stream.iter().enumerate() {
            let request = mix.next(index as u64 + 1, &open);
            match (*op, request.message) {
                (Op::New { id, qty, tif: Tif::Gtc, price, .. }, Message::NewOrder(order)) => {
                    assert_eq!((client_id_of(&order.client_order_id), order.qty_lots), (Some(id), qty));
                    assert_eq!((order.price_ticks, order.self_trade_policy), (price, self_trade::ALLOW));
                    // The venue accepts it: its id is learned from the report.
                    let accepted = ExecutionReport {
                        report_type: report_type::ACCEPTED,
                        time_in_force: time_in_force::GTC,
                        order_id: 1_000_000 + u64::from(id),
                        client_order_id: order.client_order_id,
                        ..Default::default()
                    };
                    track_open_orders(&accepted, &open);
                }
                (Op::New { id, tif: Tif::Ioc, .. }, Message::NewOrder(order)) => {
                    assert_eq!(
                        (client_id_of(&order.client_order_id), order.time_in_force),
                        (Some(id), time_in_force::IOC)
                    );
                }
                (Op::Cancel { id, .. }, Message::Cancel(cancel)) => {
                    assert_eq!(cancel.order_id, 1_000_000 + u64::from(id))
                }
                (Op::Replace { id, price, qty, .. }, Message::Replace(replace)) => {
                    assert_eq!(
                        (replace.order_id, replace.price_ticks, replace.qty_lots),
                        (1_000_000 + u64::from(id), price, qty)
                    );
                }
                (op, message) => panic!("{op:?} became {message:?}"),
            }
        }
    }

    #[test]
    fn the_new_cancel_mix_alternates() {
        let open = Mutex::new(OpenOrders::default());
        let mut mix = Mix::new(MixKind::NewCancel, 1, 1, 0);
        let first = mix.next(1, &open);
        assert_eq!(first.kind, KIND_NEW);
        open.lock().unwrap().queue.push_back(OpenOrder { order_id: 9, side: side::BUY, price_ticks: 1, qty_lots: 1 });
        let second = mix.next(2, &open);
        assert!(matches!(second.message, Message::Cancel(Cancel { order_id: 9, .. })));
    }

    #[test]
    fn fills_and_cancels_remove_open_orders() {
        let open = Mutex::new(OpenOrders::default());
        let accepted = ExecutionReport {
            report_type: report_type::ACCEPTED,
            time_in_force: time_in_force::GTC,
            order_id: 5,
            qty_lots: 3,
            client_order_id: client_order_id(42),
            ..Default::default()
        };
        track_open_orders(&accepted, &open);
        assert_eq!(open.lock().unwrap().by_client_id.get(&42), Some(&5));
        track_open_orders(
            &ExecutionReport { report_type: report_type::FILL, order_id: 5, qty_lots: 2, ..Default::default() },
            &open,
        );
        assert_eq!(open.lock().unwrap().queue.front().map(|o| o.qty_lots), Some(1));
        track_open_orders(
            &ExecutionReport { report_type: report_type::FILL, order_id: 5, qty_lots: 1, ..Default::default() },
            &open,
        );
        assert!(open.lock().unwrap().queue.is_empty());
    }
}
