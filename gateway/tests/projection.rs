//! The PostgreSQL projection against a real PostgreSQL (`tools/pg-cluster`), never a mock.
//!
//! A journaled `Runtime` trades while the projector follows its journal files live (small segments,
//! so they roll over). Afterwards every table must hold exactly what an independent fold of the
//! journal's decoded events says: same rows, same values, none missing, none twice. Users and
//! portfolios come from an account store's journal beside it and are held to the same rule. The same holds
//! after PostgreSQL is stopped mid-run and restarted, after the projector process is SIGKILLed and
//! started again, and after the offsets are lost and everything is applied a second time.
//!
//! Needs `SIMEX_TEST_DATABASE_URL` (and, for the restart test, `SIMEX_TEST_PG_CTL`,
//! `SIMEX_TEST_PGDATA`, `SIMEX_TEST_PG_LOG`, `SIMEX_TEST_PG_USER`): `tools/test` provides them. Without
//! them the tests say so and pass, unless `CI=true` or `SIMEX_REQUIRE_PG=1`, when they fail.

use simex::auth::{hash_password, AccountRecord, AccountStore, NewUser, PortfolioEntry};
use simex::history::ReadModel;
use simex::projection::batch::{order_status, Batch};
use simex::projection::{self, store, ProjectionConfig, ProjectionHandle};
use simex::runtime::{Durability, JournalSettings, Runtime, RuntimeConfig, Submitter};
use simex_engine::codec::decode_event;
use simex_engine::{CommandBody, Event, EventBody, InstrumentTable, NewOrder, OrderId, Side, TimeInForce, TriggerKind};
use simex_journal::JournalReader;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod support;

use support::{base_url, block_on, connect, fresh_database};

/// The tests share one PostgreSQL server, and one of them stops it: they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SHARDS: usize = 2;
/// Small segments, so that the projector follows the journal across many segment rolls.
const SEGMENT_BYTES: u64 = 8 << 10;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simex-projection-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(url: &str) -> ProjectionConfig {
    ProjectionConfig {
        flush_interval: Duration::from_millis(50),
        batch_records_max: 500,
        poll_interval: Duration::from_millis(5),
        snapshot_interval: Duration::from_millis(1),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ProjectionConfig::new(url)
    }
}

/// Waits for a condition. The bound is only there so that a broken projector fails the test
/// instead of hanging it; nothing is asserted about how long it takes.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// The venue under a varied load
// ---------------------------------------------------------------------------------------------

struct Venue {
    runtime: Runtime,
    submitter: Submitter,
    step: u64,
    resting: Vec<OrderId>,
}

impl Venue {
    fn start(journal: &Path) -> Venue {
        let settings = JournalSettings {
            durability: Durability::None,
            segment_size_bytes: SEGMENT_BYTES,
            ..JournalSettings::new(journal)
        };
        let config = RuntimeConfig { shards: SHARDS, journal: Some(settings), ..RuntimeConfig::default() };
        let mut started = Runtime::start(config, InstrumentTable::default_table()).expect("the runtime starts");
        let mut submitter = started.submitters.pop().expect("a submitter");
        for portfolio_id in 1..=3 {
            round_trip(
                &mut submitter,
                CommandBody::CreatePortfolio { portfolio_id, cash_micros: 1_000_000_000_000_000 },
            );
        }
        Venue { runtime: started.runtime, submitter, step: 0, resting: Vec::new() }
    }

    /// Sends `commands` commands of every kind the projection cares about: resting and crossing
    /// limits, markets, IOCs, cancels, replaces, cash adjustments and rejections.
    fn trade(&mut self, commands: u64) {
        for _ in 0..commands {
            self.step += 1;
            let step = self.step;
            let symbol_id = [0u16, 1, 6, 8][(step % 4) as usize];
            let base = match symbol_id {
                6 => 6_000_000,
                8 => 108_000,
                _ => 15_000,
            };
            let lots = match symbol_id {
                6 => 100_000,
                8 => 1_000,
                _ => 1,
            } * (1 + (step % 5) as i64);
            let offset = (step * 7919 % 40) as i64 - 20;
            let portfolio_id = 1 + (step % 3) as u32;
            let command = match step % 11 {
                // Conditional orders: trailing stops (by ticks and by basis points), stops and
                // brackets, whose exits grow with their entry's fills and are linked to each other.
                10 if step % 4 == 0 => CommandBody::NewOrder(
                    NewOrder::market(2 + (step % 2) as u32, symbol_id, Side::Sell, lots).trailing_ticks(5),
                ),
                10 if step % 4 == 1 => CommandBody::NewOrder(
                    NewOrder::market(2 + (step % 2) as u32, symbol_id, Side::Buy, lots).trailing_bps(3),
                ),
                10 if step % 4 == 2 => CommandBody::NewOrder(
                    NewOrder::market(2 + (step % 2) as u32, symbol_id, Side::Sell, lots)
                        .triggered_at(TriggerKind::Stop, base + 10),
                ),
                10 => CommandBody::NewBracket {
                    entry: NewOrder::limit(2 + (step % 2) as u32, symbol_id, Side::Buy, base + 45, lots * 3),
                    take_profit_price_ticks: base + 30,
                    stop_loss_trigger_ticks: base + 5,
                    stop_loss_limit_ticks: 0,
                },
                0 if !self.resting.is_empty() => {
                    let order_id = self.resting.swap_remove((step as usize / 11) % self.resting.len());
                    CommandBody::Cancel { portfolio_id: 1, order_id }
                }
                1 if !self.resting.is_empty() => {
                    let order_id = self.resting[(step as usize) % self.resting.len()];
                    CommandBody::Replace { portfolio_id: 1, order_id, price_ticks: base + 25, qty_lots: lots }
                }
                2 => CommandBody::AdjustCash { portfolio_id, delta_micros: 1_000_000 + step as i64 },
                3 => CommandBody::NewOrder(NewOrder::market(portfolio_id, symbol_id, Side::Buy, lots)),
                4 => CommandBody::NewOrder(NewOrder::limit(portfolio_id, symbol_id, Side::Sell, 0, lots)),
                5 => CommandBody::NewOrder(
                    NewOrder::limit(portfolio_id, symbol_id, Side::Buy, base + offset, lots).with_tif(TimeInForce::Ioc),
                ),
                6..=8 => {
                    CommandBody::NewOrder(NewOrder::limit(1, symbol_id, Side::Sell, base + 21 + offset.abs(), lots))
                }
                _ => CommandBody::NewOrder(NewOrder::limit(
                    2 + (step % 2) as u32,
                    symbol_id,
                    Side::Buy,
                    base + offset,
                    lots,
                )),
            };
            let portfolio_of_command = match command {
                CommandBody::NewOrder(order) => order.portfolio_id,
                _ => 0,
            };
            for order_id in round_trip(&mut self.submitter, command) {
                // Only portfolio 1's orders are replaced and cancelled (it owns them).
                if portfolio_of_command == 1 && self.resting.len() < 200 {
                    self.resting.push(order_id);
                }
            }
        }
    }

    fn stop(self) {
        drop(self.submitter);
        self.runtime.shutdown();
    }
}

/// Submits one command, waits for it, returns the ids of the orders it accepted.
fn round_trip(submitter: &mut Submitter, command: CommandBody) -> Vec<OrderId> {
    submitter
        .execute(command)
        .into_iter()
        .filter_map(|event| match event.body {
            EventBody::OrderAccepted(order) => Some(order.order_id),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the database must hold: an independent fold of the journal
// ---------------------------------------------------------------------------------------------

fn journal_events(journal: &Path) -> Vec<(u32, Event)> {
    let mut events = Vec::new();
    for shard in 0..SHARDS as u32 {
        let mut reader = JournalReader::open(journal, shard, None).expect("the journal opens");
        while let Some(record) = reader.next_record().expect("the journal reads") {
            let event = decode_event(record.record_type, record.seq, record.timestamp_ns, record.payload).unwrap();
            events.push((shard, event));
        }
    }
    events
}

fn segment_count(journal: &Path, shard: u32) -> usize {
    let dir = simex_journal::shard_dir(journal, shard);
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "seg")).count()
}

/// Each table as sorted text lines, one per row.
type Tables = BTreeMap<&'static str, Vec<String>>;

#[derive(Default)]
struct ExpectedOrder {
    portfolio_id: u32,
    symbol_id: u16,
    side: String,
    kind: String,
    tif: String,
    price_ticks: i64,
    qty_lots: i64,
    open_lots: i64,
    filled_lots: i64,
    cancel_reason: Option<String>,
    client_order_id: Option<String>,
    expire_at_ns: i64,
    accepted_at_ns: i64,
    updated_at_ns: i64,
    shard: u32,
    accepted_seq: u64,
    last_seq: u64,
    waiting: bool,
    parent_order_id: u64,
}

fn name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value).unwrap().as_str().unwrap().to_string()
}

/// The expected rows, folded event by event in journal order.
fn expected_tables(events: &[(u32, Event)]) -> Tables {
    let mut portfolios = Vec::new();
    let mut cash = Vec::new();
    let mut fills = Vec::new();
    let mut rejections = Vec::new();
    let mut replacements = Vec::new();
    let mut orders: BTreeMap<u64, ExpectedOrder> = BTreeMap::new();
    // (portfolio, symbol) -> [net, bought, sold, bought notional, sold notional, fees, at, last seq]
    let mut positions: BTreeMap<(u32, u16), [i64; 8]> = BTreeMap::new();
    let mut offsets: BTreeMap<u32, u64> = BTreeMap::new();
    // The conditional columns that follow prices (trailing stops) are the read model's.
    let mut model = ReadModel::default();
    for &(shard, event) in events {
        model.apply(shard as u16, &event);
        let (seq, at) = (event.seq, event.timestamp_ns);
        offsets.insert(shard, seq);
        match event.body {
            EventBody::PortfolioCreated { portfolio_id, cash_micros } => {
                portfolios.push(format!("{portfolio_id} {cash_micros} {at} {shard} {seq}"))
            }
            EventBody::CashAdjusted { portfolio_id, delta_micros } => {
                cash.push(format!("{shard} {seq} {portfolio_id} {delta_micros} {at}"))
            }
            EventBody::Rejected { portfolio_id, order_id, client_order_id, reason } => rejections.push(format!(
                "{shard} {seq} {portfolio_id} {order_id} {:?} {} {at}",
                (!client_order_id.is_none()).then(|| client_order_id.as_text().to_string()),
                name(reason)
            )),
            EventBody::OrderAccepted(o) if orders.contains_key(&o.order_id) => {
                // A conditional order that fired: the same row becomes a book order.
                let order = orders.get_mut(&o.order_id).unwrap();
                order.kind = name(o.kind);
                order.tif = name(o.time_in_force);
                order.price_ticks = o.price_ticks;
                order.qty_lots = o.qty_lots;
                order.open_lots = o.qty_lots;
                order.waiting = false;
                order.updated_at_ns = at;
                order.last_seq = seq;
            }
            EventBody::OrderAccepted(o) => {
                orders.insert(
                    o.order_id,
                    ExpectedOrder {
                        portfolio_id: o.portfolio_id,
                        symbol_id: o.symbol_id,
                        side: name(o.side),
                        kind: name(o.kind),
                        tif: name(o.time_in_force),
                        price_ticks: o.price_ticks,
                        qty_lots: o.qty_lots,
                        open_lots: o.qty_lots,
                        filled_lots: 0,
                        cancel_reason: None,
                        client_order_id: (!o.client_order_id.is_none())
                            .then(|| o.client_order_id.as_text().to_string()),
                        expire_at_ns: o.expire_at_ns,
                        accepted_at_ns: at,
                        updated_at_ns: at,
                        shard,
                        accepted_seq: seq,
                        last_seq: seq,
                        waiting: false,
                        parent_order_id: 0,
                    },
                );
            }
            EventBody::Fill(f) => {
                fills.push(format!(
                    "{shard} {seq} {} {} {} {} {} {} {} {} {} {} {} {} {at}",
                    f.trade_id,
                    f.symbol_id,
                    f.maker_order_id,
                    f.maker_portfolio_id,
                    f.taker_order_id,
                    f.taker_portfolio_id,
                    name(f.taker_side),
                    f.price_ticks,
                    f.qty_lots,
                    f.notional_micros,
                    f.maker_fee_micros,
                    f.taker_fee_micros
                ));
                // The simulated market (order 0, no portfolio) has no order and no position.
                for order_id in [f.maker_order_id, f.taker_order_id].into_iter().filter(|&id| id != 0) {
                    let order = orders.get_mut(&order_id).expect("a fill of a known order");
                    order.open_lots -= f.qty_lots;
                    order.filled_lots += f.qty_lots;
                    order.updated_at_ns = at;
                    order.last_seq = seq;
                    // A bracket entry's fill grows its waiting exits.
                    for exit in orders.values_mut().filter(|e| e.waiting && e.parent_order_id == order_id) {
                        exit.qty_lots += f.qty_lots;
                        exit.open_lots += f.qty_lots;
                    }
                }
                let (buyer, seller) = match f.taker_side {
                    Side::Buy => (f.taker_portfolio_id, f.maker_portfolio_id),
                    Side::Sell => (f.maker_portfolio_id, f.taker_portfolio_id),
                };
                let mut touch = |portfolio: u32, change: &dyn Fn(&mut [i64; 8])| {
                    if portfolio == simex_engine::NO_PORTFOLIO {
                        return;
                    }
                    let position = positions.entry((portfolio, f.symbol_id)).or_default();
                    change(position);
                    position[6] = at;
                    position[7] = seq as i64;
                };
                touch(buyer, &|p| {
                    p[0] += f.qty_lots;
                    p[1] += f.qty_lots;
                    p[3] += f.notional_micros;
                });
                touch(seller, &|p| {
                    p[0] -= f.qty_lots;
                    p[2] += f.qty_lots;
                    p[4] += f.notional_micros;
                });
                touch(f.maker_portfolio_id, &|p| p[5] += f.maker_fee_micros);
                touch(f.taker_portfolio_id, &|p| p[5] += f.taker_fee_micros);
            }
            EventBody::ConditionalAccepted(c) => {
                orders.insert(
                    c.order_id,
                    ExpectedOrder {
                        portfolio_id: c.portfolio_id,
                        symbol_id: c.symbol_id,
                        side: name(c.side),
                        kind: name(c.kind),
                        tif: name(c.time_in_force),
                        price_ticks: c.price_ticks,
                        qty_lots: c.qty_lots,
                        open_lots: c.qty_lots,
                        filled_lots: 0,
                        cancel_reason: None,
                        client_order_id: (!c.client_order_id.is_none())
                            .then(|| c.client_order_id.as_text().to_string()),
                        expire_at_ns: c.expire_at_ns,
                        accepted_at_ns: at,
                        updated_at_ns: at,
                        shard,
                        accepted_seq: seq,
                        last_seq: seq,
                        waiting: true,
                        parent_order_id: c.parent_order_id,
                    },
                );
                if let Some(peer) = orders.get_mut(&c.oco_order_id) {
                    peer.last_seq = seq;
                }
            }
            EventBody::OrderTriggered { order_id, qty_lots, .. } => {
                let order = orders.get_mut(&order_id).expect("a trigger of a known order");
                order.qty_lots = qty_lots;
                order.open_lots = qty_lots;
                order.updated_at_ns = at;
                order.last_seq = seq;
            }
            EventBody::OrderCancelled { order_id, reason, .. } => {
                let order = orders.get_mut(&order_id).expect("a cancel of a known order");
                order.open_lots = 0;
                order.cancel_reason = Some(name(reason));
                order.updated_at_ns = at;
                order.last_seq = seq;
            }
            EventBody::OrderReplaced { order_id, price_ticks, qty_lots, .. } => {
                replacements.push(format!("{shard} {seq} {order_id} {price_ticks} {qty_lots} {at}"));
                let order = orders.get_mut(&order_id).expect("a replace of a known order");
                order.price_ticks = price_ticks;
                order.open_lots = qty_lots;
                order.updated_at_ns = at;
                order.last_seq = seq;
            }
            EventBody::RiskLimitsSet { .. }
            | EventBody::ReferencePriceSet { .. }
            | EventBody::HaltedSet { .. }
            | EventBody::ReferenceQuoteSet { .. }
            | EventBody::ReferenceTradePrinted { .. } => {}
        }
    }
    let orders = orders
        .iter()
        .map(|(id, o)| {
            let status = order_status(o.waiting, o.cancel_reason.is_some(), o.open_lots, o.filled_lots);
            let r = model.order(*id).expect("the read model has every order");
            let triggered_at = r.triggered.map(|t| t.0.to_string());
            let triggered_price = r.triggered.map(|t| t.1.to_string());
            format!(
                "{id} {} {} {} {} {} {} {} {} {} {status} {:?} {:?} {} {} {} {} {} {} {} {} {} {} {} {} {} {:?} {:?}",
                o.portfolio_id,
                o.symbol_id,
                o.side,
                o.kind,
                o.tif,
                o.price_ticks,
                o.qty_lots,
                o.open_lots,
                o.filled_lots,
                o.cancel_reason,
                o.client_order_id,
                o.expire_at_ns,
                o.accepted_at_ns,
                o.updated_at_ns,
                o.shard,
                o.accepted_seq,
                o.last_seq,
                name(r.trigger),
                r.trigger_price_ticks,
                r.trail_ticks,
                r.trail_bps,
                r.trail_best_ticks,
                o.parent_order_id,
                r.oco_order_id,
                triggered_at,
                triggered_price
            )
        })
        .collect();
    let positions = positions
        .iter()
        .map(|((portfolio, symbol), p)| {
            format!("{portfolio} {symbol} {} {} {} {} {} {} {} {}", p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])
        })
        .collect();
    let offsets = offsets.iter().map(|(shard, seq)| format!("{shard} {seq}")).collect();
    let mut tables = Tables::new();
    tables.insert("portfolios", portfolios);
    tables.insert("cash_adjustments", cash);
    tables.insert("fills", fills);
    tables.insert("rejections", rejections);
    tables.insert("order_replacements", replacements);
    tables.insert("orders", orders);
    tables.insert("positions", positions);
    tables.insert("projection_offsets", offsets);
    for rows in tables.values_mut() {
        rows.sort();
    }
    tables
}

/// The same tables as the database has them.
fn database_tables(url: &str) -> Tables {
    block_on(async {
        let client = connect(url).await;
        let mut tables = Tables::new();
        let text = |row: &tokio_postgres::Row, i: usize| -> String {
            let column = &row.columns()[i];
            match *column.type_() {
                tokio_postgres::types::Type::INT8 => row.get::<_, i64>(i).to_string(),
                tokio_postgres::types::Type::INT4 => row.get::<_, i32>(i).to_string(),
                _ => row.get::<_, String>(i),
            }
        };
        let optional = |row: &tokio_postgres::Row, i: usize| format!("{:?}", row.get::<_, Option<String>>(i));
        let queries: [(&'static str, &str, &[usize]); 8] = [
            ("order_replacements", "SELECT * FROM order_replacements", &[]),
            ("portfolios", "SELECT portfolio_id, starting_cash_micros, created_at_ns, shard, seq FROM portfolios", &[]),
            (
                "cash_adjustments",
                "SELECT shard, seq, portfolio_id, delta_micros, timestamp_ns FROM cash_adjustments",
                &[],
            ),
            ("fills", "SELECT * FROM fills", &[]),
            ("rejections", "SELECT * FROM rejections", &[4]),
            (
                "orders",
                "SELECT order_id, portfolio_id, symbol_id, side, kind, time_in_force, price_ticks, qty_lots,
                        open_lots, filled_lots, status, cancel_reason, client_order_id, expire_at_ns,
                        accepted_at_ns, updated_at_ns, shard, accepted_seq, last_seq, trigger_kind,
                        trigger_price_ticks, trail_ticks, trail_bps, trail_best_ticks, parent_order_id,
                        oco_order_id, triggered_at_ns::text, triggered_price_ticks::text
                 FROM orders",
                &[11, 12, 26, 27],
            ),
            ("positions", "SELECT * FROM positions", &[]),
            ("projection_offsets", "SELECT shard, last_seq FROM projection_offsets", &[]),
        ];
        for (table, query, optional_columns) in queries {
            let rows = client.query(query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e}"));
            let mut lines: Vec<String> = rows
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| if optional_columns.contains(&i) { optional(row, i) } else { text(row, i) })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            lines.sort();
            tables.insert(table, lines);
        }
        tables
    })
}

/// Asserts that the database holds exactly the journal's events.
fn assert_database_matches_journal(url: &str, journal: &Path) -> Tables {
    let expected = expected_tables(&journal_events(journal));
    let found = database_tables(url);
    for (table, rows) in &expected {
        let found_rows = &found[table];
        let missing: Vec<_> = rows.iter().filter(|r| !found_rows.contains(r)).take(5).collect();
        let extra: Vec<_> = found_rows.iter().filter(|r| !rows.contains(r)).take(5).collect();
        assert!(
            rows == found_rows,
            "{table}: expected {} rows, found {}; missing {missing:?}; unexpected {extra:?}",
            rows.len(),
            found_rows.len()
        );
    }
    expected
}

// ---------------------------------------------------------------------------------------------
// Accounts: users and portfolios from an account store's journal
// ---------------------------------------------------------------------------------------------

/// Registers two users (with passwords and keys), gives each a portfolio and resets one.
fn account_activity(accounts: &AccountStore, round: u32) {
    for n in 0..2u32 {
        let registered = accounts
            .register(
                NewUser {
                    email: format!("trader{round}-{n}@example.com"),
                    name: format!("trader {round}-{n}"),
                    display_name: format!("Trader {round}/{n}"),
                    username: Some(format!("trader{round}{n}")),
                    password_phc: Some(hash_password("correct horse").unwrap()),
                },
                "st_",
            )
            .unwrap();
        let portfolio_id = 100 + round * 10 + n;
        accounts
            .add_portfolio(PortfolioEntry {
                user_id: registered.user_id,
                portfolio_id,
                engine_portfolio_id: portfolio_id,
                name: format!("book {n}"),
                starting_balance_micros: 1_000_000 * i64::from(portfolio_id),
            })
            .unwrap();
    }
    accounts.reset_portfolio(100 + round * 10, 900 + round).unwrap();
}

/// What `users`, `user_portfolios` and `accounts_offset` must hold: a fold of the accounts journal.
fn expected_accounts(accounts_root: &Path) -> Tables {
    let mut users = Vec::new();
    // portfolio id -> (owner, name, starting balance, engine portfolio, created, updated, seq)
    type PortfolioRow = (u64, String, i64, u32, i64, i64, u64);
    let mut portfolios: BTreeMap<u32, PortfolioRow> = BTreeMap::new();
    let mut last = 0;
    let mut reader = JournalReader::open(accounts_root, 0, None).expect("the accounts journal opens");
    while let Some(record) = reader.next_record().expect("the accounts journal reads") {
        let (seq, at_ns) = (record.seq, record.timestamp_ns);
        last = seq;
        match serde_json::from_slice::<AccountRecord>(record.payload).unwrap() {
            AccountRecord::User { user_id, email, name, display_name, .. } => {
                users.push(format!("{user_id} {email} {name} {display_name} {at_ns} {seq}"))
            }
            AccountRecord::ApiKey { .. } => {}
            AccountRecord::Portfolio { user_id, portfolio_id, engine_portfolio_id, name, starting_balance_micros } => {
                portfolios.insert(
                    portfolio_id,
                    (user_id, name, starting_balance_micros, engine_portfolio_id, at_ns, at_ns, seq),
                );
            }
            AccountRecord::PortfolioReset { portfolio_id, engine_portfolio_id } => {
                let portfolio = portfolios.get_mut(&portfolio_id).unwrap();
                (portfolio.3, portfolio.5, portfolio.6) = (engine_portfolio_id, at_ns, seq);
            }
        }
    }
    let portfolios = portfolios
        .iter()
        .map(|(id, p)| format!("{id} {} {} {} {} {} {} {}", p.0, p.1, p.2, p.3, p.4, p.5, p.6))
        .collect();
    let mut tables = Tables::new();
    tables.insert("users", users);
    tables.insert("user_portfolios", portfolios);
    tables.insert("accounts_offset", vec![last.to_string()]);
    for rows in tables.values_mut() {
        rows.sort();
    }
    tables
}

/// Asserts that the database's account tables hold exactly the accounts journal, and no secret.
fn assert_accounts_match_journal(url: &str, accounts_root: &Path) {
    let expected = expected_accounts(accounts_root);
    let found = block_on(async {
        let client = connect(url).await;
        let queries = [
            ("users", "SELECT user_id::TEXT || ' ' || email || ' ' || name || ' ' || display_name || ' ' || created_at_ns || ' ' || seq FROM users"),
            (
                "user_portfolios",
                "SELECT portfolio_id || ' ' || user_id || ' ' || name || ' ' || starting_balance_micros || ' ' ||
                        engine_portfolio_id || ' ' || created_at_ns || ' ' || updated_at_ns || ' ' || seq
                 FROM user_portfolios",
            ),
            ("accounts_offset", "SELECT last_seq::TEXT FROM accounts_offset"),
        ];
        let mut tables = Tables::new();
        for (table, query) in queries {
            let rows = client.query(query, &[]).await.unwrap_or_else(|e| panic!("{query}: {e}"));
            let mut lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            lines.sort();
            tables.insert(table, lines);
        }
        // No secret in any column of any table: no password hash, no key hash.
        let dump: Vec<String> = client
            .query(
                "SELECT row_to_json(u)::TEXT FROM users u UNION ALL SELECT row_to_json(p)::TEXT FROM user_portfolios p",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(dump.iter().all(|row| !row.contains("argon2") && !row.contains("sha256")), "{dump:?}");
        tables
    });
    assert_eq!(expected, found);
    assert!(expected["users"].len() >= 2 && !expected["user_portfolios"].is_empty());
}

fn accounts_committed(handle: &ProjectionHandle, accounts_root: &Path) -> bool {
    let last = expected_accounts(accounts_root)["accounts_offset"][0].parse::<u64>().unwrap();
    handle.lag().accounts.is_some_and(|a| a.committed_seq == last)
}

fn config_with_accounts(url: &str, accounts_root: &Path) -> ProjectionConfig {
    ProjectionConfig { accounts_root: Some(accounts_root.to_path_buf()), ..config(url) }
}

fn committed_everything(handle: &ProjectionHandle, journal: &Path) -> bool {
    let events = journal_events(journal);
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for (shard, event) in &events {
        last.insert(*shard, event.seq);
    }
    let lag = handle.lag();
    last.iter().all(|(shard, seq)| lag.shards.iter().any(|s| s.shard == *shard && s.committed_seq == *seq))
}

fn offsets_in_database(url: &str) -> u64 {
    block_on(async {
        let client = connect(url).await;
        let row = client.query_one("SELECT COALESCE(SUM(last_seq), 0)::INT8 FROM projection_offsets", &[]).await;
        row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0)
    })
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn projects_a_live_journal_exactly_and_reapplying_changes_nothing() {
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let url = fresh_database(&base, "live");
    let journal = temp_dir("live");
    let accounts_root = temp_dir("live-accounts");
    let accounts = AccountStore::open(&accounts_root, Durability::None).unwrap();
    let mut venue = Venue::start(&journal);
    let handle = projection::spawn(config_with_accounts(&url, &accounts_root), &journal).unwrap();
    account_activity(&accounts, 0);
    venue.trade(1_500);
    account_activity(&accounts, 1);
    venue.stop();
    wait_for("the projection to commit the whole journal", || committed_everything(&handle, &journal));
    wait_for("the projection to commit the accounts", || accounts_committed(&handle, &accounts_root));
    let lag = handle.lag();
    assert_eq!(lag.records_behind(), 0, "{lag:?}");
    assert!(lag.shards.iter().all(|s| s.blocked.is_none()), "{lag:?}");
    assert!(lag.flushes > 1, "the projection flushed in several batches: {lag:?}");
    handle.stop();
    handle.join();
    for shard in 0..SHARDS as u32 {
        assert!(segment_count(&journal, shard) > 2, "shard {shard}'s journal rolled over several segments");
    }
    let expected = assert_database_matches_journal(&url, &journal);
    let sizes: Vec<_> = expected.iter().map(|(table, rows)| format!("{table}={}", rows.len())).collect();
    println!("rows: {}", sizes.join(" "));
    assert!(expected["fills"].len() > 50, "the load traded: {} fills", expected["fills"].len());
    assert!(!expected["rejections"].is_empty() && !expected["cash_adjustments"].is_empty());
    assert!(expected["orders"].iter().any(|o| o.contains(" cancelled ")));
    assert!(expected["orders"].iter().any(|o| o.contains(" filled ")));
    // Conditional orders: some wait, trailing stops and bracket exits, some fired (the row ends
    // with the trigger's time and price).
    let orders = &expected["orders"];
    for what in [" waiting_trigger ", " trailing_stop ", " take_profit "] {
        assert!(orders.iter().any(|o| o.contains(what)), "an order row with {what:?}");
    }
    assert!(orders.iter().any(|o| o.ends_with("\")") && !o.contains(" none ")), "a conditional order fired");

    // The last snapshot of positions is a copy of positions.
    let (snapshot, positions) = block_on(async {
        let client = connect(&url).await;
        let snapshot = client
            .query(
                "SELECT portfolio_id, symbol_id, net_lots, fees_micros FROM position_snapshots
                 WHERE snapshot_at_ns = (SELECT MAX(snapshot_at_ns) FROM position_snapshots) ORDER BY 1, 2",
                &[],
            )
            .await
            .unwrap();
        let positions = client
            .query("SELECT portfolio_id, symbol_id, net_lots, fees_micros FROM positions ORDER BY 1, 2", &[])
            .await;
        let rows = |rows: Vec<tokio_postgres::Row>| -> Vec<(i64, i32, i64, i64)> {
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
        };
        (rows(snapshot), rows(positions.unwrap()))
    });
    assert!(!positions.is_empty());
    assert_eq!(snapshot, positions);

    // Users and portfolios: exactly the accounts journal, without secrets.
    assert_accounts_match_journal(&url, &accounts_root);

    // Lose the offsets and project everything again: the rows' keys and sequence guards make the
    // second application change nothing.
    block_on(async {
        let client = connect(&url).await;
        client.batch_execute("DELETE FROM projection_offsets; DELETE FROM accounts_offset").await.unwrap()
    });
    let handle = projection::spawn(config_with_accounts(&url, &accounts_root), &journal).unwrap();
    wait_for("the second projection to catch up", || committed_everything(&handle, &journal));
    wait_for("the second projection to commit the accounts", || accounts_committed(&handle, &accounts_root));
    handle.stop();
    handle.join();
    assert_database_matches_journal(&url, &journal);
    assert_accounts_match_journal(&url, &accounts_root);
    let _ = std::fs::remove_dir_all(&journal);
    let _ = std::fs::remove_dir_all(&accounts_root);
}

#[test]
fn a_batch_written_twice_is_refused_and_with_offsets_lost_changes_nothing() {
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let url = fresh_database(&base, "twice");
    let journal = temp_dir("twice");
    let mut venue = Venue::start(&journal);
    venue.trade(300);
    venue.stop();
    let events = journal_events(&journal);
    let mut batch = Batch::default();
    for (shard, event) in &events {
        batch.add(*shard, 7, event).unwrap();
    }
    block_on(async {
        let mut client = store::connect(&url).await.unwrap();
        store::write_batch(&mut client, &batch, None).await.unwrap();
        let again = store::write_batch(&mut client, &batch, None).await;
        assert!(matches!(again, Err(store::StoreError::Fenced { .. })), "{again:?}");
        client.batch_execute("DELETE FROM projection_offsets").await.unwrap();
        store::write_batch(&mut client, &batch, None).await.unwrap();
    });
    assert_database_matches_journal(&url, &journal);

    // In batches of a few records (so conditional orders are accepted, grow, trail, fire and
    // become book orders across batches, a batch ending between a trigger and its acceptance),
    // each written twice with the offsets lost in between: still exactly the journal.
    let url = fresh_database(&base, "twice_small");
    block_on(async {
        let mut client = store::connect(&url).await.unwrap();
        for (index, chunk) in events.chunks(3).enumerate() {
            let mut batch = Batch::default();
            for (shard, event) in chunk {
                batch.add(*shard, 7, event).unwrap();
            }
            store::write_batch(&mut client, &batch, None).await.unwrap();
            // The offsets of the batch's shards go back to where they stood before it.
            for (&shard, range) in &batch.shards {
                let before = range.first_seq as i64 - 1;
                client
                    .execute(
                        "UPDATE projection_offsets SET last_seq = $2 WHERE shard = $1",
                        &[&(shard as i32), &before],
                    )
                    .await
                    .unwrap();
            }
            store::write_batch(&mut client, &batch, None).await.unwrap_or_else(|e| panic!("batch {index}: {e}"));
        }
    });
    assert_database_matches_journal(&url, &journal);
    let _ = std::fs::remove_dir_all(&journal);
}

struct Pg {
    pg_ctl: String,
    pgdata: String,
    log: String,
    user: String,
}

impl Pg {
    fn from_env() -> Pg {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (tools/pg-cluster)"));
        Pg {
            pg_ctl: var("SIMEX_TEST_PG_CTL"),
            pgdata: var("SIMEX_TEST_PGDATA"),
            log: var("SIMEX_TEST_PG_LOG"),
            user: std::env::var("SIMEX_TEST_PG_USER").unwrap_or_default(),
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let mut command = if self.user.is_empty() {
            Command::new(&self.pg_ctl)
        } else {
            let mut command = Command::new("runuser");
            command.args(["-u", &self.user, "--", &self.pg_ctl]);
            command
        };
        command.args(["-D", &self.pgdata, "-l", &self.log, "-w"]).args(args);
        let status = command.status().expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }
}

/// Restarts PostgreSQL if a test stops in the middle, so that the others find it running.
struct RestartOnDrop<'a>(&'a Pg, bool);

impl Drop for RestartOnDrop<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.pg_ctl(&["start"]);
        }
    }
}

#[test]
fn postgres_stopped_mid_run_ends_with_exactly_the_journal() {
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pg = Pg::from_env();
    let url = fresh_database(&base, "outage");
    let journal = temp_dir("outage");
    let accounts_root = temp_dir("outage-accounts");
    let accounts = AccountStore::open(&accounts_root, Durability::None).unwrap();
    let mut venue = Venue::start(&journal);
    let handle = projection::spawn(config_with_accounts(&url, &accounts_root), &journal).unwrap();
    account_activity(&accounts, 0);
    venue.trade(400);
    wait_for("a first commit", || handle.lag().flushes > 0);

    pg.pg_ctl(&["-m", "fast", "stop"]);
    let mut guard = RestartOnDrop(&pg, true);
    // Trading and registrations go on while the database is down; the projection retries and
    // falls behind.
    venue.trade(600);
    account_activity(&accounts, 1);
    wait_for("the projection to notice", || handle.lag().failures > 0 && !handle.lag().connected);
    let behind = handle.lag();
    assert!(behind.last_error.is_some());
    // The lag keeps counting while the database is away.
    venue.trade(200);
    wait_for("the lag to grow", || handle.lag().records_behind() > behind.records_behind());

    pg.pg_ctl(&["start"]);
    guard.1 = false;
    venue.trade(300);
    account_activity(&accounts, 2);
    venue.stop();
    wait_for("the projection to catch up", || committed_everything(&handle, &journal));
    wait_for("the projection to commit the accounts", || accounts_committed(&handle, &accounts_root));
    assert!(handle.lag().connected);
    handle.stop();
    handle.join();
    assert_database_matches_journal(&url, &journal);
    assert_accounts_match_journal(&url, &accounts_root);
    let _ = std::fs::remove_dir_all(&journal);
    let _ = std::fs::remove_dir_all(&accounts_root);
}

/// Runs a projector until it is killed, when started by `a_killed_projector_resumes_exactly`.
#[test]
fn projector_child_process() {
    let (Ok(root), Ok(url)) =
        (std::env::var("SIMEX_PROJECTION_CHILD_JOURNAL"), std::env::var("SIMEX_PROJECTION_CHILD_URL"))
    else {
        return;
    };
    let _handle = projection::spawn(config(&url), root).unwrap();
    // The parent kills this process; the bound only keeps an orphan from living forever.
    std::thread::sleep(Duration::from_secs(300));
}

#[test]
fn a_killed_projector_resumes_exactly() {
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let url = fresh_database(&base, "killed");
    let journal = temp_dir("killed");
    let mut venue = Venue::start(&journal);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["projector_child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("SIMEX_PROJECTION_CHILD_JOURNAL", &journal)
        .env("SIMEX_PROJECTION_CHILD_URL", &url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the projector process starts");
    venue.trade(500);
    wait_for("the projector process to commit", || offsets_in_database(&url) > 0);
    venue.trade(300);
    child.kill().expect("SIGKILL"); // mid-run, wherever it is
    child.wait().unwrap();
    let at_kill = offsets_in_database(&url);
    venue.trade(300);
    venue.stop();
    let handle = projection::spawn(config(&url), &journal).unwrap();
    wait_for("the restarted projector to catch up", || committed_everything(&handle, &journal));
    handle.stop();
    handle.join();
    assert!(at_kill > 0);
    assert_database_matches_journal(&url, &journal);
    let _ = std::fs::remove_dir_all(&journal);
}

// ---------------------------------------------------------------------------------------------
// Conditional orders cut at every batch boundary
// ---------------------------------------------------------------------------------------------

/// A bracket whose entry fills in two parts, a trailing stop that fires (a later price must not
/// move it) and one that keeps trailing, an exit that fires and fills while its peer is
/// cancelled `linked`, an exit still waiting after its entry's fills: the orders' rows are the read model's records whatever two batches the
/// events are cut into, each batch written twice.
#[test]
fn conditional_orders_cut_at_every_batch_boundary_fold_as_the_read_model() {
    use simex_engine::{
        AcceptedConditional, AcceptedOrder, CancelReason, ClientOrderId, Fill, OrderKind, SelfTradePolicy,
    };
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let conditional = |order_id, trigger, trigger_price_ticks| AcceptedConditional {
        order_id,
        portfolio_id: 1,
        symbol_id: 0,
        side: Side::Sell,
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
    };
    let accepted = |order_id, kind, side, price_ticks, qty_lots| {
        EventBody::OrderAccepted(AcceptedOrder {
            order_id,
            portfolio_id: 1,
            symbol_id: 0,
            side,
            kind,
            price_ticks,
            qty_lots,
            time_in_force: TimeInForce::Gtc,
            expire_at_ns: i64::MAX,
            client_order_id: ClientOrderId::NONE,
            post_only: false,
            self_trade_policy: SelfTradePolicy::Default,
            reserved_cash_micros: 0,
            reserved_lots: 0,
        })
    };
    // `order_id` of portfolio 1 trades with the simulated market.
    let fill = |trade_id, order_id, side, price_ticks, qty_lots| {
        EventBody::Fill(Fill {
            trade_id,
            symbol_id: 0,
            maker_order_id: order_id,
            maker_portfolio_id: 1,
            taker_order_id: 0,
            taker_portfolio_id: simex_engine::NO_PORTFOLIO,
            taker_side: side,
            price_ticks,
            qty_lots,
            notional_micros: price_ticks * qty_lots,
            maker_fee_micros: 0,
            taker_fee_micros: 0,
        })
    };
    let triggered = |order_id, price_ticks, qty_lots| EventBody::OrderTriggered {
        order_id,
        portfolio_id: 1,
        symbol_id: 0,
        price_ticks,
        qty_lots,
    };
    let exit = |order_id, trigger, price, oco_order_id| AcceptedConditional {
        qty_lots: 0,
        parent_order_id: 1,
        oco_order_id,
        kind: OrderKind::Limit,
        price_ticks: price,
        time_in_force: TimeInForce::Gtc,
        ..conditional(order_id, trigger, price)
    };
    let bodies = [
        EventBody::PortfolioCreated { portfolio_id: 1, cash_micros: 1_000_000_000 },
        accepted(1, OrderKind::Limit, Side::Buy, 10_200, 4),
        EventBody::ConditionalAccepted(exit(2, TriggerKind::TakeProfit, 10_400, 0)),
        EventBody::ConditionalAccepted(exit(3, TriggerKind::Stop, 9_800, 2)),
        EventBody::ConditionalAccepted(AcceptedConditional {
            trail_bps: 150,
            ..conditional(4, TriggerKind::TrailingStop, 10_000)
        }),
        fill(1, 1, Side::Sell, 10_200, 1),
        EventBody::ReferencePriceSet { symbol_id: 0, price_ticks: 10_301 },
        EventBody::ConditionalAccepted(AcceptedConditional {
            trail_ticks: 50,
            ..conditional(5, TriggerKind::TrailingStop, 10_301)
        }),
        triggered(4, 10_140, 2),
        accepted(4, OrderKind::Market, Side::Sell, 9_000, 2),
        EventBody::ReferenceTradePrinted { symbol_id: 0, price_ticks: 10_500, qty_lots: 1 },
        fill(2, 1, Side::Sell, 10_200, 3),
        triggered(2, 10_400, 4),
        accepted(2, OrderKind::Limit, Side::Sell, 10_400, 4),
        EventBody::OrderCancelled {
            order_id: 3,
            portfolio_id: 1,
            symbol_id: 0,
            qty_lots: 4,
            reason: CancelReason::Linked,
        },
        fill(3, 2, Side::Buy, 10_400, 4),
        EventBody::ReferenceTradePrinted { symbol_id: 0, price_ticks: 10_600, qty_lots: 1 },
        // A second bracket whose exit still waits at the end, grown by two fills.
        accepted(6, OrderKind::Limit, Side::Buy, 10_200, 3),
        EventBody::ConditionalAccepted(AcceptedConditional {
            parent_order_id: 6,
            ..exit(7, TriggerKind::Stop, 9_700, 0)
        }),
        fill(4, 6, Side::Sell, 10_200, 1),
        fill(5, 6, Side::Sell, 10_200, 1),
    ];
    let events: Vec<Event> = bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| Event { seq: index as u64 + 1, timestamp_ns: 1_000 + index as i64, body })
        .collect();
    let mut model = ReadModel::default();
    for event in &events {
        model.apply(0, event);
    }
    let expected: Vec<String> = (1..=7)
        .map(|id| {
            let r = model.order(id).unwrap();
            format!(
                "{id} {} {} {} {} {} {} {} {} {:?} {}",
                r.qty_lots,
                r.open_lots,
                r.filled_lots,
                r.state.as_str(),
                r.trigger_price_ticks,
                r.trail_best_ticks,
                r.oco_order_id,
                r.price_ticks,
                r.triggered,
                r.updated_ns
            )
        })
        .collect();
    assert_eq!(model.order(2).unwrap().state.as_str(), "filled");
    assert_eq!(model.order(5).unwrap().trail_best_ticks, 10_600);
    assert_eq!((model.order(7).unwrap().state.as_str(), model.order(7).unwrap().qty_lots), ("waiting_trigger", 2));

    let url = fresh_database(&base, "cut");
    block_on(async {
        let mut client = store::connect(&url).await.unwrap();
        for cut in 1..events.len() {
            client.batch_execute("TRUNCATE orders, fills, portfolios, positions, projection_offsets").await.unwrap();
            for part in [&events[..cut], &events[cut..]] {
                let mut batch = Batch::default();
                for event in part {
                    batch.add(0, 1, event).unwrap();
                }
                store::write_batch(&mut client, &batch, None).await.unwrap();
                let before = part[0].seq as i64 - 1;
                client.execute("UPDATE projection_offsets SET last_seq = $1", &[&before]).await.unwrap();
                store::write_batch(&mut client, &batch, None).await.unwrap();
            }
            let rows = client
                .query(
                    "SELECT order_id, qty_lots, open_lots, filled_lots, status, trigger_price_ticks, trail_best_ticks,
                            oco_order_id, price_ticks, triggered_at_ns, triggered_price_ticks, updated_at_ns
                     FROM orders ORDER BY order_id",
                    &[],
                )
                .await
                .unwrap();
            let found: Vec<String> = rows
                .iter()
                .map(|r| {
                    let triggered = r.get::<_, Option<i64>>(9).zip(r.get::<_, Option<i64>>(10));
                    format!(
                        "{} {} {} {} {} {} {} {} {} {:?} {}",
                        r.get::<_, i64>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, i64>(2),
                        r.get::<_, i64>(3),
                        r.get::<_, &str>(4),
                        r.get::<_, i64>(5),
                        r.get::<_, i64>(6),
                        r.get::<_, i64>(7),
                        r.get::<_, i64>(8),
                        triggered,
                        r.get::<_, i64>(11)
                    )
                })
                .collect();
            assert_eq!(found, expected, "cut after {cut} events");
        }
    });
}

/// A database at schema version 3 with an order in it migrates to version 4: the order stays a
/// plain order (not conditional, never triggered), with the columns the history reader asks for.
#[test]
fn a_database_at_version_3_migrates_keeping_its_orders_plain() {
    let Some(base) = base_url() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let url = fresh_database(&base, "migrate4");
    block_on(async {
        let mut client = connect(&url).await;
        let transaction = client.transaction().await.unwrap();
        transaction
            .batch_execute(
                "CREATE TABLE schema_migrations (version INT4 PRIMARY KEY, name TEXT NOT NULL,
                                                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
            .unwrap();
        for &(version, name, sql) in simex::projection::schema::MIGRATIONS.iter().filter(|m| m.0 <= 3) {
            transaction.batch_execute(sql).await.unwrap();
            transaction
                .execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
                .await
                .unwrap();
        }
        transaction
            .batch_execute(
                "INSERT INTO orders VALUES (9, 1, 0, 'buy', 'limit', 'gtc', 15000, 3, 3, 0, 'open', NULL, NULL,
                                            9223372036854775807, 5, 5, 0, 12, 12)",
            )
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        drop(client);
        let client = store::connect(&url).await.unwrap();
        let version: i32 = client.query_one("SELECT MAX(version) FROM schema_migrations", &[]).await.unwrap().get(0);
        assert_eq!(version, simex::projection::schema::MIGRATIONS.last().unwrap().0);
        let row = client
            .query_one(
                "SELECT trigger_kind, trigger_price_ticks, trail_best_ticks, parent_order_id, oco_order_id,
                        triggered_at_ns, grown_seq, status FROM orders WHERE order_id = 9",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, &str>(0), "none");
        assert_eq!(
            (row.get::<_, i64>(1), row.get::<_, i64>(2), row.get::<_, i64>(3), row.get::<_, i64>(4)),
            (0, 0, 0, 0)
        );
        assert_eq!((row.get::<_, Option<i64>>(5), row.get::<_, i64>(6), row.get::<_, &str>(7)), (None, 0, "open"));
    });
}
