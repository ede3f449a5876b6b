//! simex's full path: `Engine::apply` with risk checks, cash reservations, fees, positions and the
//! ledger, exactly as the venue runs it.
//!
//! The setup keeps risk from ever refusing the benchmark's orders without switching any check off:
//! one instrument with a price band of 1000% (the widest allowed) and very large quantity and
//! position limits, accounts with a lot of cash, and generous `RiskLimits` sent with
//! `SetRiskLimits`. Self-trade prevention is set to `Allow`, so that an account trading with itself
//! behaves as in the engines compared against, which have none.

use super::{Adapter, Setup};
use crate::fills::{FillSink, Trade};
use crate::workload::{Op, Side, Tif, Workload};
use simex_engine::engine::ORDER_ID_SHARD_SHIFT;
use simex_engine::{
    Command, CommandBody, Engine, EngineConfig, Event, EventBody, InstrumentTable, NewOrder, OrderId, RiskLimits,
    SelfTradePolicy, SymbolId, TimeInForce,
};

/// The benchmark's one instrument: the flash1 tick, everything else wide open.
pub const INSTRUMENTS_TOML: &str = r#"
[[instrument]]
symbol = "BENCH"
asset_class = "equity"
tick = "0.005"
lot = "1"
min_qty = "1"
max_qty = "1000000"
max_position = "1000000000000"
maker_fee_bps = 0
taker_fee_bps = 1
price_band_bps = 100000
short_allowed = true
initial_margin_bps = 5000
session_close_utc = "00:00"
"#;

/// Cash of every account: a hundred million units of the account currency, far more than any
/// account's orders and positions in these workloads need.
pub const ACCOUNT_CASH_MICROS: i64 = 100_000_000 * 1_000_000;

pub const LIMITS: RiskLimits = RiskLimits {
    order_notional_max_micros: i64::MAX / 4,
    gross_exposure_max_micros: i64::MAX / 4,
    open_orders_max: 10_000_000,
    daily_loss_max_micros: i64::MAX,
};

const ORDER_COUNTER_MASK: u64 = (1 << ORDER_ID_SHARD_SHIFT) - 1;

pub struct SimexFull {
    engine: Engine,
    events: Vec<Event>,
    symbol_id: SymbolId,
    now_ns: i64,
    /// Engine order id by client id; 0 before the order was accepted.
    order_ids: Vec<OrderId>,
    /// Client id by engine order counter; kept only when fills are collected (warm-up included).
    clients: Vec<u32>,
    collect_fills: bool,
}

impl SimexFull {
    fn run(&mut self, body: CommandBody) {
        self.events.clear();
        self.now_ns += 1;
        let command = Command { timestamp_ns: self.now_ns, body };
        self.engine.apply(&command, &mut self.events);
    }

    fn client(&self, order_id: OrderId) -> u32 {
        self.clients[(order_id & ORDER_COUNTER_MASK) as usize]
    }
}

pub(crate) fn side(side: Side) -> simex_engine::Side {
    match side {
        Side::Buy => simex_engine::Side::Buy,
        Side::Sell => simex_engine::Side::Sell,
    }
}

/// A workload's limit order as a simex order (GTC or IOC, no client id, default self-trade policy):
/// the one translation the full-path adapter and the runtime benchmark share.
pub(crate) fn new_order(
    portfolio_id: u32,
    symbol_id: SymbolId,
    order_side: Side,
    tif: Tif,
    price_ticks: i64,
    qty_lots: i64,
) -> NewOrder {
    let time_in_force = match tif {
        Tif::Gtc => TimeInForce::Gtc,
        Tif::Ioc => TimeInForce::Ioc,
    };
    NewOrder::limit(portfolio_id, symbol_id, side(order_side), price_ticks, qty_lots).with_tif(time_in_force)
}

impl Adapter for SimexFull {
    fn new(workload: &Workload, setup: &Setup) -> SimexFull {
        let collect_fills = setup.collect_fills;
        let instruments = InstrumentTable::from_toml(INSTRUMENTS_TOML).expect("valid instruments");
        let symbol_id = instruments.by_symbol("BENCH").expect("BENCH").symbol_id;
        let config = EngineConfig {
            self_trade_policy: SelfTradePolicy::Allow,
            orders_max: setup.simex_orders_max,
            ..EngineConfig::default()
        };
        let ops = workload.warmup.len() + workload.measured.len();
        let mut adapter = SimexFull {
            engine: Engine::new(config, instruments),
            events: Vec::with_capacity(1024),
            symbol_id,
            now_ns: 0,
            order_ids: vec![0; workload.max_client_id as usize + 1],
            clients: if collect_fills { Vec::with_capacity(ops + 1) } else { Vec::new() },
            collect_fills,
        };
        for portfolio_id in 1..=workload.accounts {
            adapter.run(CommandBody::CreatePortfolio { portfolio_id, cash_micros: ACCOUNT_CASH_MICROS });
            assert!(matches!(adapter.events[..], [Event { body: EventBody::PortfolioCreated { .. }, .. }]));
            adapter.run(CommandBody::SetRiskLimits { portfolio_id, limits: LIMITS });
            assert!(matches!(adapter.events[..], [Event { body: EventBody::RiskLimitsSet { .. }, .. }]));
        }
        adapter
    }

    #[inline]
    fn apply<S: FillSink>(&mut self, op: &Op, fills: &mut S) -> bool {
        let body = match *op {
            Op::New { account, side: order_side, tif, price, qty, .. } => {
                CommandBody::NewOrder(new_order(account, self.symbol_id, order_side, tif, price, qty))
            }
            Op::Cancel { id, account } => {
                CommandBody::Cancel { portfolio_id: account, order_id: self.order_ids[id as usize] }
            }
            Op::Replace { id, account, price, qty } => CommandBody::Replace {
                portfolio_id: account,
                order_id: self.order_ids[id as usize],
                price_ticks: price,
                qty_lots: qty,
            },
        };
        self.run(body);
        let mut rejected = false;
        if let Op::New { id, .. } = *op {
            match self.events.first().map(|e| e.body) {
                Some(EventBody::OrderAccepted(accepted)) => {
                    self.order_ids[id as usize] = accepted.order_id;
                    if self.collect_fills {
                        let counter = (accepted.order_id & ORDER_COUNTER_MASK) as usize;
                        if self.clients.len() <= counter {
                            self.clients.resize(counter + 1, 0);
                        }
                        self.clients[counter] = id;
                    }
                }
                _ => rejected = true,
            }
        }
        for event in &self.events {
            match event.body {
                EventBody::Rejected { .. } => rejected = true,
                EventBody::Fill(fill) if S::COLLECTS => fills.fill(Trade {
                    taker: self.client(fill.taker_order_id),
                    maker: self.client(fill.maker_order_id),
                    price: fill.price_ticks,
                    qty: fill.qty_lots,
                }),
                _ => {}
            }
        }
        rejected
    }

    fn check_invariants(&self) {
        self.engine.check_invariants();
    }
}
