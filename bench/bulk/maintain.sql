-- run_maintenance in batches of :batch members, one transaction each (what
-- loyalty.maintain does), timing each batch: a member row is locked at most
-- for its batch. Prints batches, the longest batch in ms, and members swept.
SELECT set_config('bench.now', :'now', false), set_config('bench.batch', :'batch', false);
DO $$
DECLARE
    r jsonb; t0 timestamptz; ms float8; mx float8 := 0; nb int := 0; tot bigint := 0;
BEGIN
    LOOP
        t0 := clock_timestamp();
        r := loyalty.run_maintenance(current_setting('bench.now')::timestamptz,
                                     current_setting('bench.batch')::int);
        COMMIT;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        nb := nb + 1; mx := greatest(mx, ms); tot := tot + (r ->> 'members')::bigint;
        EXIT WHEN (r ->> 'members')::int = 0;
    END LOOP;
    RAISE NOTICE 'batches=% max_batch_ms=% members=%', nb, round(mx::numeric, 1), tot;
END
$$;
