-- simex projection schema, version 4: conditional orders (stops, take-profits, trailing stops,
-- bracket exits, OCO links, orders in flight under a latency model) are order rows from their
-- `ConditionalAccepted` on, in status 'waiting_trigger' until the `OrderAccepted` that follows
-- their trigger turns the same row into a book order. Existing rows are plain orders: the defaults
-- say "not conditional".
--
-- trigger_price_ticks is a stop's or take-profit's trigger price, a trailing stop's current stop
-- price (following trail_best_ticks, the best trade price since acceptance). grown_seq is the
-- sequence of the newest fill of a bracket entry counted in its exit's quantity (accepted_seq
-- before any), so an entry fill grows an exit exactly once.
ALTER TABLE orders
    ADD COLUMN trigger_kind          TEXT NOT NULL DEFAULT 'none',
    ADD COLUMN trigger_price_ticks   INT8 NOT NULL DEFAULT 0,
    ADD COLUMN trail_ticks           INT8 NOT NULL DEFAULT 0,
    ADD COLUMN trail_bps             INT8 NOT NULL DEFAULT 0,
    ADD COLUMN trail_best_ticks      INT8 NOT NULL DEFAULT 0,
    ADD COLUMN parent_order_id       INT8 NOT NULL DEFAULT 0,
    ADD COLUMN oco_order_id          INT8 NOT NULL DEFAULT 0,
    ADD COLUMN triggered_at_ns       INT8,
    ADD COLUMN triggered_price_ticks INT8,
    ADD COLUMN grown_seq             INT8 NOT NULL DEFAULT 0;

-- Bracket exits by entry, and waiting trailing stops by symbol: what entry fills and trade prices
-- of a batch update with one statement each.
CREATE INDEX orders_exits_by_parent ON orders (parent_order_id) WHERE parent_order_id <> 0;
CREATE INDEX orders_waiting_trailing_by_symbol ON orders (symbol_id)
    WHERE trigger_kind = 'trailing_stop' AND status = 'waiting_trigger';
