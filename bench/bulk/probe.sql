-- A waiter's view of maintenance: lock random members of a program with a 100 ms
-- lock_timeout until bench_flag says stop; counts the locks that waited longer.
SELECT set_config('bench.program', :'program', false);
DO $$
DECLARE
    n int := 0; slow int := 0; lo bigint; hi bigint;
BEGIN
    SELECT min(m.id), max(m.id) INTO lo, hi FROM loyalty.member m
      JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = current_setting('bench.program');
    PERFORM set_config('lock_timeout', '100ms', false);
    WHILE NOT (SELECT done FROM bench_flag) LOOP
        BEGIN
            PERFORM 1 FROM loyalty.member WHERE id = lo + floor(random() * (hi - lo + 1))::bigint FOR UPDATE;
        EXCEPTION WHEN lock_not_available THEN
            slow := slow + 1;
        END;
        COMMIT;
        n := n + 1;
        PERFORM pg_sleep(0.02);
    END LOOP;
    RAISE NOTICE 'probe locks=% waited_over_100ms=%', n, slow;
END
$$;
