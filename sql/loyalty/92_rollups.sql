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

-- Per program, local day and member with an earn or redeem that day: the distinct counts
-- (active members, purchasers, repeat purchasers) and week cohorts.
CREATE TABLE loyalty.rollup_member_day (
    program_id bigint NOT NULL,
    day        date NOT NULL,
    member_id  bigint NOT NULL,
    purchases  integer NOT NULL,
    PRIMARY KEY (program_id, day, member_id)
);

-- Per program, local month and member active in it (earn or redeem): month, quarter and
-- year cohorts, and the de-duplication behind rollup_cohort.
CREATE TABLE loyalty.rollup_member_month (
    program_id bigint NOT NULL,
    month      date NOT NULL,
    member_id  bigint NOT NULL,
    PRIMARY KEY (program_id, month, member_id)
);

-- Per program, enrolment month and activity month: the members of the cohort active in
-- that month (the month triangle of cohort_retention, ready to read).
CREATE TABLE loyalty.rollup_cohort (
    program_id bigint NOT NULL,
    cohort     date NOT NULL,
    month      date NOT NULL,
    members    bigint NOT NULL,
    PRIMARY KEY (program_id, cohort, month)
);

COMMENT ON TABLE loyalty.rollup_state IS
    'the rollups hold every entry with id <= hwm; next_hwm/next_xmax: the candidate the next run may roll up';
COMMENT ON TABLE loyalty.rollup_day IS
    'per program and local day of business time: points issued, redeemed (net of reward_refund), expired '
    '(expire entries), reversed, adjusted out, purchases and spend (earn amounts minus refunded amounts)';
COMMENT ON TABLE loyalty.rollup_member_day IS
    'per program, local day and member with an earn or redeem entry that day: the purchases (earn entries)';
COMMENT ON TABLE loyalty.rollup_member_month IS 'per program, local month and member with an earn or redeem in it';
COMMENT ON TABLE loyalty.rollup_cohort IS
    'per program, enrolment month and activity month (local): how many members of the cohort were active';

-- Roll up the entries the last run saw, once no transaction that could still add an entry
-- below them is running. Idempotent: the high-water mark moves in the same transaction as
-- the rows it accounts for. Concurrent runs do not wait: the second returns at once.
CREATE FUNCTION loyalty.run_rollups() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = on          -- run_maintenance turns it off for its member lookups
    SET work_mem = '256MB'           -- a first run groups the whole ledger
AS $$
DECLARE
    st     loyalty.rollup_state;
    n      bigint := 0;
    seq    bigint;
    called boolean;
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
        IF st.next_hwm > st.hwm THEN
            EXECUTE $q$
            WITH b AS (
                SELECT e.member_id, m.program_id, e.kind, e.points, e.amount,
                       (e.at AT TIME ZONE p.timezone)::date AS day
                  FROM loyalty.entry e
                  JOIN loyalty.member m ON m.id = e.member_id
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
            ), member_days AS (
                INSERT INTO loyalty.rollup_member_day AS r
                SELECT b.program_id, b.day, b.member_id, count(*) FILTER (WHERE b.kind = 'earn')
                  FROM b WHERE b.kind IN ('earn', 'redeem')
                 GROUP BY b.program_id, b.day, b.member_id
                ON CONFLICT (program_id, day, member_id) DO UPDATE SET purchases = r.purchases + excluded.purchases
            ), months AS (
                INSERT INTO loyalty.rollup_member_month
                SELECT DISTINCT b.program_id, date_trunc('month', b.day)::date, b.member_id
                  FROM b WHERE b.kind IN ('earn', 'redeem')
                ON CONFLICT DO NOTHING
                RETURNING program_id, month, member_id
            ), cohorts AS (
                INSERT INTO loyalty.rollup_cohort AS r
                SELECT x.program_id, date_trunc('month', m.enrolled_at AT TIME ZONE p.timezone)::date, x.month, count(*)
                  FROM months x
                  JOIN loyalty.member m ON m.id = x.member_id
                  JOIN loyalty.program p ON p.id = x.program_id
                 GROUP BY 1, 2, 3
                ON CONFLICT (program_id, cohort, month) DO UPDATE SET members = r.members + excluded.members
            )
            SELECT count(*) FROM b
            $q$ INTO n USING st.hwm, st.next_hwm;
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
COMMENT ON FUNCTION loyalty.run_rollups() IS
    'roll the ledger entries up to the candidate high-water mark of the previous run into the report rollups '
    '(called by run_maintenance; idempotent; concurrent runs skip); returns rolled_entries and hwm';

-- Start the rollups again from the ledger (after a program's time zone changed, which moves
-- its local days). The reports stay exact meanwhile: everything is in the tail.
CREATE FUNCTION loyalty.reset_rollups() RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM FROM loyalty.rollup_state FOR UPDATE;
    DELETE FROM loyalty.rollup_day;
    DELETE FROM loyalty.rollup_member_day;
    DELETE FROM loyalty.rollup_member_month;
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

REVOKE EXECUTE ON FUNCTION loyalty.run_rollups() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.reset_rollups() FROM PUBLIC;
