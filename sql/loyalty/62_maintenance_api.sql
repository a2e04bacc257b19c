-- ---------------------------------------------------------------------------
-- Maintenance
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.run_maintenance(now timestamptz DEFAULT now(), max_members integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_run_maintenance'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.run_maintenance(timestamptz, integer) IS
    'release pending points and expire due lots for members due by `now`';

-- Runs maintenance in batches, committing after each, so that no member row
-- stays locked for longer than one batch. Call it with CALL, outside a
-- transaction block (pg_cron does this). A procedure that commits cannot
-- carry a SET clause, so its body qualifies every operator and type instead.
CREATE PROCEDURE loyalty.maintain(now timestamptz DEFAULT now(), batch_size integer DEFAULT 50)
    LANGUAGE plpgsql
AS $$
DECLARE
    r pg_catalog.jsonb;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'LY038';
    END IF;
    LOOP
        r := loyalty.run_maintenance(now, batch_size);
        COMMIT;
        EXIT WHEN (r OPERATOR(pg_catalog.->>) 'members')::pg_catalog.int8 OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

