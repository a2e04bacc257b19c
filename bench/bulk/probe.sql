-- A waiter's view of maintenance: until bench_flag says stop, lock the member that
-- maintenance takes next (the first still due, in its order; while a batch runs, that
-- member is in it and locked) and time the wait. Counts the locks that waited longer
-- than 100 ms and prints the longest wait: how long a member row stays locked.
SELECT set_config('bench.program', :'program', false), set_config('bench.now', :'now', false);
DO $$
DECLARE
    n int := 0; slow int := 0; target bigint; t0 timestamptz; w float8; mx float8 := 0;
BEGIN
    PERFORM set_config('lock_timeout', '30s', false);
    WHILE NOT (SELECT done FROM bench_flag) LOOP
        SELECT m.id INTO target FROM loyalty.member m
          JOIN loyalty.program p ON p.id = m.program_id
         WHERE p.code = current_setting('bench.program')
           AND m.next_transition_at <= current_setting('bench.now')::timestamptz
         ORDER BY m.next_transition_at, m.id LIMIT 1;
        IF target IS NOT NULL THEN
            t0 := clock_timestamp();
            PERFORM 1 FROM loyalty.member WHERE id = target FOR UPDATE;
            w := extract(epoch FROM clock_timestamp() - t0) * 1000;
            mx := greatest(mx, w);
            IF w > 100 THEN slow := slow + 1; END IF;
            n := n + 1;
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'probe locks=% waited_over_100ms=% max_wait_ms=%', n, slow, round(mx::numeric, 1);
END
$$;
