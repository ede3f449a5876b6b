//! The history endpoints served from the PostgreSQL projection, with the journal-backed store as
//! the reference and the fallback.
//!
//! # Read-your-writes
//! A client that was told "accepted" must find its order in the next history read. The HTTP core
//! folds a command's events into the in-memory read model before it answers, so the read model's
//! last folded sequence per shard is at least the sequence of anything any client has been told.
//! Before each read, [`PgHistory`] compares the projection's committed sequence per shard (from its
//! `LagReport`) with the read model's last sequence of an event that changes history (orders,
//! fills, portfolios, cash; reference prices, which the feeds send all the time, do not count, or
//! PostgreSQL would seldom look caught up): when PostgreSQL has all of those, it is read; otherwise it waits (polling the lag) for up to [`CATCH_UP_WAIT`], and if the projection is
//! still behind (or disconnected, or a query fails) the read is answered by the journal-backed
//! store. So a read never shows less than the client has been told, and a slow database only moves
//! reads back to memory; it never fails one.
//!
//! # Same responses
//! Rows are turned into the same [`TradeRecord`]s and [`OrderRecord`]s the read model holds, in the
//! same order (newest first, by venue time, then shard, then sequence: trades by their fill, the
//! maker's side before the taker's when a portfolio is both; orders by their acceptance), so the
//! HTTP layer renders byte-identical JSON. An order's quantity after a replace is, as in the read
//! model, what was filled before the replace plus the replace's quantity (`order_replacements` and
//! the order's fills before it).
//!
//! # Conditional orders
//! The projection holds conditional (and delayed) orders from their acceptance, with their trigger
//! fields, links, waiting state and trigger, folded as the read model folds them (see
//! `projection::batch`), so they are read like any other order: a row in status `waiting_trigger`
//! is [`OrderState::WaitingTrigger`] until its `OrderAccepted` makes it a book order.

use super::model::{OrderRecord, OrderState, TradeRecord};
use super::{HistoryStore, MemoryHistory, OrderFilter, TradePage};
use crate::projection::batch::WAITING_TRIGGER;
use crate::projection::lag::LagCell;
use simex_engine::{CancelReason, ClientOrderId, OrderId, OrderKind, PortfolioId, Side, TimeInForce, TriggerKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls, Row};

/// Longest a read waits for the projection to catch up before the journal-backed store answers.
pub const CATCH_UP_WAIT: Duration = Duration::from_millis(200);
/// A query that takes longer is abandoned (with its connection) and memory answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the lag is looked at while waiting.
const CATCH_UP_POLL: Duration = Duration::from_millis(2);

struct Connection {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

/// History from PostgreSQL, read-your-writes against the journal-backed `memory`. Its methods
/// block (they run queries): call them off the async workers (`spawn_blocking`).
pub struct PgHistory {
    database_url: String,
    memory: MemoryHistory,
    lag: LagCell,
    connection: Mutex<Option<Connection>>,
    catch_up_wait: Duration,
    from_postgres: AtomicU64,
    from_memory: AtomicU64,
}

/// Which store answered, for tests and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    Postgres,
    Memory,
}

impl PgHistory {
    pub fn new(database_url: impl Into<String>, memory: MemoryHistory, lag: LagCell) -> PgHistory {
        PgHistory {
            database_url: database_url.into(),
            memory,
            lag,
            connection: Mutex::new(None),
            catch_up_wait: CATCH_UP_WAIT,
            from_postgres: AtomicU64::new(0),
            from_memory: AtomicU64::new(0),
        }
    }

    /// Whether PostgreSQL holds every event the read model has folded, waiting up to the bound.
    fn caught_up(&self) -> bool {
        let started = Instant::now();
        loop {
            let folded = self.memory.read().history_seqs();
            let ready = self.lag.with(|report| {
                report.connected
                    && folded.iter().all(|&(shard, seq)| {
                        report.shards.iter().any(|s| s.shard == u32::from(shard) && s.committed_seq >= seq)
                    })
            });
            if ready {
                return true;
            }
            if started.elapsed() >= self.catch_up_wait {
                return false;
            }
            std::thread::sleep(CATCH_UP_POLL);
        }
    }

    /// Runs `query` on the connection (made on first use, dropped after an error). `None` when the
    /// projection is behind or the database fails: the caller answers from memory.
    fn with_database<T>(
        &self,
        query: impl for<'c> FnOnce(&'c Client) -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    ) -> Option<T> {
        if !self.caught_up() {
            return None;
        }
        let mut guard = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = self.connect().map_err(|e| tracing::warn!("history from PostgreSQL: {e}")).ok();
        }
        let connection = guard.as_ref()?;
        let answer = connection.runtime.block_on(tokio::time::timeout(QUERY_TIMEOUT, query(&connection.client)));
        match answer {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::warn!("history from PostgreSQL: {error}; answering from the journal-backed store");
                *guard = None;
                None
            }
            Err(_) => {
                tracing::warn!("history from PostgreSQL: no answer in {QUERY_TIMEOUT:?}; answering from memory");
                *guard = None;
                None
            }
        }
    }

    fn connect(&self) -> Result<Connection, String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let client = runtime.block_on(tokio::time::timeout(QUERY_TIMEOUT, async {
            let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        }));
        let client = client.map_err(|_| format!("no connection in {QUERY_TIMEOUT:?}"))?.map_err(|e| e.to_string())?;
        Ok(Connection { runtime, client })
    }

    /// [`HistoryStore::trades`], saying which store answered.
    pub fn trades_from(&self, portfolio_id: PortfolioId, limit: usize, offset: usize) -> (TradePage, Answered) {
        let portfolio = i64::from(portfolio_id);
        let (limit_rows, offset_rows) = (limit as i64, offset as i64);
        let page = self.with_database(|client| {
            Box::pin(async move {
                let total: i64 = client
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM fills WHERE taker_portfolio_id = $1)
                              + (SELECT COUNT(*) FROM fills WHERE maker_portfolio_id = $1)",
                        &[&portfolio],
                    )
                    .await?
                    .get(0);
                let rows = client.query(TRADES_PAGE, &[&portfolio, &limit_rows, &offset_rows]).await?;
                Ok((rows, total))
            })
        });
        match page {
            Some((rows, total)) => {
                let trades = rows.iter().map(trade_record).collect::<Option<Vec<_>>>();
                match trades {
                    Some(trades) => (TradePage { trades, total: total as u64 }, Answered::Postgres),
                    None => (self.memory.trades(portfolio_id, limit, offset), Answered::Memory),
                }
            }
            None => (self.memory.trades(portfolio_id, limit, offset), Answered::Memory),
        }
    }

    /// [`HistoryStore::orders`], saying which store answered.
    pub fn orders_from(&self, portfolio_id: PortfolioId, filter: OrderFilter) -> (Vec<OrderRecord>, Answered) {
        let portfolio = i64::from(portfolio_id);
        let rows = self.with_database(|client| {
            Box::pin(async move {
                client
                    .query(
                        &format!(
                            "{ORDER_COLUMNS} WHERE portfolio_id = $1 ORDER BY accepted_at_ns DESC, shard DESC, accepted_seq DESC"
                        ),
                        &[&portfolio],
                    )
                    .await
            })
        });
        let orders = rows.and_then(|rows| rows.iter().map(order_record).collect::<Option<Vec<_>>>());
        match orders {
            Some(orders) => {
                let kept = orders.into_iter().filter(|o| filter.keeps(o.state)).collect();
                (kept, Answered::Postgres)
            }
            None => (self.memory.orders(portfolio_id, filter), Answered::Memory),
        }
    }

    /// [`HistoryStore::order`], saying which store answered.
    pub fn order_from(&self, portfolio_id: PortfolioId, order_id: OrderId) -> (Option<OrderRecord>, Answered) {
        let Ok(order) = i64::try_from(order_id) else { return (None, Answered::Postgres) };
        let portfolio = i64::from(portfolio_id);
        let rows = self.with_database(|client| {
            Box::pin(async move {
                client
                    .query(&format!("{ORDER_COLUMNS} WHERE order_id = $1 AND portfolio_id = $2"), &[&order, &portfolio])
                    .await
            })
        });
        match rows.map(|rows| rows.first().map(order_record)) {
            Some(None) => (None, Answered::Postgres),
            Some(Some(Some(order))) => (Some(order), Answered::Postgres),
            Some(Some(None)) | None => (self.memory.order(portfolio_id, order_id), Answered::Memory),
        }
    }
}

impl PgHistory {
    fn count<T>(&self, (value, answered): (T, Answered)) -> T {
        let counter = match answered {
            Answered::Postgres => &self.from_postgres,
            Answered::Memory => &self.from_memory,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        value
    }
}

impl HistoryStore for PgHistory {
    fn trades(&self, portfolio_id: PortfolioId, limit: usize, offset: usize) -> TradePage {
        self.count(self.trades_from(portfolio_id, limit, offset))
    }

    fn orders(&self, portfolio_id: PortfolioId, filter: OrderFilter) -> Vec<OrderRecord> {
        self.count(self.orders_from(portfolio_id, filter))
    }

    fn order(&self, portfolio_id: PortfolioId, order_id: OrderId) -> Option<OrderRecord> {
        self.count(self.order_from(portfolio_id, order_id))
    }

    fn reads_by_store(&self) -> Option<(u64, u64)> {
        Some((self.from_postgres.load(Ordering::Relaxed), self.from_memory.load(Ordering::Relaxed)))
    }
}

/// A portfolio's side of each fill, newest first: by the fill's sequence, and within one fill the
/// maker's row before the taker's (the read model appends taker then maker and lists in reverse).
const TRADES_PAGE: &str = "
    SELECT trade_id, order_id, symbol_id, side, price_ticks, qty_lots, fee_micros, notional_micros, timestamp_ns,
           shard, seq
    FROM (
        SELECT shard, seq, 0 AS role, trade_id, taker_order_id AS order_id, symbol_id, taker_side AS side,
               price_ticks, qty_lots, taker_fee_micros AS fee_micros, notional_micros, timestamp_ns
        FROM fills WHERE taker_portfolio_id = $1
        UNION ALL
        SELECT shard, seq, 1 AS role, trade_id, maker_order_id, symbol_id,
               CASE taker_side WHEN 'buy' THEN 'sell' ELSE 'buy' END,
               price_ticks, qty_lots, maker_fee_micros, notional_micros, timestamp_ns
        FROM fills WHERE maker_portfolio_id = $1
    ) sides
    ORDER BY timestamp_ns DESC, shard DESC, seq DESC, role DESC
    LIMIT $2 OFFSET $3";

/// An order's columns; its quantity is the accepted one, or after a replace the lots filled before
/// the last replace plus that replace's quantity (a portfolio's fills are found by its indexes).
const ORDER_COLUMNS: &str = "
    SELECT order_id, portfolio_id, symbol_id, side, kind, price_ticks,
           COALESCE((
               SELECT r.qty_lots + COALESCE((
                   SELECT SUM(f.qty_lots) FROM fills f
                   WHERE f.shard = r.shard AND f.seq < r.seq AND f.timestamp_ns <= r.timestamp_ns
                     AND ((f.maker_portfolio_id = o.portfolio_id AND f.maker_order_id = o.order_id)
                       OR (f.taker_portfolio_id = o.portfolio_id AND f.taker_order_id = o.order_id))), 0)::INT8
               FROM order_replacements r WHERE r.order_id = o.order_id ORDER BY r.seq DESC LIMIT 1),
               qty_lots) AS qty_lots,
           open_lots, filled_lots, time_in_force, client_order_id, cancel_reason, accepted_at_ns, updated_at_ns, status,
           trigger_kind, trigger_price_ticks, trail_ticks, trail_bps, trail_best_ticks, parent_order_id,
           oco_order_id, triggered_at_ns, triggered_price_ticks, shard, accepted_seq
    FROM orders o";

fn side(text: &str) -> Option<Side> {
    match text {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        _ => None,
    }
}

/// `None` for a row this simex cannot read (a newer schema's values): the caller falls back.
fn trade_record(row: &Row) -> Option<TradeRecord> {
    Some(TradeRecord {
        trade_id: u64::try_from(row.get::<_, i64>(0)).ok()?,
        order_id: u64::try_from(row.get::<_, i64>(1)).ok()?,
        symbol_id: u16::try_from(row.get::<_, i32>(2)).ok()?,
        side: side(row.get(3))?,
        price_ticks: row.get(4),
        qty_lots: row.get(5),
        fee_micros: row.get(6),
        notional_micros: row.get(7),
        timestamp_ns: row.get(8),
        shard: u16::try_from(row.get::<_, i32>(9)).ok()?,
        seq: u64::try_from(row.get::<_, i64>(10)).ok()?,
    })
}

fn order_record(row: &Row) -> Option<OrderRecord> {
    let kind = match row.get::<_, &str>(4) {
        "limit" => OrderKind::Limit,
        "market" => OrderKind::Market,
        _ => return None,
    };
    let time_in_force = match row.get::<_, &str>(9) {
        "gtc" => TimeInForce::Gtc,
        "day" => TimeInForce::Day,
        "gtd" => TimeInForce::Gtd,
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        _ => return None,
    };
    let cancel_reason = match row.get::<_, Option<&str>>(11) {
        Some(name) => {
            Some(CancelReason::ALL.into_iter().find(|r| crate::projection::batch::cancel_reason_name(*r) == name)?)
        }
        None => None,
    };
    let client_order_id = match row.get::<_, Option<&str>>(10) {
        Some(text) => ClientOrderId::from_text(text)?,
        None => ClientOrderId::NONE,
    };
    let (qty_lots, open_lots, filled_lots): (i64, i64, i64) = (row.get(6), row.get(7), row.get(8));
    let waiting = row.get::<_, &str>(14) == WAITING_TRIGGER;
    let trigger = match row.get::<_, &str>(15) {
        "none" => TriggerKind::None,
        "stop" => TriggerKind::Stop,
        "take_profit" => TriggerKind::TakeProfit,
        "trailing_stop" => TriggerKind::TrailingStop,
        "delayed" => TriggerKind::Delayed,
        _ => return None,
    };
    let triggered = match (row.get::<_, Option<i64>>(22), row.get::<_, Option<i64>>(23)) {
        (Some(at_ns), Some(price_ticks)) => Some((at_ns, price_ticks)),
        _ => None,
    };
    // The read model's rules: a cancel (or expiry) decides the state; then whether the order
    // still waits for its trigger; otherwise fills do. (The quantity after a replace is computed
    // in `ORDER_COLUMNS` from `order_replacements`.)
    let state = match cancel_reason {
        Some(CancelReason::Expired) => OrderState::Expired,
        Some(_) => OrderState::Cancelled,
        None if waiting => OrderState::WaitingTrigger,
        None if open_lots <= 0 => OrderState::Filled,
        None if filled_lots > 0 => OrderState::PartiallyFilled,
        None => OrderState::Open,
    };
    Some(OrderRecord {
        order_id: u64::try_from(row.get::<_, i64>(0)).ok()?,
        portfolio_id: u32::try_from(row.get::<_, i64>(1)).ok()?,
        symbol_id: u16::try_from(row.get::<_, i32>(2)).ok()?,
        side: side(row.get(3))?,
        kind,
        price_ticks: row.get(5),
        qty_lots,
        filled_lots,
        open_lots: open_lots.max(0),
        time_in_force,
        client_order_id,
        state,
        cancel_reason,
        created_ns: row.get(12),
        updated_ns: row.get(13),
        trigger,
        trigger_price_ticks: row.get(16),
        trail_ticks: row.get(17),
        trail_bps: row.get(18),
        trail_best_ticks: row.get(19),
        parent_order_id: u64::try_from(row.get::<_, i64>(20)).ok()?,
        oco_order_id: u64::try_from(row.get::<_, i64>(21)).ok()?,
        triggered,
        shard: u16::try_from(row.get::<_, i32>(24)).ok()?,
        accepted_seq: u64::try_from(row.get::<_, i64>(25)).ok()?,
        // A conditional order is in the book only once it fired.
        resting: (trigger == TriggerKind::None || triggered.is_some())
            && kind == OrderKind::Limit
            && time_in_force.rests(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_projection_that_is_behind_or_away_leaves_reads_to_memory() {
        let memory = MemoryHistory::default();
        let lag = LagCell::default();
        let mut history = PgHistory::new("postgresql://simex@127.0.0.1:1/none", memory, lag.clone());
        history.catch_up_wait = Duration::from_millis(5);
        // Not connected: nothing is asked of the database (whose address is unusable anyway).
        assert_eq!(history.trades_from(1, 50, 0).1, Answered::Memory);
        assert_eq!(history.orders_from(1, OrderFilter::All).1, Answered::Memory);
        assert_eq!(history.order_from(1, 7).1, Answered::Memory);
        // Connected but behind the read model: still memory.
        history.memory.write().apply(
            0,
            &simex_engine::Event {
                seq: 3,
                timestamp_ns: 1,
                body: simex_engine::EventBody::PortfolioCreated { portfolio_id: 1, cash_micros: 5 },
            },
        );
        lag.update(|report| {
            report.connected = true;
            report.shards =
                vec![crate::projection::ShardLag { shard: 0, committed_seq: 2, journal_seq: 3, ..Default::default() }];
        });
        assert!(!history.caught_up());
        lag.update(|report| report.shards[0].committed_seq = 3);
        assert!(history.caught_up());
        // Market data folded after it does not make PostgreSQL look behind.
        history.memory.write().apply(
            0,
            &simex_engine::Event {
                seq: 4,
                timestamp_ns: 2,
                body: simex_engine::EventBody::ReferencePriceSet { symbol_id: 0, price_ticks: 15_000 },
            },
        );
        assert!(history.caught_up());
        assert_eq!(history.reads_by_store(), Some((0, 0)), "the *_from calls are not counted");
    }
}
