-- ---------------------------------------------------------------------------
-- Report rollups (issue 7): what program_kpis and cohort_retention read instead of
-- scanning the whole ledger
-- ---------------------------------------------------------------------------
--
-- The rollups hold every ledger entry with id <= rollup_state.hwm, bucketed by the local
-- day (program time zone) of its business time `at`; the reports add the entries above
-- the high-water mark (the tail, found through the BRIN index on entry.id) and, for a
-- period that does not start or end at a local midnight, the entries of the partial days
-- at its edges (through the BRIN index on entry.at). An operation dated in the past
-- (business time `at` in a day already rolled up) arrives above the high-water mark, so it
-- is in the tail until the next roll-up adds it to its own day: late operations are
-- counted exactly, at every moment.
--
-- Nothing here is written by the operations: the earn path is unchanged (no counter row
-- that every till would update). run_maintenance calls loyalty.run_rollups() at its end.
--
-- Which entries can be rolled up: entry ids come from a sequence, so an id can be taken by
-- a transaction that commits after a larger id is visible. A run therefore only records a
-- candidate high-water mark (the sequence's position, then the snapshot's xmax read after
-- it); a later run rolls the candidate up once every transaction that was running then has
-- ended (the current snapshot's xmin has passed that xmax). This relies on every entry id
-- being drawn under its member's row lock (so its transaction already has an xid), which
-- the C core does (ly_entry_init, ly_sweep).

-- BRIN: no per-row index entry, so the write path does not pay for them; the ledger is
-- appended in id order, and business time mostly follows it.
CREATE INDEX entry_id_brin ON loyalty.entry USING brin (id) WITH (pages_per_range = 32);
CREATE INDEX entry_at_brin ON loyalty.entry USING brin (at) WITH (pages_per_range = 32);
-- liability's expiring points: the open lots expiring within 90 days, as a range. Lots are
-- appended as points are earned and their expiry follows (earn time + the expiry months,
-- or a fixed date), so the table is nearly in expires_at order; a B-tree on expires_at
-- would put every new lot at its right edge (a hot spot on the earn path, which has none:
-- the lot's primary key starts with member_id), a BRIN index costs the insert nothing.
CREATE INDEX lot_expiry_brin ON loyalty.lot USING brin (expires_at) WITH (pages_per_range = 32);

CREATE TABLE loyalty.rollup_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    hwm        bigint NOT NULL DEFAULT 0,   -- entries with id <= hwm are in the rollups
    next_hwm   bigint,                      -- candidate: the sequence's position at the last run
    next_xmax  xid8,                        -- the snapshot xmax read after it
    rolled_at  timestamptz                  -- when the high-water mark last moved
);
INSERT INTO loyalty.rollup_state DEFAULT VALUES;

-- Per program and local day: the sums of program_kpis.
CREATE TABLE loyalty.rollup_day (
    program_id   bigint NOT NULL,
    day          date NOT NULL,
    issued       bigint NOT NULL,
    redeemed     bigint NOT NULL,
    expired      bigint NOT NULL,
    reversed     bigint NOT NULL,
    adjusted_out bigint NOT NULL,
    purchases    bigint NOT NULL,
    spend        numeric NOT NULL,
    PRIMARY KEY (program_id, day)
);

-- Per program, local year and member: which days of the year the member was active (earn
-- or redeem) and bought on, as bitmaps (bit i = the year's day i, from 0). One compact row
-- per member and year instead of one per member and active day: program_kpis counts the
-- active members, purchasers and repeat purchasers of any run of whole days from these
-- rows and a mask of the period's days. A purchase is an earn entry; purchasers need one,
-- repeat purchasers two, so a day's count is kept as "at least one" (buy1) and "at least
-- two" (buy2): the sum over days of min(purchases, 2), which is bit_count(buy1 & mask) +
-- bit_count(buy2 & mask), is >= 1 or >= 2 exactly when the purchases are. `weeks` (bit i =
-- the i-th week starting on a Monday of this year, the week of date_trunc('week')) and
-- `months` (bit i = month i + 1) de-duplicate the cohort counts and the tail: a week that
-- starts in December is kept in that year's row even for a day of January.
CREATE TABLE loyalty.rollup_member_year (
    program_id bigint NOT NULL,
    year       date NOT NULL,          -- local January 1
    member_id  bigint NOT NULL,
    active     bit(366) NOT NULL,      -- days with an earn or redeem
    buy1       bit(366) NOT NULL,      -- days with at least one earn
    buy2       bit(366) NOT NULL,      -- days with at least two earns
    weeks      bit(53) NOT NULL,       -- weeks (by their Monday in this year) with an earn or redeem
    months     bit(12) NOT NULL,       -- months with an earn or redeem
    PRIMARY KEY (program_id, year, member_id)
);

-- Per program, period kind, cohort (the member's enrolment period) and activity period:
-- the members of the cohort active in it. The triangles of cohort_retention, ready to read.
CREATE TABLE loyalty.rollup_cohort (
    program_id bigint NOT NULL,
    period     text NOT NULL CHECK (period IN ('week', 'month', 'quarter', 'year')),
    cohort     date NOT NULL,
    bucket     date NOT NULL,
    members    bigint NOT NULL,
    PRIMARY KEY (program_id, period, cohort, bucket)
);

COMMENT ON TABLE loyalty.rollup_state IS
    'the rollups hold every entry with id <= hwm; next_hwm/next_xmax: the candidate the next run may roll up';
COMMENT ON TABLE loyalty.rollup_day IS
    'per program and local day of business time: points issued, redeemed (net of reward_refund), expired '
    '(expire entries), reversed, adjusted out, purchases and spend (earn amounts minus refunded amounts)';
COMMENT ON TABLE loyalty.rollup_member_year IS
    'per program, local year and member with activity: bitmaps of the days with an earn or redeem (active), '
    'with at least one earn (buy1) and at least two (buy2), of the weeks starting in the year and of the months '
    'with an earn or redeem';
COMMENT ON TABLE loyalty.rollup_cohort IS
    'per program, period (week, month, quarter, year), enrolment period and activity period (local): how many '
    'members of the cohort were active';

-- Roll up the entries the last run saw, once no transaction that could still add an entry
-- below them is running. Idempotent: the high-water mark moves in the same transaction as
-- the rows it accounts for. Concurrent runs do not wait: the second returns at once.
-- The entries go in statements of at most chunk_entries each, in id order, so that the
-- backend's memory does not grow with the run: one statement for all of them kept every
-- entry in memory (CTE b, read three times: about 100 bytes an entry, 19 MB for 150 000)
-- beside a hash of every member (7 MB at 100 000), a peak the allocator then kept for the
-- session. Chunks give the same rows: the sums add up, the bitmaps OR, buy2 takes old buy1
-- & new buy1 and a cohort pair counts when its bit is new, as between two runs (each
-- statement sees the previous one's rows; 22_report_rollups compares).
CREATE FUNCTION loyalty.run_rollups(chunk_entries integer DEFAULT 20000) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = on          -- run_maintenance turns it off for its member lookups
    SET work_mem = '256MB'           -- the groupings stay in memory (a chunk needs a few MB)
    SET jit = off                    -- a chunk's plan passes jit_above_cost: 140 ms and 20 MB of LLVM per chunk
AS $$
DECLARE
    st     loyalty.rollup_state;
    n      bigint := 0;
    seq    bigint;
    called boolean;
    lo     bigint;
    hi     bigint;
    k      bigint;
    chunk  integer := greatest(coalesce(chunk_entries, 20000), 1);
BEGIN
    -- the candidate's safety argument needs a new snapshot per statement
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN jsonb_build_object('rolled_entries', 0, 'hwm', NULL, 'skipped', 'isolation');
    END IF;
    SELECT * INTO st FROM loyalty.rollup_state FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('rolled_entries', 0, 'hwm', NULL, 'skipped', 'busy');
    END IF;

    IF st.next_hwm IS NOT NULL AND pg_snapshot_xmin(pg_current_snapshot()) >= st.next_xmax THEN
        lo := st.hwm;
        WHILE lo < st.next_hwm LOOP
            -- a range of ids (no B-tree leads with entry.id; its BRIN index finds the
            -- range): at most chunk entries, fewer where rolled-back operations left gaps
            hi := least(lo + chunk, st.next_hwm);
            EXECUTE $q$
            WITH b AS (
                SELECT e.member_id, m.program_id, e.kind, e.points, e.amount,
                       (e.at AT TIME ZONE p.timezone)::date AS day,
                       m.enrolled_at AT TIME ZONE p.timezone AS enrolled
                  FROM loyalty.entry e
                  -- the chunk's members by key (OFFSET 0: not flattened), not a hash of
                  -- every member (7 MB at 100 000 members, and a scan of them per chunk)
                  CROSS JOIN LATERAL (SELECT m.program_id, m.enrolled_at FROM loyalty.member m
                                       WHERE m.id = e.member_id OFFSET 0) m
                  JOIN loyalty.program p ON p.id = m.program_id
                 WHERE e.id > $1 AND e.id <= $2
            ), days AS (
                INSERT INTO loyalty.rollup_day AS r
                SELECT b.program_id, b.day,
                       coalesce(sum(b.points) FILTER (WHERE b.kind IN ('earn', 'award', 'subscribe', 'renew')
                                                         OR (b.kind = 'adjust' AND b.points > 0)), 0),
                       coalesce(-sum(b.points) FILTER (WHERE b.kind IN ('redeem', 'reward_refund')), 0),
                       coalesce(-sum(b.points) FILTER (WHERE b.kind = 'expire'), 0),
                       coalesce(-sum(b.points) FILTER (WHERE b.kind = 'reverse'), 0),
                       coalesce(-sum(b.points) FILTER (WHERE b.kind = 'adjust' AND b.points < 0), 0),
                       count(*) FILTER (WHERE b.kind = 'earn'),
                       coalesce(sum(b.amount) FILTER (WHERE b.kind = 'earn'), 0)
                         - coalesce(sum(b.amount) FILTER (WHERE b.kind = 'reverse'), 0)
                  FROM b GROUP BY b.program_id, b.day
                ON CONFLICT (program_id, day) DO UPDATE
                   SET issued = r.issued + excluded.issued, redeemed = r.redeemed + excluded.redeemed,
                       expired = r.expired + excluded.expired, reversed = r.reversed + excluded.reversed,
                       adjusted_out = r.adjusted_out + excluded.adjusted_out,
                       purchases = r.purchases + excluded.purchases, spend = r.spend + excluded.spend
            ), act AS (
                -- per member and local day with an earn or redeem: the purchases
                SELECT b.program_id, b.member_id, b.day, b.enrolled, count(*) FILTER (WHERE b.kind = 'earn') AS k,
                       date_trunc('year', b.day::timestamp)::date AS y,
                       date_trunc('week', b.day::timestamp)::date AS w
                  FROM b WHERE b.kind IN ('earn', 'redeem')
                 GROUP BY b.program_id, b.member_id, b.day, b.enrolled
            ), words AS (
                -- the batch's bits per member and year row, as 64-bit words: bit i of a
                -- bitmap is bit 63 - i % 64 of word i / 64 (bit_or on bigint allocates
                -- nothing per row; grouped by word first, then pivoted). A week goes to the
                -- row of the year its Monday is in.
                SELECT y.program_id, y.year, y.member_id, y.enrolled,
                       bit_or(y.a) FILTER (WHERE y.wi = 0) AS a0,
                       bit_or(y.a) FILTER (WHERE y.wi = 1) AS a1,
                       bit_or(y.a) FILTER (WHERE y.wi = 2) AS a2,
                       bit_or(y.a) FILTER (WHERE y.wi = 3) AS a3,
                       bit_or(y.a) FILTER (WHERE y.wi = 4) AS a4,
                       bit_or(y.a) FILTER (WHERE y.wi = 5) AS a5,
                       bit_or(y.b) FILTER (WHERE y.wi = 0) AS b0,
                       bit_or(y.b) FILTER (WHERE y.wi = 1) AS b1,
                       bit_or(y.b) FILTER (WHERE y.wi = 2) AS b2,
                       bit_or(y.b) FILTER (WHERE y.wi = 3) AS b3,
                       bit_or(y.b) FILTER (WHERE y.wi = 4) AS b4,
                       bit_or(y.b) FILTER (WHERE y.wi = 5) AS b5,
                       bit_or(y.c) FILTER (WHERE y.wi = 0) AS c0,
                       bit_or(y.c) FILTER (WHERE y.wi = 1) AS c1,
                       bit_or(y.c) FILTER (WHERE y.wi = 2) AS c2,
                       bit_or(y.c) FILTER (WHERE y.wi = 3) AS c3,
                       bit_or(y.c) FILTER (WHERE y.wi = 4) AS c4,
                       bit_or(y.c) FILTER (WHERE y.wi = 5) AS c5,
                       coalesce(bit_or(y.wk), 0) AS wk,
                       coalesce(bit_or(y.mo), 0) AS mo
                  FROM (SELECT a.program_id, a.y AS year, a.member_id, a.enrolled, (a.day - a.y) / 64 AS wi,
                               bit_or(1::bigint << (63 - (a.day - a.y) % 64)) AS a,
                               bit_or(1::bigint << (63 - (a.day - a.y) % 64)) FILTER (WHERE a.k >= 1) AS b,
                               bit_or(1::bigint << (63 - (a.day - a.y) % 64)) FILTER (WHERE a.k >= 2) AS c,
                               NULL::bigint AS wk,
                               bit_or(1::bigint << (64 - extract(month FROM a.day)::int)) AS mo
                          FROM act a
                         GROUP BY 1, 2, 3, 4, 5
                        UNION ALL
                        SELECT a.program_id, date_trunc('year', a.w::timestamp)::date, a.member_id, a.enrolled, -1,
                               NULL, NULL, NULL,
                               bit_or(1::bigint << (63 - (a.w - date_trunc('year', a.w::timestamp)::date) / 7)), NULL
                          FROM act a
                         GROUP BY 1, 2, 3, 4) y
                 GROUP BY y.program_id, y.year, y.member_id, y.enrolled
            ), bits AS (
                -- with the row's bits before this run (this statement's snapshot: the upsert
                -- below is not visible here), as words too
                SELECT x.*, coalesce(o.weeks::bit(64)::bigint, 0) AS old_wk, coalesce(o.months::bit(64)::bigint, 0) AS old_mo
                  FROM words x
                  LEFT JOIN loyalty.rollup_member_year o
                    ON o.program_id = x.program_id AND o.year = x.year AND o.member_id = x.member_id
            ), years AS (
                -- a day bought on in two runs has two purchases: buy2 gains old buy1 & new buy1
                INSERT INTO loyalty.rollup_member_year AS r
                SELECT x.program_id, x.year, x.member_id,
                       (coalesce(x.a0, 0)::bit(64) || coalesce(x.a1, 0)::bit(64) || coalesce(x.a2, 0)::bit(64) || coalesce(x.a3, 0)::bit(64) || coalesce(x.a4, 0)::bit(64) || coalesce(x.a5, 0)::bit(64))::bit(366),
                       (coalesce(x.b0, 0)::bit(64) || coalesce(x.b1, 0)::bit(64) || coalesce(x.b2, 0)::bit(64) || coalesce(x.b3, 0)::bit(64) || coalesce(x.b4, 0)::bit(64) || coalesce(x.b5, 0)::bit(64))::bit(366),
                       (coalesce(x.c0, 0)::bit(64) || coalesce(x.c1, 0)::bit(64) || coalesce(x.c2, 0)::bit(64) || coalesce(x.c3, 0)::bit(64) || coalesce(x.c4, 0)::bit(64) || coalesce(x.c5, 0)::bit(64))::bit(366),
                       x.wk::bit(64)::bit(53), x.mo::bit(64)::bit(12)
                  FROM bits x
                ON CONFLICT (program_id, year, member_id) DO UPDATE
                   SET active = r.active | excluded.active, buy1 = r.buy1 | excluded.buy1,
                       buy2 = r.buy2 | excluded.buy2 | (r.buy1 & excluded.buy1),
                       weeks = r.weeks | excluded.weeks, months = r.months | excluded.months
            ), pairs AS (
                -- the (member, period) pairs this run makes active: a week or month bit not
                -- set before; a quarter or year with activity now and none before
                SELECT x.program_id, x.enrolled, 'week' AS period,
                       x.year + (8 - extract(isodow FROM x.year)::int) % 7 + 7 * i AS bucket
                  FROM bits x CROSS JOIN generate_series(0, 52) i
                 WHERE x.wk & ~x.old_wk & (1::bigint << (63 - i)) <> 0
                UNION ALL
                SELECT x.program_id, x.enrolled, 'month', (x.year + make_interval(months => i))::date
                  FROM bits x CROSS JOIN generate_series(0, 11) i
                 WHERE x.mo <> 0 AND x.mo & ~x.old_mo & (1::bigint << (63 - i)) <> 0
                UNION ALL
                SELECT x.program_id, x.enrolled, 'quarter', (x.year + make_interval(months => 3 * q))::date
                  FROM bits x CROSS JOIN generate_series(0, 3) q
                 WHERE x.mo & (7::bigint << (61 - 3 * q)) <> 0 AND x.old_mo & (7::bigint << (61 - 3 * q)) = 0
                UNION ALL
                SELECT x.program_id, x.enrolled, 'year', x.year
                  FROM bits x WHERE x.mo <> 0 AND x.old_mo = 0
            ), cohorts AS (
                INSERT INTO loyalty.rollup_cohort AS r
                SELECT x.program_id, x.period, date_trunc(x.period, x.enrolled)::date, x.bucket, count(*)
                  FROM pairs x
                 GROUP BY 1, 2, 3, 4
                ON CONFLICT (program_id, period, cohort, bucket) DO UPDATE SET members = r.members + excluded.members
            )
            SELECT count(*) FROM b
            $q$ INTO k USING lo, hi;
            n := n + k;
            lo := hi;
        END LOOP;
        IF st.next_hwm > st.hwm THEN
            UPDATE loyalty.rollup_state SET hwm = st.next_hwm, rolled_at = now();
            st.hwm := st.next_hwm;
        END IF;
        st.next_hwm := NULL;
    END IF;

    -- Record the next candidate (unless one is still waiting): first the sequence's
    -- position, then, in a later statement and so a later snapshot, its xmax.
    IF st.next_hwm IS NULL THEN
        SELECT s.last_value, s.is_called INTO seq, called FROM loyalty.entry_id_seq s;
        UPDATE loyalty.rollup_state
           SET next_hwm = CASE WHEN called THEN seq ELSE 0 END,
               next_xmax = pg_snapshot_xmax(pg_current_snapshot());
    END IF;
    RETURN jsonb_build_object('rolled_entries', n, 'hwm', st.hwm);
END
$$;
COMMENT ON FUNCTION loyalty.run_rollups(integer) IS
    'roll the ledger entries up to the candidate high-water mark of the previous run into the report rollups, '
    'at most chunk_entries per statement (called by run_maintenance; idempotent; concurrent runs skip); '
    'returns rolled_entries and hwm';

-- Start the rollups again from the ledger (after a program's time zone changed, which moves
-- its local days). The reports stay exact meanwhile: everything is in the tail.
CREATE FUNCTION loyalty.reset_rollups() RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM FROM loyalty.rollup_state FOR UPDATE;
    DELETE FROM loyalty.rollup_day;
    DELETE FROM loyalty.rollup_member_year;
    DELETE FROM loyalty.rollup_cohort;
    UPDATE loyalty.rollup_state SET hwm = 0, next_hwm = NULL, next_xmax = NULL, rolled_at = NULL;
END
$$;
COMMENT ON FUNCTION loyalty.reset_rollups() IS
    'empty the report rollups and set the high-water mark to 0 (run_maintenance rebuilds them); '
    'needed after a program''s time zone changes';

-- The high-water mark the reports use: 0 (read everything from the ledger) when the session
-- sets loyalty.reports_direct = on, which the tests use to compare both paths.
CREATE FUNCTION loyalty.report_hwm() RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN current_setting('loyalty.reports_direct', true) = 'on' THEN 0 ELSE s.hwm END
      FROM loyalty.rollup_state s;
END;
COMMENT ON FUNCTION loyalty.report_hwm() IS
    'the rollup high-water mark the reports use (0 when loyalty.reports_direct = on: ledger only)';

REVOKE EXECUTE ON FUNCTION loyalty.run_rollups(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.reset_rollups() FROM PUBLIC;
