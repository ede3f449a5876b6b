-- simex projection schema, version 3: every replace of an order, so that the quantity an order
-- stands at after a replace (the lots filled before it plus the replace's quantity) can be derived,
-- also once the order is cancelled and `orders.open_lots` is 0.

CREATE TABLE order_replacements (
    shard        INT4 NOT NULL,
    seq          INT8 NOT NULL,
    order_id     INT8 NOT NULL,
    price_ticks  INT8 NOT NULL,
    qty_lots     INT8 NOT NULL,
    timestamp_ns INT8 NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE INDEX order_replacements_by_order ON order_replacements (order_id, seq);
