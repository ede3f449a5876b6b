-- simex projection schema, version 1. Every money column is in micros, prices in ticks, quantities
-- in lots, times in nanoseconds since the Unix epoch (venue time), as in the engine.

-- Where the projection stands in each shard's journal; written in the same transaction as the rows.
CREATE TABLE projection_offsets (
    shard             INT4 PRIMARY KEY,
    epoch             INT8 NOT NULL,
    last_seq          INT8 NOT NULL,
    last_timestamp_ns INT8 NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE portfolios (
    portfolio_id         INT8 PRIMARY KEY,
    starting_cash_micros INT8 NOT NULL,
    created_at_ns        INT8 NOT NULL,
    shard                INT4 NOT NULL,
    seq                  INT8 NOT NULL
);
CREATE INDEX portfolios_by_shard_seq ON portfolios (shard, seq);

CREATE TABLE cash_adjustments (
    shard        INT4 NOT NULL,
    seq          INT8 NOT NULL,
    portfolio_id INT8 NOT NULL,
    delta_micros INT8 NOT NULL,
    timestamp_ns INT8 NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE INDEX cash_adjustments_by_portfolio ON cash_adjustments (portfolio_id, timestamp_ns);

-- The latest state of every accepted order. open_lots is what still rests (0 once filled or
-- cancelled); status is open, partially_filled, filled or cancelled.
CREATE TABLE orders (
    order_id         INT8 PRIMARY KEY,
    portfolio_id     INT8 NOT NULL,
    symbol_id        INT4 NOT NULL,
    side             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    time_in_force    TEXT NOT NULL,
    price_ticks      INT8 NOT NULL,
    qty_lots         INT8 NOT NULL,
    open_lots        INT8 NOT NULL,
    filled_lots      INT8 NOT NULL,
    status           TEXT NOT NULL,
    cancel_reason    TEXT,
    client_order_id  TEXT,
    expire_at_ns     INT8 NOT NULL,
    accepted_at_ns   INT8 NOT NULL,
    updated_at_ns    INT8 NOT NULL,
    shard            INT4 NOT NULL,
    accepted_seq     INT8 NOT NULL,
    last_seq         INT8 NOT NULL
);
CREATE INDEX orders_by_portfolio ON orders (portfolio_id, order_id);
CREATE INDEX orders_by_shard_seq ON orders (shard, last_seq);

CREATE TABLE fills (
    shard              INT4 NOT NULL,
    seq                INT8 NOT NULL,
    trade_id           INT8 NOT NULL,
    symbol_id          INT4 NOT NULL,
    maker_order_id     INT8 NOT NULL,
    maker_portfolio_id INT8 NOT NULL,
    taker_order_id     INT8 NOT NULL,
    taker_portfolio_id INT8 NOT NULL,
    taker_side         TEXT NOT NULL,
    price_ticks        INT8 NOT NULL,
    qty_lots           INT8 NOT NULL,
    notional_micros    INT8 NOT NULL,
    maker_fee_micros   INT8 NOT NULL,
    taker_fee_micros   INT8 NOT NULL,
    timestamp_ns       INT8 NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE INDEX fills_by_maker ON fills (maker_portfolio_id, timestamp_ns);
CREATE INDEX fills_by_taker ON fills (taker_portfolio_id, timestamp_ns);

CREATE TABLE rejections (
    shard           INT4 NOT NULL,
    seq             INT8 NOT NULL,
    portfolio_id    INT8 NOT NULL,
    order_id        INT8 NOT NULL,
    client_order_id TEXT,
    reason          TEXT NOT NULL,
    timestamp_ns    INT8 NOT NULL,
    PRIMARY KEY (shard, seq)
);

-- Per (portfolio, symbol) totals of every fill so far; net_lots is signed (short below zero).
-- A symbol lives on one shard, so last_seq (the newest fill counted) is a sequence of that shard.
CREATE TABLE positions (
    portfolio_id           INT8 NOT NULL,
    symbol_id              INT4 NOT NULL,
    net_lots               INT8 NOT NULL,
    bought_lots            INT8 NOT NULL,
    sold_lots              INT8 NOT NULL,
    bought_notional_micros INT8 NOT NULL,
    sold_notional_micros   INT8 NOT NULL,
    fees_micros            INT8 NOT NULL,
    updated_at_ns          INT8 NOT NULL,
    last_seq               INT8 NOT NULL,
    PRIMARY KEY (portfolio_id, symbol_id)
);

-- Copies of positions taken periodically; snapshot_at_ns is the venue time of the newest event
-- projected when the copy was taken.
CREATE TABLE position_snapshots (
    snapshot_at_ns         INT8 NOT NULL,
    portfolio_id           INT8 NOT NULL,
    symbol_id              INT4 NOT NULL,
    net_lots               INT8 NOT NULL,
    bought_lots            INT8 NOT NULL,
    sold_lots              INT8 NOT NULL,
    bought_notional_micros INT8 NOT NULL,
    sold_notional_micros   INT8 NOT NULL,
    fees_micros            INT8 NOT NULL,
    PRIMARY KEY (snapshot_at_ns, portfolio_id, symbol_id)
);

-- Accounts come from the gateway's account journal, not the engine's: fed through
-- `ProjectionHandle::record_account` as idempotent upserts. No secret (key, password hash) is
-- ever stored here. No foreign key from portfolio_owners to users: the two may arrive in any order.
CREATE TABLE users (
    uid           TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at_ns INT8 NOT NULL
);

CREATE TABLE portfolio_owners (
    portfolio_id INT8 PRIMARY KEY,
    uid          TEXT NOT NULL
);
