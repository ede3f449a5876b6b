//! The projection's schema, created and migrated at start-up.
//!
//! Migrations are SQL files embedded in the binary (`migrations/NNNN_name.sql`), applied in version
//! order, each in its own transaction together with its row in `schema_migrations`, so a migration is
//! either wholly applied and recorded or not at all. A transaction-scoped advisory lock keeps two
//! starting processes from migrating at once. A database whose schema is newer than this binary
//! knows is refused rather than written to.

use tokio_postgres::Client;

/// Every migration, in order. Versions are never renumbered or edited once released; a change is a
/// new file.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (2, "accounts", include_str!("migrations/0002_accounts.sql")),
    (3, "order_replacements", include_str!("migrations/0003_order_replacements.sql")),
    (4, "conditional_orders", include_str!("migrations/0004_conditional_orders.sql")),
];

/// Advisory lock key of the migration step ("simexmig" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7369_6d65_786d_6967;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("migrating the schema: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database schema is at version {found}, newer than this simex knows ({known})")]
    TooNew { found: i32, known: i32 },
}

/// Brings the schema to the newest version; returns the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, SchemaError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INT4 PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut applied = Vec::new();
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let current: i32 =
        transaction.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
    if current > known {
        return Err(SchemaError::TooNew { found: current, known });
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        transaction.batch_execute(sql).await?;
        transaction
            .execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
            .await?;
        applied.push(version);
    }
    transaction.commit().await?;
    Ok(applied)
}

/// Per-connection staging tables that binary COPY fills and that are emptied at every commit.
pub const STAGING_TABLES: &str = "
    CREATE TEMP TABLE IF NOT EXISTS stage_portfolios (LIKE portfolios) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_cash_adjustments (LIKE cash_adjustments) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_orders (LIKE orders) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_fills (LIKE fills) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_rejections (LIKE rejections) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_order_replacements (LIKE order_replacements) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_positions (
        portfolio_id           INT8 NOT NULL,
        symbol_id              INT4 NOT NULL,
        net_lots               INT8 NOT NULL,
        bought_lots            INT8 NOT NULL,
        sold_lots              INT8 NOT NULL,
        bought_notional_micros INT8 NOT NULL,
        sold_notional_micros   INT8 NOT NULL,
        fees_micros            INT8 NOT NULL,
        updated_at_ns          INT8 NOT NULL,
        first_seq              INT8 NOT NULL,
        last_seq               INT8 NOT NULL
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_order_updates (
        order_id       INT8 NOT NULL,
        first_seq      INT8 NOT NULL,
        last_seq       INT8 NOT NULL,
        price_ticks    INT8,
        open_base_lots INT8,
        open_minus_lots INT8 NOT NULL,
        filled_lots    INT8 NOT NULL,
        cancel_reason  TEXT,
        updated_at_ns  INT8,
        kind           TEXT,
        time_in_force  TEXT,
        qty_lots       INT8,
        activated      BOOL NOT NULL,
        oco_order_id   INT8,
        triggered_at_ns INT8,
        triggered_price_ticks INT8,
        waiting_until_seq INT8
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_reference_prices (
        symbol_id   INT4 NOT NULL,
        seq         INT8 NOT NULL,
        price_ticks INT8 NOT NULL
    ) ON COMMIT DELETE ROWS;
";
