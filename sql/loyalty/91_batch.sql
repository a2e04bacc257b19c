-- ---------------------------------------------------------------------------
-- Bulk ingestion (C, src/batch.c)
-- ---------------------------------------------------------------------------

-- One row per purchase of a batch: its position in the batch's order (member,
-- at, idempotency_key), its key, and the receipt earn returned for it.
CREATE TYPE loyalty.batch_receipt AS (
    n               bigint,
    idempotency_key text,
    entry_id        bigint,
    member_id       bigint,
    points          bigint,
    available       bigint,
    pending         bigint,
    tier            text,
    replayed        boolean
);

CREATE FUNCTION loyalty.earn_batch(purchases regclass)
    RETURNS SETOF loyalty.batch_receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_earn_batch'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.earn_batch(regclass) IS
    'earn for every row of a purchases table (member, amount, idempotency_key[, at][, attrs]), in member order; one transaction';
