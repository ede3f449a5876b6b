-- simex projection schema, version 2: users and portfolios from the gateway's accounts journal
-- (`<data>/accounts`), projected exactly once like the shards: the rows and `accounts_offset`
-- change in one transaction. Replaces version 1's `users`/`portfolio_owners`, which nothing fed.
-- No secret (API key hash, password hash) is ever stored here.

DROP TABLE users;
DROP TABLE portfolio_owners;

-- Where the projection stands in the accounts journal (one row at most).
CREATE TABLE accounts_offset (
    journal    TEXT PRIMARY KEY CHECK (journal = 'accounts'),
    epoch      INT8 NOT NULL,
    last_seq   INT8 NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    user_id       INT8 PRIMARY KEY,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at_ns INT8 NOT NULL,
    seq           INT8 NOT NULL
);

-- A user's portfolio as the API names it. engine_portfolio_id is the engine portfolio behind it
-- (the `portfolio_id` of orders, fills and positions); a reset moves it to a fresh one.
CREATE TABLE user_portfolios (
    portfolio_id            INT8 PRIMARY KEY,
    user_id                 INT8 NOT NULL,
    name                    TEXT NOT NULL,
    starting_balance_micros INT8 NOT NULL,
    engine_portfolio_id     INT8 NOT NULL,
    created_at_ns           INT8 NOT NULL,
    updated_at_ns           INT8 NOT NULL,
    seq                     INT8 NOT NULL
);
CREATE INDEX user_portfolios_by_user ON user_portfolios (user_id, portfolio_id);
CREATE INDEX user_portfolios_by_engine ON user_portfolios (engine_portfolio_id);
