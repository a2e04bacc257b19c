-- test/load/setup.sql: the schema the load and crash tests drive loyalty with (schema lt).
--
--   psql -v members=N -v base="'2026-11-20 00:00+00'" -v speed=N -f setup.sql
--
-- Two programs so the load crosses both code paths that differ most:
--   la  rolling expiry (1 month), 1 pending day, negative_balance deny, tiers on points,
--       rolling 12-month window, Europe/Paris
--   lb  end_of_period expiry (1 month, month), no pending, negative_balance allow (debts),
--       tiers on spend, calendar-year window with one_step downgrades and 3 grace days,
--       America/New_York
-- Members alternate between them (lt.mem.idx odd: la, even: lb). Business time is a fast
-- clock (lt.bnow(): :speed business seconds per real second from :base) so pending points
-- are released, lots expire, and a year end (tier reviews) passes while the test runs.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS loyalty;
CREATE SCHEMA lt;

CREATE TABLE lt.clock (t0 double precision NOT NULL, base timestamptz NOT NULL, speed double precision NOT NULL);
INSERT INTO lt.clock VALUES (extract(epoch FROM clock_timestamp()), :base, :speed);

CREATE FUNCTION lt.bnow() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
    SELECT base + make_interval(secs => (extract(epoch FROM clock_timestamp()) - t0) * speed) FROM lt.clock
$$;

SELECT loyalty.create_program('la', 'Load A', '{"timezone": "Europe/Paris", "pending_days": 1,
    "expiry": {"policy": "rolling", "months": 1}, "negative_balance": "deny",
    "tier_basis": "points", "tier_window": {"rolling_months": 12}}');
SELECT loyalty.add_tier('la', 'base', 'Base', 0);
SELECT loyalty.add_tier('la', 'silver', 'Silver', 300, 1.25);
SELECT loyalty.add_tier('la', 'gold', 'Gold', 1500, 1.5);
SELECT loyalty.create_program('lb', 'Load B', '{"timezone": "America/New_York",
    "expiry": {"policy": "end_of_period", "months": 1, "period": "month"}, "negative_balance": "allow",
    "rounding": "round", "tier_basis": "spend", "tier_window": "calendar_year",
    "downgrade": "one_step", "grace_days": 3}');
SELECT loyalty.add_tier('lb', 'base', 'Base', 0);
SELECT loyalty.add_tier('lb', 'silver', 'Silver', 300, 1.2);
SELECT loyalty.add_tier('lb', 'gold', 'Gold', 1500, 2);

-- idx 1..members -> member id, program (1 = la, 0 = lb)
CREATE TABLE lt.mem (idx integer PRIMARY KEY, member_id bigint NOT NULL UNIQUE, prog integer NOT NULL);
-- In two statements with an ANALYZE between: enrolling many members in one statement into
-- a never-analysed member table is quadratic (see the README of test/load).
INSERT INTO lt.mem
SELECT g, loyalty.enroll(CASE WHEN g % 2 = 1 THEN 'la' ELSE 'lb' END, 'load-' || g, :base::timestamptz - interval '1 day'), g % 2
  FROM generate_series(1, least(:members, 500)) g;
ANALYZE loyalty.member;
INSERT INTO lt.mem
SELECT g, loyalty.enroll(CASE WHEN g % 2 = 1 THEN 'la' ELSE 'lb' END, 'load-' || g, :base::timestamptz - interval '1 day'), g % 2
  FROM generate_series(501, :members) g;

-- What each client saw: one row per call, written by the client after the call returned
-- (a separate statement, so a separate transaction). sqlstate '00000' = a receipt came back.
CREATE SEQUENCE lt.keyseq;
CREATE TABLE lt.journal (
    id        bigserial PRIMARY KEY,
    phase     text NOT NULL,
    client    integer NOT NULL,
    op        text NOT NULL,      -- earn award redeem reverse transfer replay badreplay
    key       text NOT NULL,      -- the idempotency key sent
    member    bigint NOT NULL,
    member2   bigint,             -- transfer receiver
    amount    numeric,            -- earn / reverse amount sent
    points    bigint,             -- award / redeem / transfer points sent
    orig_key  text,               -- reverse: the purchase's key
    replay_of bigint,             -- replay / badreplay: the journal row replayed
    sqlstate  text NOT NULL,
    entry_id  bigint,             -- receipt
    r_points  bigint,
    replayed  boolean
);
CREATE INDEX journal_op ON lt.journal (op, id) WHERE sqlstate = '00000';
CREATE INDEX journal_key ON lt.journal (key);

-- bulk earns committed (after the killed one): keys bulk-N
CREATE TABLE lt.state (bulk_committed integer NOT NULL);
INSERT INTO lt.state VALUES (0);

-- What the client wrote to a file outside the server (crash phases), loaded after restart.
CREATE TABLE lt.ext (line integer, key text, member bigint, entry_id bigint, points bigint, sqlstate text, op text);

-- One random operation. Documented business errors (the ones the operation can give on
-- valid input) are caught and returned as the outcome; anything else is re-raised, so
-- pgbench counts it (retried if 40001/40P01 under --max-tries, else the client aborts).
CREATE FUNCTION lt.step(p_client integer, p_phase text, p_hot integer, OUT res jsonb, OUT line text)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    r      double precision := random();
    v_idx  integer;
    m      bigint;
    m2     bigint;
    k      text := p_phase || '-' || p_client || '-' || nextval('lt.keyseq');
    op     text;
    amt    numeric;
    pts    bigint;
    okey   text;
    rep    lt.journal;
    rc     loyalty.receipt;
    st     text := '00000';
    allowed text[] := '{}';
    at     timestamptz := lt.bnow();
BEGIN
    -- one op in ten on the five hottest members (the same row lock for everyone)
    IF random() < 0.1 THEN v_idx := 1 + floor(random() * 5); ELSE v_idx := 1 + floor(random() * p_hot); END IF;
    SELECT member_id INTO m FROM lt.mem WHERE mem.idx = v_idx;

    IF r < 0.34 THEN
        op := 'earn';
    ELSIF r < 0.42 THEN
        op := 'award';
    ELSIF r < 0.62 THEN
        op := 'redeem';
    ELSIF r < 0.72 THEN
        op := 'reverse';
    ELSIF r < 0.84 THEN
        op := 'transfer';
    ELSIF r < 0.97 THEN
        op := 'replay';
    ELSE
        op := 'badreplay';
    END IF;

    IF op IN ('reverse', 'replay', 'badreplay') THEN
        -- a random acknowledged earlier call (of any client): an earn for a refund, an
        -- original (not itself a replay) for a replay
        SELECT * INTO rep FROM lt.journal j
         WHERE j.sqlstate = '00000' AND j.op = CASE WHEN op = 'reverse' THEN 'earn' ELSE j.op END
           AND j.op NOT IN ('replay', 'badreplay')
           AND j.id >= (SELECT floor(random() * max(id)) FROM lt.journal)
         ORDER BY j.id LIMIT 1;
        IF NOT FOUND THEN op := 'earn'; END IF;
    END IF;

    BEGIN
        CASE op
        WHEN 'earn' THEN
            amt := round((1 + random() * 120)::numeric, 2);
            rc := loyalty.earn(m, amt, k, at, jsonb_build_object('till', p_client));
        WHEN 'award' THEN
            pts := 1 + floor(random() * 40);
            rc := loyalty.award(m, pts, 'load bonus', k, at);
        WHEN 'redeem' THEN
            allowed := '{LY010}';
            pts := 1 + floor(random() * 60);
            rc := loyalty.redeem(m, pts, k, at, 'load redeem');
        WHEN 'reverse' THEN
            allowed := '{LY051,LY011}';
            m := rep.member; okey := rep.key;
            -- a part (sometimes more than is left: LY051) or, one time in four, all that is left
            amt := CASE WHEN random() < 0.25 THEN NULL ELSE round(rep.amount * (0.1 + random() * 0.8)::numeric, 2) END;
            IF amt = 0 THEN amt := 0.01; END IF;
            rc := loyalty.reverse(m, okey, amt, k, at);
        WHEN 'transfer' THEN
            allowed := '{LY010}';
            -- a partner in the same program: an index of the same parity
            SELECT member_id INTO m2 FROM lt.mem
             WHERE mem.idx = ((v_idx - 1 + 2 * (1 + floor(random() * 10))::integer) % p_hot) + 1
               AND mem.prog = v_idx % 2;
            IF m2 IS NULL OR m2 = m THEN
                SELECT member_id INTO m2 FROM lt.mem
                 WHERE mem.prog = v_idx % 2 AND mem.member_id <> m ORDER BY mem.idx LIMIT 1;
            END IF;
            pts := 1 + floor(random() * 30);
            rc := loyalty.transfer(m, m2, pts, k, at);
        WHEN 'replay' THEN
            -- the same call again, `at` aside: must return the original receipt
            k := rep.key; m := rep.member; m2 := rep.member2; amt := rep.amount; pts := rep.points;
            okey := rep.orig_key;
            CASE rep.op
            WHEN 'earn' THEN rc := loyalty.earn(m, amt, k, at, jsonb_build_object('till', rep.client));
            WHEN 'award' THEN rc := loyalty.award(m, pts, 'load bonus', k, at);
            WHEN 'redeem' THEN rc := loyalty.redeem(m, pts, k, at, 'load redeem');
            WHEN 'reverse' THEN rc := loyalty.reverse(m, okey, amt, k, at);
            WHEN 'transfer' THEN rc := loyalty.transfer(m, m2, pts, k, at);
            END CASE;
        WHEN 'badreplay' THEN
            -- the same key with other arguments: LY020, nothing written
            allowed := '{LY020}';
            k := rep.key; m := rep.member;
            CASE rep.op
            WHEN 'earn' THEN amt := rep.amount + 1; rc := loyalty.earn(m, amt, k, at, jsonb_build_object('till', rep.client));
            WHEN 'award' THEN pts := rep.points + 1; rc := loyalty.award(m, pts, 'load bonus', k, at);
            WHEN 'redeem' THEN pts := 1; rc := loyalty.award(m, pts, 'another operation', k, at);
            WHEN 'reverse' THEN amt := 0.01; rc := loyalty.earn(m, amt, k, at);
            WHEN 'transfer' THEN pts := rep.points + 1; rc := loyalty.transfer(m, rep.member2, pts, k, at);
            END CASE;
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        st := SQLSTATE;
        IF NOT st = ANY (allowed) THEN
            RAISE;
        END IF;
    END;

    res := jsonb_build_object('phase', p_phase, 'client', p_client, 'op', op, 'key', k, 'member', m,
        'member2', m2, 'amount', amt, 'points', pts, 'orig_key', okey, 'replay_of', rep.id,
        'sqlstate', st, 'entry_id', rc.entry_id, 'r_points', rc.points, 'replayed', rc.replayed);
    -- for the journal file: no spaces, nothing the shell would interpret
    line := concat_ws(',', k, m, coalesce(rc.entry_id, 0), coalesce(rc.points, 0), st, op);
END
$$;

-- The client's journal write, after the call returned.
CREATE FUNCTION lt.record(r jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO lt.journal (phase, client, op, key, member, member2, amount, points, orig_key,
                            replay_of, sqlstate, entry_id, r_points, replayed)
    SELECT r->>'phase', (r->>'client')::integer, r->>'op', r->>'key', (r->>'member')::bigint,
           (r->>'member2')::bigint, (r->>'amount')::numeric, (r->>'points')::bigint, r->>'orig_key',
           (r->>'replay_of')::bigint, r->>'sqlstate', (r->>'entry_id')::bigint,
           (r->>'r_points')::bigint, (r->>'replayed')::boolean
$$;
