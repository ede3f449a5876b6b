//! Writing a batch to PostgreSQL: binary COPY into staging tables, then set-based statements into
//! the real tables and the offsets, all in one transaction.
//!
//! The transaction starts by locking the offset rows of the batch's shards (`FOR UPDATE`) and
//! checking that each stands exactly one before the batch's first sequence. Together with the
//! offsets being written in the same transaction as the rows, that makes every event land exactly
//! once: a batch that was already committed (say the commit went through but its answer was lost)
//! or that another projector has overtaken is refused as [`StoreError::Fenced`], and the projector
//! rereads the offsets and resumes after them.
//!
//! Bracket exits and trailing stops of earlier batches change with the batch's fills and prices
//! rather than with events of their own; `GROW_EXITS` and `TRAIL_STOPS` do that with one
//! statement each, before the batch's own order rows and updates are written.

use super::batch::{Batch, OrderRow, ShardRange};
use super::schema::{self, STAGING_TABLES};
use crate::auth::AccountRecord;
use futures_util::pin_mut;
use std::collections::BTreeMap;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    #[error("shard {shard}: the database stands at record {found:?}, the batch starts at {first_seq}")]
    Fenced { shard: u32, found: Option<i64>, first_seq: u64 },
    #[error("accounts journal: the database stands at record {found:?}, the batch starts at {first_seq}")]
    AccountsFenced { found: Option<i64>, first_seq: u64 },
}

/// Where the database says a shard's projection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offset {
    pub epoch: u64,
    pub last_seq: u64,
    pub last_timestamp_ns: i64,
}

/// Connects, migrates the schema and creates this connection's staging tables. The connection's
/// I/O runs as a task on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // Its error also fails the client's next call, which is where it is handled.
        let _ = connection.await;
    });
    schema::migrate(&mut client).await?;
    client.batch_execute(STAGING_TABLES).await?;
    Ok(client)
}

/// Every shard's offset.
pub async fn load_offsets(client: &Client) -> Result<BTreeMap<u32, Offset>, StoreError> {
    let rows = client.query("SELECT shard, epoch, last_seq, last_timestamp_ns FROM projection_offsets", &[]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let offset = Offset {
                epoch: row.get::<_, i64>(1) as u64,
                last_seq: row.get::<_, i64>(2) as u64,
                last_timestamp_ns: row.get(3),
            };
            (row.get::<_, i32>(0) as u32, offset)
        })
        .collect())
}

/// The newest sequence of `shard` that any row records, and the newest time. Every projected event
/// leaves its sequence in some row (an order's `last_seq` only grows), and batches commit whole, so
/// the events after it that were committed produced no rows: resuming after it re-applies nothing.
/// (A reference price leaves no sequence, but what it does, moving a trailing stop's best price,
/// changes nothing when applied again.)
const LAST_SEQ_IN_ROWS: &str = "
    SELECT GREATEST(
        (SELECT MAX(seq) FROM portfolios WHERE shard = $1),
        (SELECT MAX(seq) FROM cash_adjustments WHERE shard = $1),
        (SELECT MAX(seq) FROM fills WHERE shard = $1),
        (SELECT MAX(seq) FROM rejections WHERE shard = $1),
        (SELECT MAX(seq) FROM order_replacements WHERE shard = $1),
        (SELECT MAX(last_seq) FROM orders WHERE shard = $1)),
    GREATEST(
        (SELECT MAX(created_at_ns) FROM portfolios WHERE shard = $1),
        (SELECT MAX(timestamp_ns) FROM cash_adjustments WHERE shard = $1),
        (SELECT MAX(timestamp_ns) FROM fills WHERE shard = $1),
        (SELECT MAX(timestamp_ns) FROM rejections WHERE shard = $1),
        (SELECT MAX(timestamp_ns) FROM order_replacements WHERE shard = $1),
        (SELECT MAX(updated_at_ns) FROM orders WHERE shard = $1))";

/// For a shard that has rows but no offset (the offsets were lost or cleared): recovers the offset
/// from the rows and stores it, with the journal's `epoch`. `None` if the shard has no rows.
pub async fn recover_offset(client: &Client, shard: u32, epoch: u64) -> Result<Option<Offset>, StoreError> {
    let row = client.query_one(LAST_SEQ_IN_ROWS, &[&(shard as i32)]).await?;
    let (Some(last_seq), Some(last_timestamp_ns)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) else {
        return Ok(None);
    };
    client
        .execute(
            "INSERT INTO projection_offsets (shard, epoch, last_seq, last_timestamp_ns) VALUES ($1, $2, $3, $4)
             ON CONFLICT (shard) DO NOTHING",
            &[&(shard as i32), &(epoch as i64), &last_seq, &last_timestamp_ns],
        )
        .await?;
    Ok(Some(Offset { epoch, last_seq: last_seq as u64, last_timestamp_ns }))
}

/// Applies an order update only if the order has not seen it yet (`last_seq < first_seq`); the
/// status rule is `batch::order_status`.
const APPLY_ORDER_UPDATES: &str = "
    UPDATE orders o SET
        kind = COALESCE(u.kind, o.kind),
        time_in_force = COALESCE(u.time_in_force, o.time_in_force),
        price_ticks = COALESCE(u.price_ticks, o.price_ticks),
        qty_lots = COALESCE(u.qty_lots, o.qty_lots),
        open_lots = CASE WHEN u.cancel_reason IS NOT NULL THEN 0
                         ELSE COALESCE(u.open_base_lots, o.open_lots) - u.open_minus_lots END,
        filled_lots = o.filled_lots + u.filled_lots,
        cancel_reason = COALESCE(u.cancel_reason, o.cancel_reason),
        status = CASE
            WHEN COALESCE(u.cancel_reason, o.cancel_reason) IS NOT NULL THEN 'cancelled'
            WHEN o.status = 'waiting_trigger' AND NOT u.activated THEN 'waiting_trigger'
            WHEN COALESCE(u.open_base_lots, o.open_lots) - u.open_minus_lots <= 0 THEN 'filled'
            WHEN o.filled_lots + u.filled_lots > 0 THEN 'partially_filled'
            ELSE 'open' END,
        oco_order_id = COALESCE(u.oco_order_id, o.oco_order_id),
        triggered_at_ns = COALESCE(u.triggered_at_ns, o.triggered_at_ns),
        triggered_price_ticks = COALESCE(u.triggered_price_ticks, o.triggered_price_ticks),
        updated_at_ns = COALESCE(u.updated_at_ns, o.updated_at_ns),
        last_seq = u.last_seq
    FROM stage_order_updates u
    WHERE o.order_id = u.order_id AND o.last_seq < u.first_seq";

/// New order rows. A row whose id is already there is either this batch applied again (the stored
/// row has seen the batch: `last_seq` is not older) or the `OrderAccepted` of a conditional order
/// whose trigger an earlier batch saw: the waiting row becomes the book order, keeping its
/// acceptance, client id and trigger fields (as the read model keeps them).
const INSERT_ORDERS: &str = "
    INSERT INTO orders SELECT * FROM stage_orders
    ON CONFLICT (order_id) DO UPDATE SET
        kind = excluded.kind,
        time_in_force = excluded.time_in_force,
        price_ticks = excluded.price_ticks,
        qty_lots = excluded.qty_lots,
        open_lots = excluded.open_lots,
        filled_lots = excluded.filled_lots,
        status = excluded.status,
        cancel_reason = excluded.cancel_reason,
        oco_order_id = CASE WHEN excluded.oco_order_id <> 0 THEN excluded.oco_order_id ELSE orders.oco_order_id END,
        updated_at_ns = excluded.updated_at_ns,
        last_seq = excluded.last_seq
    WHERE orders.last_seq < excluded.accepted_seq AND orders.status = 'waiting_trigger'";

/// Where an order of an earlier batch stopped waiting in this one: its update's first activation
/// or cancel, else the `OrderAccepted` of a new row with its id (a trigger seen by an earlier
/// batch), else never. Used by [`GROW_EXITS`] and [`TRAIL_STOPS`] as `{waiting_until}`.
const WAITING_UNTIL: &str = "COALESCE(u.waiting_until_seq, n.accepted_seq, 9223372036854775807)";

/// Each fill of a bracket entry adds its quantity to the entry's exits of earlier batches that
/// wait at the time of the fill; `grown_seq` (the newest fill counted) keeps a fill from counting
/// twice. Runs before the batch's order rows and updates are written.
const GROW_EXITS: &str = "
    UPDATE orders o SET qty_lots = o.qty_lots + g.lots, open_lots = o.open_lots + g.lots, grown_seq = g.last_seq
    FROM (
        SELECT e.order_id, SUM(f.qty_lots) AS lots, MAX(f.seq) AS last_seq
        FROM (SELECT seq, maker_order_id AS entry_id, qty_lots FROM stage_fills
              UNION ALL
              SELECT seq, taker_order_id, qty_lots FROM stage_fills) f
        JOIN orders e ON e.parent_order_id = f.entry_id
        LEFT JOIN stage_order_updates u ON u.order_id = e.order_id
        LEFT JOIN stage_orders n ON n.order_id = e.order_id
        WHERE f.entry_id <> 0 AND e.parent_order_id <> 0 AND e.status = 'waiting_trigger' AND f.seq > e.grown_seq
          AND f.seq < {waiting_until}
        GROUP BY e.order_id
    ) g
    WHERE o.order_id = g.order_id";

/// Trade prices of the batch move the best price of waiting trailing stops of earlier batches
/// (the highest for a sell, the lowest for a buy, while they wait), and their stop price with it:
/// `batch::trail_stop_ticks` in SQL, basis points rounded up to a whole tick. The best price only
/// moves one way, so applying it twice changes nothing. Runs before the batch's updates.
const TRAIL_STOPS: &str = "
    UPDATE orders o SET
        trail_best_ticks = r.best,
        trigger_price_ticks = LEAST(GREATEST(
            CASE WHEN o.side = 'sell' THEN r.best::numeric - r.offset_ticks ELSE r.best::numeric + r.offset_ticks END,
            -9223372036854775808), 9223372036854775807)::int8
    FROM (
        SELECT t.order_id,
               CASE WHEN t.side = 'sell' THEN MAX(p.price_ticks) ELSE MIN(p.price_ticks) END AS best,
               CASE WHEN t.trail_bps > 0
                    THEN LEAST(div((CASE WHEN t.side = 'sell' THEN MAX(p.price_ticks) ELSE MIN(p.price_ticks) END)::numeric
                                   * t.trail_bps + ({bps} - 1), {bps}), 9223372036854775807)
                    ELSE t.trail_ticks END AS offset_ticks
        FROM (SELECT symbol_id, seq, price_ticks FROM stage_fills
              UNION ALL
              SELECT symbol_id, seq, price_ticks FROM stage_reference_prices) p
        JOIN orders t ON t.symbol_id = p.symbol_id AND t.trigger_kind = 'trailing_stop'
                     AND t.status = 'waiting_trigger'
        LEFT JOIN stage_order_updates u ON u.order_id = t.order_id
        LEFT JOIN stage_orders n ON n.order_id = t.order_id
        WHERE p.seq > t.accepted_seq AND p.seq < {waiting_until}
        GROUP BY t.order_id, t.side, t.trail_bps, t.trail_ticks
    ) r
    WHERE o.order_id = r.order_id
      AND CASE WHEN o.side = 'sell' THEN r.best > o.trail_best_ticks ELSE r.best < o.trail_best_ticks END";

const APPLY_POSITIONS: &str = "
    INSERT INTO positions
    SELECT portfolio_id, symbol_id, net_lots, bought_lots, sold_lots, bought_notional_micros,
           sold_notional_micros, fees_micros, updated_at_ns, last_seq
    FROM stage_positions
    ON CONFLICT (portfolio_id, symbol_id) DO UPDATE SET
        net_lots = positions.net_lots + excluded.net_lots,
        bought_lots = positions.bought_lots + excluded.bought_lots,
        sold_lots = positions.sold_lots + excluded.sold_lots,
        bought_notional_micros = positions.bought_notional_micros + excluded.bought_notional_micros,
        sold_notional_micros = positions.sold_notional_micros + excluded.sold_notional_micros,
        fees_micros = positions.fees_micros + excluded.fees_micros,
        updated_at_ns = excluded.updated_at_ns,
        last_seq = excluded.last_seq
    WHERE positions.last_seq < (SELECT s.first_seq FROM stage_positions s
                                WHERE s.portfolio_id = excluded.portfolio_id AND s.symbol_id = excluded.symbol_id)";

/// Writes the batch and its offsets in one transaction; with `snapshot_at_ns`, also copies
/// `positions` into `position_snapshots` in it.
pub async fn write_batch(client: &mut Client, batch: &Batch, snapshot_at_ns: Option<i64>) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    check_offsets(&transaction, &batch.shards).await?;

    if !batch.portfolios.is_empty() {
        let types = [Type::INT8, Type::INT8, Type::INT8, Type::INT4, Type::INT8];
        let rows = batch.portfolios.iter().map(|r| {
            vec![&r.portfolio_id as &(dyn ToSql + Sync), &r.starting_cash_micros, &r.created_at_ns, &r.shard, &r.seq]
        });
        copy_rows(&transaction, "stage_portfolios", &types, rows).await?;
        transaction
            .execute("INSERT INTO portfolios SELECT * FROM stage_portfolios ON CONFLICT DO NOTHING", &[])
            .await?;
    }
    if !batch.cash_adjustments.is_empty() {
        let types = [Type::INT4, Type::INT8, Type::INT8, Type::INT8, Type::INT8];
        let rows = batch
            .cash_adjustments
            .iter()
            .map(|r| vec![&r.shard as &(dyn ToSql + Sync), &r.seq, &r.portfolio_id, &r.delta_micros, &r.timestamp_ns]);
        copy_rows(&transaction, "stage_cash_adjustments", &types, rows).await?;
        transaction
            .execute("INSERT INTO cash_adjustments SELECT * FROM stage_cash_adjustments ON CONFLICT DO NOTHING", &[])
            .await?;
    }
    // Staging first: bracket exits and trailing stops of earlier batches are updated from the
    // batch's fills and prices, up to where the batch's own order events end their waiting.
    if !batch.new_orders.is_empty() {
        copy_orders(&transaction, batch.new_orders.values()).await?;
    }
    if !batch.order_updates.is_empty() {
        copy_order_updates(&transaction, batch).await?;
    }
    if !batch.fills.is_empty() {
        let types = [
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ];
        let rows = batch.fills.iter().map(|r| {
            vec![
                &r.shard as &(dyn ToSql + Sync),
                &r.seq,
                &r.trade_id,
                &r.symbol_id,
                &r.maker_order_id,
                &r.maker_portfolio_id,
                &r.taker_order_id,
                &r.taker_portfolio_id,
                &r.taker_side,
                &r.price_ticks,
                &r.qty_lots,
                &r.notional_micros,
                &r.maker_fee_micros,
                &r.taker_fee_micros,
                &r.timestamp_ns,
            ]
        });
        copy_rows(&transaction, "stage_fills", &types, rows).await?;
    }
    if !batch.reference_prices.is_empty() {
        let types = [Type::INT4, Type::INT8, Type::INT8];
        let rows =
            batch.reference_prices.iter().map(|r| vec![&r.symbol_id as &(dyn ToSql + Sync), &r.seq, &r.price_ticks]);
        copy_rows(&transaction, "stage_reference_prices", &types, rows).await?;
    }
    if !batch.fills.is_empty() {
        transaction.execute(&GROW_EXITS.replace("{waiting_until}", WAITING_UNTIL), &[]).await?;
    }
    if !batch.fills.is_empty() || !batch.reference_prices.is_empty() {
        let trail = TRAIL_STOPS
            .replace("{waiting_until}", WAITING_UNTIL)
            .replace("{bps}", &simex_engine::BASIS_POINTS_PER_UNIT.to_string());
        transaction.execute(&trail, &[]).await?;
    }
    if !batch.new_orders.is_empty() {
        transaction.execute(INSERT_ORDERS, &[]).await?;
    }
    if !batch.order_updates.is_empty() {
        transaction.execute(APPLY_ORDER_UPDATES, &[]).await?;
    }
    if !batch.fills.is_empty() {
        transaction.execute("INSERT INTO fills SELECT * FROM stage_fills ON CONFLICT DO NOTHING", &[]).await?;
    }
    if !batch.rejections.is_empty() {
        let types = [Type::INT4, Type::INT8, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::INT8];
        let rows = batch.rejections.iter().map(|r| {
            vec![
                &r.shard as &(dyn ToSql + Sync),
                &r.seq,
                &r.portfolio_id,
                &r.order_id,
                &r.client_order_id,
                &r.reason,
                &r.timestamp_ns,
            ]
        });
        copy_rows(&transaction, "stage_rejections", &types, rows).await?;
        transaction
            .execute("INSERT INTO rejections SELECT * FROM stage_rejections ON CONFLICT DO NOTHING", &[])
            .await?;
    }
    if !batch.replacements.is_empty() {
        let types = [Type::INT4, Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::INT8];
        let rows = batch.replacements.iter().map(|r| {
            vec![&r.shard as &(dyn ToSql + Sync), &r.seq, &r.order_id, &r.price_ticks, &r.qty_lots, &r.timestamp_ns]
        });
        copy_rows(&transaction, "stage_order_replacements", &types, rows).await?;
        transaction
            .execute(
                "INSERT INTO order_replacements SELECT * FROM stage_order_replacements ON CONFLICT DO NOTHING",
                &[],
            )
            .await?;
    }
    if !batch.positions.is_empty() {
        let types = [
            Type::INT8,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ];
        let rows = batch.positions.iter().map(|((portfolio_id, symbol_id), d)| {
            vec![
                portfolio_id as &(dyn ToSql + Sync),
                symbol_id,
                &d.net_lots,
                &d.bought_lots,
                &d.sold_lots,
                &d.bought_notional_micros,
                &d.sold_notional_micros,
                &d.fees_micros,
                &d.updated_at_ns,
                &d.first_seq,
                &d.last_seq,
            ]
        });
        copy_rows(&transaction, "stage_positions", &types, rows).await?;
        transaction.execute(APPLY_POSITIONS, &[]).await?;
    }
    for (&shard, range) in &batch.shards {
        transaction
            .execute(
                "INSERT INTO projection_offsets (shard, epoch, last_seq, last_timestamp_ns) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (shard) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq,
                     last_timestamp_ns = excluded.last_timestamp_ns, updated_at = now()",
                &[&(shard as i32), &(range.epoch as i64), &(range.last_seq as i64), &range.last_timestamp_ns],
            )
            .await?;
    }
    if let Some(snapshot_at_ns) = snapshot_at_ns {
        transaction
            .execute(
                "INSERT INTO position_snapshots
                 SELECT $1, portfolio_id, symbol_id, net_lots, bought_lots, sold_lots, bought_notional_micros,
                        sold_notional_micros, fees_micros FROM positions
                 ON CONFLICT DO NOTHING",
                &[&snapshot_at_ns],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// Records of the gateway's accounts journal (`<data>/accounts`) to project in one transaction.
#[derive(Clone, Debug, Default)]
pub struct AccountsBatch {
    pub epoch: u64,
    /// `(seq, timestamp_ns, record)`, in sequence order without gaps.
    pub records: Vec<(u64, i64, AccountRecord)>,
}

impl AccountsBatch {
    pub fn first_seq(&self) -> Option<u64> {
        self.records.first().map(|r| r.0)
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.records.last().map(|r| r.0)
    }
}

/// Where the projection stands in the accounts journal: `(epoch, last_seq)`.
pub async fn load_accounts_offset(client: &Client) -> Result<Option<(u64, u64)>, StoreError> {
    let row = client.query_opt("SELECT epoch, last_seq FROM accounts_offset WHERE journal = 'accounts'", &[]).await?;
    Ok(row.map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64)))
}

/// Writes account records and the accounts offset in one transaction, refusing a batch that does
/// not continue exactly where the stored offset stands (as for the shards). API keys are passed
/// over (they only move the offset): no secret reaches the database.
pub async fn write_accounts(client: &mut Client, batch: &AccountsBatch) -> Result<(), StoreError> {
    let (Some(first_seq), Some(last_seq)) = (batch.first_seq(), batch.last_seq()) else { return Ok(()) };
    let transaction = client.transaction().await?;
    let found: Option<i64> = transaction
        .query_opt("SELECT last_seq FROM accounts_offset WHERE journal = 'accounts' FOR UPDATE", &[])
        .await?
        .map(|r| r.get(0));
    if found.is_some_and(|last| last as u64 + 1 != first_seq) {
        return Err(StoreError::AccountsFenced { found, first_seq });
    }
    for (seq, timestamp_ns, record) in &batch.records {
        let seq = *seq as i64;
        match record {
            AccountRecord::User { user_id, email, name, display_name, .. } => {
                transaction
                    .execute(
                        "INSERT INTO users (user_id, email, name, display_name, created_at_ns, seq)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO NOTHING",
                        &[&(*user_id as i64), email, name, display_name, timestamp_ns, &seq],
                    )
                    .await?;
            }
            AccountRecord::ApiKey { .. } => {}
            AccountRecord::Portfolio { user_id, portfolio_id, engine_portfolio_id, name, starting_balance_micros } => {
                transaction
                    .execute(
                        "INSERT INTO user_portfolios (portfolio_id, user_id, name, starting_balance_micros,
                             engine_portfolio_id, created_at_ns, updated_at_ns, seq)
                         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (portfolio_id) DO NOTHING",
                        &[
                            &i64::from(*portfolio_id),
                            &(*user_id as i64),
                            name,
                            starting_balance_micros,
                            &i64::from(*engine_portfolio_id),
                            timestamp_ns,
                            &seq,
                        ],
                    )
                    .await?;
            }
            AccountRecord::PortfolioReset { portfolio_id, engine_portfolio_id } => {
                // The sequence guard makes a second application a no-op even outside the offsets.
                transaction
                    .execute(
                        "UPDATE user_portfolios SET engine_portfolio_id = $2, updated_at_ns = $3, seq = $4
                         WHERE portfolio_id = $1 AND seq < $4",
                        &[&i64::from(*portfolio_id), &i64::from(*engine_portfolio_id), timestamp_ns, &seq],
                    )
                    .await?;
            }
        }
    }
    transaction
        .execute(
            "INSERT INTO accounts_offset (journal, epoch, last_seq) VALUES ('accounts', $1, $2)
             ON CONFLICT (journal) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq,
                 updated_at = now()",
            &[&(batch.epoch as i64), &(last_seq as i64)],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Refuses a batch that does not continue exactly where the database stands.
async fn check_offsets(transaction: &Transaction<'_>, shards: &BTreeMap<u32, ShardRange>) -> Result<(), StoreError> {
    let ids: Vec<i32> = shards.keys().map(|&s| s as i32).collect();
    let rows = transaction
        .query("SELECT shard, last_seq FROM projection_offsets WHERE shard = ANY($1) FOR UPDATE", &[&ids])
        .await?;
    let stored: BTreeMap<u32, i64> = rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1))).collect();
    for (&shard, range) in shards {
        let found = stored.get(&shard).copied();
        let continues = match found {
            Some(last_seq) => last_seq as u64 + 1 == range.first_seq,
            // A shard the database has never seen: the projector starts it at the journal's start.
            None => true,
        };
        if !continues {
            return Err(StoreError::Fenced { shard, found, first_seq: range.first_seq });
        }
    }
    Ok(())
}

async fn copy_orders(transaction: &Transaction<'_>, orders: impl Iterator<Item = &OrderRow>) -> Result<(), StoreError> {
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ];
    let rows = orders.map(|r| {
        vec![
            &r.order_id as &(dyn ToSql + Sync),
            &r.portfolio_id,
            &r.symbol_id,
            &r.side,
            &r.kind,
            &r.time_in_force,
            &r.price_ticks,
            &r.qty_lots,
            &r.open_lots,
            &r.filled_lots,
            &r.status,
            &r.cancel_reason,
            &r.client_order_id,
            &r.expire_at_ns,
            &r.accepted_at_ns,
            &r.updated_at_ns,
            &r.shard,
            &r.accepted_seq,
            &r.last_seq,
            &r.trigger_kind,
            &r.trigger_price_ticks,
            &r.trail_ticks,
            &r.trail_bps,
            &r.trail_best_ticks,
            &r.parent_order_id,
            &r.oco_order_id,
            &r.triggered_at_ns,
            &r.triggered_price_ticks,
            &r.grown_seq,
        ]
    });
    copy_rows(transaction, "stage_orders", &types, rows).await
}

async fn copy_order_updates(transaction: &Transaction<'_>, batch: &Batch) -> Result<(), StoreError> {
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::BOOL,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ];
    let rows = batch.order_updates.values().map(|u| {
        vec![
            &u.order_id as &(dyn ToSql + Sync),
            &u.first_seq,
            &u.last_seq,
            &u.price_ticks,
            &u.open_base_lots,
            &u.open_minus_lots,
            &u.filled_lots,
            &u.cancel_reason,
            &u.updated_at_ns,
            &u.kind,
            &u.time_in_force,
            &u.qty_lots,
            &u.activated,
            &u.oco_order_id,
            &u.triggered_at_ns,
            &u.triggered_price_ticks,
            &u.waiting_until_seq,
        ]
    });
    copy_rows(transaction, "stage_order_updates", &types, rows).await
}

async fn copy_rows<'a>(
    transaction: &Transaction<'_>,
    table: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<&'a (dyn ToSql + Sync)>>,
) -> Result<(), StoreError> {
    let sink = transaction.copy_in(&format!("COPY {table} FROM STDIN (FORMAT binary)")).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for row in rows {
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}
