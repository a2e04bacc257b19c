-- loyalty 1.0 install script, frozen as released (2026-11-22): never edit it.
-- Newer versions are built from sql/loyalty/*.sql; upgrades from sql/upgrade/A--B/*.sql.
\echo Use "CREATE EXTENSION loyalty" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Programs and tiers
-- ---------------------------------------------------------------------------

-- One row per loyalty program. `settings` is the normalised settings object
-- (every key present); the typed columns beside it are what the C code reads.
CREATE SEQUENCE loyalty.program_id_seq;
CREATE TABLE loyalty.program (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.program_id_seq'),
    code               text NOT NULL UNIQUE CHECK (code <> ''),
    name               text NOT NULL,
    settings           jsonb NOT NULL,
    points_per_unit    numeric NOT NULL CHECK (points_per_unit > 0),
    rounding           text NOT NULL CHECK (rounding IN ('floor', 'round', 'ceil')),
    timezone           text NOT NULL,
    pending_days       integer NOT NULL CHECK (pending_days >= 0),
    expiry_policy      text NOT NULL CHECK (expiry_policy IN ('none', 'rolling', 'end_of_period', 'inactivity')),
    expiry_months      integer NOT NULL CHECK (expiry_months >= 0),
    expiry_period      text CHECK (expiry_period IN ('month', 'quarter', 'year')),
    negative_balance   text NOT NULL CHECK (negative_balance IN ('deny', 'allow', 'clamp')),
    tier_basis         text NOT NULL CHECK (tier_basis IN ('points', 'spend', 'visits')),
    tier_window        text NOT NULL CHECK (tier_window IN ('lifetime', 'calendar_year', 'rolling')),
    tier_window_months integer NOT NULL CHECK (tier_window_months >= 0),
    downgrade          text NOT NULL CHECK (downgrade IN ('never', 'period_end', 'one_step')),
    grace_days         integer NOT NULL CHECK (grace_days >= 0),
    tier_retention_periods integer NOT NULL DEFAULT 0 CHECK (tier_retention_periods >= 0),
    cost_per_point     numeric NOT NULL DEFAULT 0 CHECK (cost_per_point >= 0),
    voucher_refund_expiry text NOT NULL DEFAULT 'original' CHECK (voucher_refund_expiry IN ('original', 'fresh')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE loyalty.tier_id_seq;
CREATE TABLE loyalty.tier (
    id              bigint PRIMARY KEY DEFAULT nextval('loyalty.tier_id_seq'),
    program_id      bigint NOT NULL REFERENCES loyalty.program,
    code            text NOT NULL CHECK (code <> ''),
    name            text NOT NULL,
    threshold       numeric NOT NULL CHECK (threshold >= 0 AND threshold < 'Infinity'),
    earn_multiplier numeric NOT NULL CHECK (earn_multiplier > 0 AND earn_multiplier < 'Infinity'),
    benefits        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(benefits) = 'object'),
    UNIQUE (program_id, code),
    UNIQUE (program_id, threshold)
);

-- ---------------------------------------------------------------------------
-- Members and their balances
-- ---------------------------------------------------------------------------

-- The balance columns are maintained by the C core in the same transaction as
-- the ledger entry that changes them; they are correct as of the member's last
-- operation or sweep, and stay correct until `next_transition_at` (the earliest
-- moment a pending lot becomes available or a lot expires).
CREATE SEQUENCE loyalty.member_id_seq;
CREATE TABLE loyalty.member (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.member_id_seq'),
    program_id         bigint NOT NULL REFERENCES loyalty.program,
    external_ref       text NOT NULL,
    enrolled_at        timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    referral_code      text NOT NULL,
    referred_by        bigint REFERENCES loyalty.member,
    tier_id            bigint NOT NULL REFERENCES loyalty.tier,
    tier_since         timestamptz NOT NULL,
    earned_tier_id     bigint REFERENCES loyalty.tier,   -- NULL: the same as tier_id
    available          bigint NOT NULL DEFAULT 0,
    pending            bigint NOT NULL DEFAULT 0,
    lifetime_earned    bigint NOT NULL DEFAULT 0,
    redeemed           bigint NOT NULL DEFAULT 0,
    expired            bigint NOT NULL DEFAULT 0,
    qualifying         numeric NOT NULL DEFAULT 0,
    lifetime_spend     numeric NOT NULL DEFAULT 0,
    lifetime_visits    bigint NOT NULL DEFAULT 0,
    last_activity_at   timestamptz,
    last_entry_at      timestamptz,
    next_transition_at timestamptz NOT NULL DEFAULT 'infinity',
    -- tier state (src/tiers.c): the qualifying window kept incrementally,
    -- the next review of the tier, a grace period, and granted floors
    q_start            timestamptz,
    q_oldest           timestamptz,
    q_asof             timestamptz,
    tier_review_at     timestamptz NOT NULL DEFAULT 'infinity',
    grace_until        timestamptz,
    grace_tier_id      bigint REFERENCES loyalty.tier,
    pinned_tier_id     bigint REFERENCES loyalty.tier,
    pinned_until       timestamptz,
    granted_tier_id    bigint REFERENCES loyalty.tier,
    granted_until      timestamptz,
    UNIQUE (program_id, external_ref),
    UNIQUE (program_id, referral_code)
) WITH (fillfactor = 80);   -- room for HOT updates: every operation updates its member row
ALTER SEQUENCE loyalty.program_id_seq OWNED BY loyalty.program.id;
ALTER SEQUENCE loyalty.tier_id_seq OWNED BY loyalty.tier.id;
ALTER SEQUENCE loyalty.member_id_seq OWNED BY loyalty.member.id;
CREATE INDEX member_due ON loyalty.member (next_transition_at) WHERE next_transition_at < 'infinity';
CREATE INDEX member_referred_by ON loyalty.member (referred_by) WHERE referred_by IS NOT NULL;

-- ---------------------------------------------------------------------------
-- The ledger: one row per movement, never updated or deleted
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.entry_id_seq;

-- What a ledger entry records. An enum rather than a CHECK on text: validated on
-- input, four bytes on disk, and no constraint expression to evaluate per insert.
CREATE TYPE loyalty.entry_kind AS ENUM (
    'earn', 'award', 'redeem', 'reverse', 'adjust', 'transfer_in', 'transfer_out', 'expire',
    'subscribe', 'renew', 'reward_refund');

-- Every key includes member_id so that the ledger can be sharded by member.
-- The receipt columns (available_after, pending_after, tier_after) make a
-- replay return exactly what the first call returned.
--
-- The ledger tables (entry, lot, lot_draw) carry no foreign keys or CHECK
-- constraints: only the C core writes them, under the member's lock, and a
-- per-row constraint check would cost more than the write it guards (see the
-- README's performance section). loyalty.check_invariants() verifies the same
-- rules (no orphans, lots within bounds) over the whole ledger, and every test
-- ends by calling it.
CREATE TABLE loyalty.entry (
    member_id        bigint NOT NULL,
    id               bigint NOT NULL DEFAULT nextval('loyalty.entry_id_seq'),
    kind             loyalty.entry_kind NOT NULL,
    points           bigint NOT NULL,
    at               timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    idempotency_key  text,
    request          jsonb NOT NULL DEFAULT '{}',
    amount           numeric,
    reason           text,
    ref_entry_id     bigint,
    counterparty_id  bigint,
    qualifying       numeric NOT NULL DEFAULT 0,
    qualifying_at    timestamptz,
    detail           jsonb NOT NULL DEFAULT '{}',
    available_after  bigint NOT NULL,
    pending_after    bigint NOT NULL,
    tier_after       text NOT NULL,
    PRIMARY KEY (member_id, id),
    UNIQUE (member_id, idempotency_key)
);
ALTER SEQUENCE loyalty.entry_id_seq OWNED BY loyalty.entry.id;
-- A member's entries are found through the primary key (member_id, id); the
-- only other indexes serve the qualifying window and refunds. Every index here
-- is written on each earn, so each must earn its place.
CREATE INDEX entry_qualifying ON loyalty.entry (member_id, qualifying_at) WHERE qualifying <> 0;
CREATE INDEX entry_refunds ON loyalty.entry (member_id, ref_entry_id) WHERE kind = 'reverse';

-- ---------------------------------------------------------------------------
-- Lots: what is left of each credit, when it becomes available and expires
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.lot_id_seq;

-- state: 'p' counted in member.pending, 'a' counted in member.available,
-- 'x' closed (expired or drawn to zero). A lot with negative points is a debt
-- left by a reversal under negative_balance = allow; it is always available.
CREATE TABLE loyalty.lot (
    member_id    bigint NOT NULL,
    id           bigint NOT NULL DEFAULT nextval('loyalty.lot_id_seq'),
    entry_id     bigint NOT NULL,
    at           timestamptz NOT NULL,
    points       bigint NOT NULL,
    remaining    bigint NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at   timestamptz,
    source_lot   bigint,
    state        "char" NOT NULL,
    PRIMARY KEY (member_id, id)
) WITH (fillfactor = 90);   -- draws update remaining in place (HOT)
ALTER SEQUENCE loyalty.lot_id_seq OWNED BY loyalty.lot.id;
CREATE INDEX lot_live ON loyalty.lot (member_id, expires_at, id) WHERE state <> 'x';

-- Which lots each debit (redeem, transfer_out, reverse, adjust, expire) drew
-- from. A negative draw on a debt lot is a settlement of that debt.
CREATE TABLE loyalty.lot_draw (
    member_id bigint NOT NULL,
    entry_id  bigint NOT NULL,
    lot_id    bigint NOT NULL,
    at        timestamptz NOT NULL,
    points    bigint NOT NULL,
    PRIMARY KEY (member_id, entry_id, lot_id)
);
CREATE INDEX lot_draw_lot ON loyalty.lot_draw (member_id, lot_id);

-- Every tier a member has held, from enrolment on.
CREATE SEQUENCE loyalty.tier_change_id_seq;
CREATE TABLE loyalty.tier_change (
    member_id  bigint NOT NULL REFERENCES loyalty.member,
    id         bigint NOT NULL DEFAULT nextval('loyalty.tier_change_id_seq'),
    at         timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_tier  text,
    to_tier    text NOT NULL,
    reason     text NOT NULL,
    qualifying numeric,
    detail     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.tier_change_id_seq OWNED BY loyalty.tier_change.id;
CREATE INDEX tier_change_member_at ON loyalty.tier_change (member_id, at);

-- ---------------------------------------------------------------------------
-- Paid memberships: plans and subscriptions
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.plan_id_seq;
-- A membership plan: what a period costs, how long it lasts, the tier it
-- grants for that time, and the points it gives (on signup, on each renewal).
CREATE TABLE loyalty.plan (
    id                   bigint PRIMARY KEY DEFAULT nextval('loyalty.plan_id_seq'),
    program_id           bigint NOT NULL REFERENCES loyalty.program,
    code                 text NOT NULL CHECK (code <> ''),
    name                 text NOT NULL,
    price                numeric NOT NULL CHECK (price >= 0 AND price < 'Infinity'),
    period_months        integer NOT NULL CHECK (period_months BETWEEN 1 AND 120),
    tier_id              bigint REFERENCES loyalty.tier,
    benefits             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(benefits) = 'object'),
    renews               boolean NOT NULL DEFAULT true,
    signup_bonus_points  bigint NOT NULL DEFAULT 0 CHECK (signup_bonus_points >= 0),
    renewal_bonus_points bigint NOT NULL DEFAULT 0 CHECK (renewal_bonus_points >= 0),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.plan_id_seq OWNED BY loyalty.plan.id;

CREATE SEQUENCE loyalty.subscription_id_seq;
-- A member's subscriptions; at most one has not lapsed.
CREATE TABLE loyalty.subscription (
    member_id    bigint NOT NULL REFERENCES loyalty.member,
    id           bigint NOT NULL DEFAULT nextval('loyalty.subscription_id_seq'),
    plan_id      bigint NOT NULL REFERENCES loyalty.plan,
    started_at   timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    auto_renew   boolean NOT NULL,
    cancelled_at timestamptz,
    lapsed_at    timestamptz,
    periods      integer NOT NULL DEFAULT 1,
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.subscription_id_seq OWNED BY loyalty.subscription.id;
CREATE UNIQUE INDEX subscription_current ON loyalty.subscription (member_id) WHERE lapsed_at IS NULL;

-- ---------------------------------------------------------------------------
-- Append-only enforcement (C triggers)
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.forbid_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_forbid_change'
    SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON loyalty.entry
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON loyalty.entry
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER lot_draw_append_only BEFORE UPDATE OR DELETE ON loyalty.lot_draw
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER lot_draw_no_truncate BEFORE TRUNCATE ON loyalty.lot_draw
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER tier_change_append_only BEFORE UPDATE OR DELETE ON loyalty.tier_change
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER tier_change_no_truncate BEFORE TRUNCATE ON loyalty.tier_change
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();

-- Backends cache programs and tiers (src/cache.c); any change drops the caches.
CREATE FUNCTION loyalty.invalidate_program_cache() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_invalidate_program_cache'
    SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER program_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.program
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();
CREATE TRIGGER plan_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.plan
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();
CREATE TRIGGER tier_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.tier
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();

-- pg_dump keeps what users put in these tables.
SELECT pg_catalog.pg_extension_config_dump('loyalty.program', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.entry', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot_draw', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_change', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.program_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_change_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.plan', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.plan_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.entry_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot_id_seq', '');

-- ---------------------------------------------------------------------------
-- The receipt every money-like operation returns
-- ---------------------------------------------------------------------------

CREATE TYPE loyalty.receipt AS (
    entry_id  bigint,
    member_id bigint,
    points    bigint,
    available bigint,
    pending   bigint,
    tier      text,
    replayed  boolean
);

-- ---------------------------------------------------------------------------
-- Admin: programs, tiers
-- ---------------------------------------------------------------------------

-- The functions that look members, entries and lots up by key also carry
-- SET enable_seqscan = off. Their queries are prepared once per backend; on a
-- freshly installed, never-analysed table the planner would pick sequential
-- scans and keep them in the cached plan, so a bulk import (a million enrolls
-- in one statement) would grow quadratically. Every query they run has an index.

CREATE FUNCTION loyalty.create_program(code text, name text, settings jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_create_program'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.create_program(text, text, jsonb) IS
    'create a loyalty program; settings are validated (unknown keys are an error)';

CREATE FUNCTION loyalty.add_tier(program text, code text, name text, threshold numeric,
                                 earn_multiplier numeric DEFAULT 1, benefits jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_add_tier'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.add_tier(text, text, text, numeric, numeric, jsonb) IS
    'add a tier to a program; the tier with threshold 0 is the base tier';

-- Calendar arithmetic in a program's time zone (the C code uses the same routine).
CREATE FUNCTION loyalty.add_months_local(ts timestamptz, months integer, timezone text)
    RETURNS timestamptz
    LANGUAGE c STABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'loyalty_add_months_local'
    SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Members
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.enroll(program text, external_ref text, at timestamptz DEFAULT now(),
                               referral_code text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_enroll'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.enroll(text, text, timestamptz, text) IS
    'enroll a member; idempotent on (program, external_ref)';

CREATE FUNCTION loyalty.member_id(program text, external_ref text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
AS $$
DECLARE
    pid bigint;
BEGIN
    IF program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = member_id.program;
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    RETURN (SELECT m.id FROM loyalty.member m
             WHERE m.program_id = pid AND m.external_ref = member_id.external_ref);
END
$$;
COMMENT ON FUNCTION loyalty.member_id(text, text) IS
    'the member id for (program, external_ref), or NULL if not enrolled';

-- ---------------------------------------------------------------------------
-- Money-like operations (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.earn(member bigint, amount numeric, idempotency_key text,
                             at timestamptz DEFAULT now(), attrs jsonb DEFAULT '{}')
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_earn'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.earn(bigint, numeric, text, timestamptz, jsonb) IS
    'credit points for a purchase of `amount`';

CREATE FUNCTION loyalty.award(member bigint, points bigint, reason text, idempotency_key text,
                              at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_award'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.award(bigint, bigint, text, text, timestamptz) IS
    'credit bonus points that are not tied to a purchase';

CREATE FUNCTION loyalty.redeem(member bigint, points bigint, idempotency_key text,
                               at timestamptz DEFAULT now(), reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_redeem'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.redeem(bigint, bigint, text, timestamptz, text) IS
    'spend available points, soonest-expiring lots first';

CREATE FUNCTION loyalty.reverse(member bigint, original_key text, amount numeric,
                                idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_reverse'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.reverse(bigint, text, numeric, text, timestamptz) IS
    'take back the points of a refunded (part of a) purchase';

CREATE FUNCTION loyalty.adjust(member bigint, points bigint, reason text, idempotency_key text,
                               at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_adjust'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.adjust(bigint, bigint, text, text, timestamptz) IS
    'manual correction by staff (positive or negative); reason required';

CREATE FUNCTION loyalty.transfer(from_member bigint, to_member bigint, points bigint,
                                 idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_transfer'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.transfer(bigint, bigint, bigint, text, timestamptz) IS
    'move available points between members of one program; lots keep their expiry';

-- ---------------------------------------------------------------------------
-- Maintenance
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.run_maintenance(now timestamptz DEFAULT now(), max_members integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_run_maintenance'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.run_maintenance(timestamptz, integer) IS
    'release pending points and expire due lots for members due by `now`';

-- Runs maintenance in batches, committing after each, so that no member row
-- stays locked for longer than one batch. Call it with CALL, outside a
-- transaction block (pg_cron does this). A procedure that commits cannot
-- carry a SET clause, so its body qualifies every operator instead.
CREATE PROCEDURE loyalty.maintain(now timestamptz DEFAULT now(), batch_size integer DEFAULT 1000)
    LANGUAGE plpgsql
AS $$
DECLARE
    r jsonb;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'LY038';
    END IF;
    LOOP
        r := loyalty.run_maintenance(now, batch_size);
        COMMIT;
        EXIT WHEN (r OPERATOR(pg_catalog.->>) 'members')::bigint OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Reading (SQL): balances as of any business time, statements, invariants
-- ---------------------------------------------------------------------------

-- Entries that count as member activity for the inactivity expiry policy.
CREATE FUNCTION loyalty.is_activity(kind loyalty.entry_kind) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN kind IN ('earn', 'award', 'redeem', 'adjust', 'transfer_in', 'transfer_out', 'subscribe', 'renew');

CREATE FUNCTION loyalty.balance(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (available bigint, pending bigint, lifetime_earned bigint, redeemed bigint,
                   expired bigint, tier text, qualifying numeric, next_expiry timestamptz,
                   next_expiry_points bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
AS $$
DECLARE
    m        loyalty.member;
    p        loyalty.program;
    deadline timestamptz;
    wstart   timestamptz;
BEGIN
    IF balance.member IS NULL OR balance.at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN balance.member IS NULL THEN 'member' ELSE 'at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF NOT isfinite(balance.at) THEN
        RAISE EXCEPTION 'business time must be finite' USING ERRCODE = 'LY033';
    END IF;
    SELECT * INTO m FROM loyalty.member mm WHERE mm.id = balance.member;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member % does not exist', balance.member USING ERRCODE = 'LY002';
    END IF;
    SELECT * INTO p FROM loyalty.program pp WHERE pp.id = m.program_id;

    IF p.expiry_policy = 'inactivity' THEN
        SELECT loyalty.add_months_local(max(e.at), p.expiry_months, p.timezone) INTO deadline
          FROM loyalty.entry e
         WHERE e.member_id = m.id AND e.at <= balance.at AND loyalty.is_activity(e.kind);
    END IF;
    wstart := CASE p.tier_window
        WHEN 'lifetime' THEN '-infinity'::timestamptz
        WHEN 'calendar_year' THEN (date_trunc('year', balance.at AT TIME ZONE p.timezone)) AT TIME ZONE p.timezone
        ELSE loyalty.add_months_local(balance.at, -p.tier_window_months, p.timezone) + interval '1 microsecond'
    END;

    RETURN QUERY
    WITH lots AS (
        SELECT l.points, l.available_at, l.expires_at,
               l.points - coalesce((SELECT sum(d.points) FROM loyalty.lot_draw d
                                     WHERE d.member_id = l.member_id AND d.lot_id = l.id
                                       AND d.at <= balance.at), 0) AS rem
          FROM loyalty.lot l
         WHERE l.member_id = m.id AND l.at <= balance.at
    ), classified AS (
        SELECT l.rem,
               CASE WHEN l.points < 0 THEN NULL ELSE coalesce(l.expires_at, deadline) END AS expiry,
               CASE WHEN l.points < 0 THEN 'a'
                    WHEN coalesce(l.expires_at, deadline) <= balance.at THEN 'x'
                    WHEN l.available_at > balance.at THEN 'p'
                    ELSE 'a' END AS st
          FROM lots l
    ), sums AS (
        SELECT coalesce(sum(c.rem) FILTER (WHERE c.st = 'a'), 0)::bigint AS avail,
               coalesce(sum(c.rem) FILTER (WHERE c.st = 'p'), 0)::bigint AS pend,
               coalesce(sum(c.rem) FILTER (WHERE c.st = 'x'), 0)::bigint AS unswept,
               coalesce(-sum(c.rem) FILTER (WHERE c.st = 'a' AND c.rem < 0), 0)::bigint AS debt,
               min(c.expiry) FILTER (WHERE c.st <> 'x' AND c.rem > 0) AS next_exp
          FROM classified c
    ), ledger AS (
        SELECT coalesce(sum(e.points) FILTER (WHERE e.kind IN ('earn', 'award', 'transfer_in', 'reverse',
                                                                  'subscribe', 'renew')
                                                 OR (e.kind = 'adjust' AND e.points > 0)), 0)::bigint AS earned,
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out', 'reward_refund')
                                                  OR (e.kind = 'adjust' AND e.points < 0)), 0)::bigint AS spent,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0)::bigint AS gone,
               coalesce(sum(e.qualifying) FILTER (WHERE e.qualifying_at >= wstart
                                                     AND e.qualifying_at <= balance.at), 0) AS q
          FROM loyalty.entry e
         WHERE e.member_id = m.id AND e.at <= balance.at
    )
    -- points that expired while a debt was owed settle the debt first
    SELECT s.avail + least(s.unswept, s.debt),
           s.pend,
           l.earned,
           l.spent,
           l.gone + s.unswept - least(s.unswept, s.debt),
           coalesce((SELECT tc.to_tier FROM loyalty.tier_change tc
                      WHERE tc.member_id = m.id AND tc.at <= balance.at
                      ORDER BY tc.at DESC, tc.id DESC LIMIT 1),
                    (SELECT t.code FROM loyalty.tier t
                      WHERE t.program_id = m.program_id AND t.threshold = 0)),
           l.q,
           s.next_exp,
           (SELECT coalesce(sum(c.rem), 0)::bigint FROM classified c
             WHERE c.st <> 'x' AND c.rem > 0 AND c.expiry = s.next_exp)
      FROM sums s, ledger l;
END
$$;
COMMENT ON FUNCTION loyalty.balance(bigint, timestamptz) IS
    'a member''s balances as of business time `at`, computed from the ledger and lots';

CREATE FUNCTION loyalty.statement(member bigint, from_at timestamptz DEFAULT '-infinity',
                                  to_at timestamptz DEFAULT 'infinity')
    RETURNS TABLE (entry_id bigint, at timestamptz, recorded_at timestamptz, kind text,
                   points bigint, idempotency_key text, detail jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
AS $$
BEGIN
    IF statement.member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member mm WHERE mm.id = statement.member) THEN
        RAISE EXCEPTION 'member % does not exist', statement.member USING ERRCODE = 'LY002';
    END IF;
    -- MATERIALIZED: each aggregate is computed once, whatever join the plan picks
    RETURN QUERY
    WITH lots AS MATERIALIZED (
        SELECT l.entry_id,
               jsonb_agg(jsonb_build_object('lot', l.id, 'points', l.points,
                                            'available_at', l.available_at, 'expires_at', l.expires_at)
                         ORDER BY l.id) AS lots
          FROM loyalty.lot l
         WHERE l.member_id = statement.member
         GROUP BY l.entry_id
    ), draws AS MATERIALIZED (
        SELECT d.entry_id,
               jsonb_agg(jsonb_build_object('lot', d.lot_id, 'points', d.points) ORDER BY d.lot_id) AS drawn
          FROM loyalty.lot_draw d
         WHERE d.member_id = statement.member
         GROUP BY d.entry_id
    )
    SELECT e.id, e.at, e.recorded_at, e.kind::text, e.points, e.idempotency_key,
           e.detail || jsonb_strip_nulls(jsonb_build_object(
               'amount', e.amount,
               'reason', e.reason,
               'counterparty', e.counterparty_id,
               'drawn', dr.drawn,
               'lots', lo.lots))
      FROM loyalty.entry e
      LEFT JOIN lots lo ON lo.entry_id = e.id
      LEFT JOIN draws dr ON dr.entry_id = e.id
     WHERE e.member_id = statement.member
       AND e.at >= coalesce(from_at, '-infinity') AND e.at < coalesce(to_at, 'infinity')
     ORDER BY e.at, e.id;
END
$$;
COMMENT ON FUNCTION loyalty.statement(bigint, timestamptz, timestamptz) IS
    'a member''s ledger entries with from_at <= at < to_at, in business-time order';

-- Every rule the ledger must obey; no rows means all hold.
CREATE FUNCTION loyalty.check_invariants()
    RETURNS TABLE (member_id bigint, invariant text, detail text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH lots AS (
        SELECT l.member_id,
               coalesce(sum(l.remaining) FILTER (WHERE l.state = 'a'), 0) AS a,
               coalesce(sum(l.remaining) FILTER (WHERE l.state = 'p'), 0) AS p
          FROM loyalty.lot l GROUP BY l.member_id
    ), ledger AS (
        SELECT e.member_id,
               sum(e.points) AS total,
               coalesce(sum(e.points) FILTER (WHERE e.kind IN ('earn', 'award', 'transfer_in', 'reverse',
                                                                  'subscribe', 'renew')
                                                 OR (e.kind = 'adjust' AND e.points > 0)), 0) AS earned,
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out', 'reward_refund')
                                                  OR (e.kind = 'adjust' AND e.points < 0)), 0) AS spent,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0) AS gone
          FROM loyalty.entry e GROUP BY e.member_id
    ), draws AS (
        SELECT d.member_id, d.lot_id, sum(d.points) AS drawn
          FROM loyalty.lot_draw d GROUP BY d.member_id, d.lot_id
    ), members AS (
        SELECT m.id, m.available, m.pending, m.lifetime_earned, m.redeemed, m.expired,
               coalesce(lo.a, 0) AS lot_a, coalesce(lo.p, 0) AS lot_p,
               coalesce(le.total, 0) AS total, coalesce(le.earned, 0) AS earned,
               coalesce(le.spent, 0) AS spent, coalesce(le.gone, 0) AS gone
          FROM loyalty.member m
          LEFT JOIN lots lo ON lo.member_id = m.id
          LEFT JOIN ledger le ON le.member_id = m.id
    )
    SELECT id, 'available equals the available lots',
           format('available %s, lots %s', available, lot_a)
      FROM members WHERE available <> lot_a
    UNION ALL
    SELECT id, 'pending equals the pending lots', format('pending %s, lots %s', pending, lot_p)
      FROM members WHERE pending <> lot_p
    UNION ALL
    SELECT id, 'ledger sum equals available + pending',
           format('ledger %s, available %s, pending %s', total, available, pending)
      FROM members WHERE total <> available + pending
    UNION ALL
    SELECT id, 'lifetime_earned - redeemed - expired equals available + pending',
           format('%s - %s - %s vs %s + %s', lifetime_earned, redeemed, expired, available, pending)
      FROM members WHERE lifetime_earned - redeemed - expired <> available + pending
    UNION ALL
    SELECT id, 'counters equal the ledger',
           format('earned %s/%s, redeemed %s/%s, expired %s/%s',
                  lifetime_earned, earned, redeemed, spent, expired, gone)
      FROM members WHERE lifetime_earned <> earned OR redeemed <> spent OR expired <> gone
    UNION ALL
    SELECT id, 'pending is never negative', format('pending %s', pending)
      FROM members WHERE pending < 0
    UNION ALL
    SELECT l.member_id, 'lot remaining equals points minus draws',
           format('lot %s: points %s, drawn %s, remaining %s', l.id, l.points, coalesce(d.drawn, 0), l.remaining)
      FROM loyalty.lot l LEFT JOIN draws d ON d.member_id = l.member_id AND d.lot_id = l.id
     WHERE l.remaining <> l.points - coalesce(d.drawn, 0)
    UNION ALL
    SELECT l.member_id, 'lot remaining within its points',
           format('lot %s: points %s, remaining %s', l.id, l.points, l.remaining)
      FROM loyalty.lot l
     WHERE (l.points > 0 AND (l.remaining < 0 OR l.remaining > l.points))
        OR (l.points < 0 AND (l.remaining > 0 OR l.remaining < l.points))
    UNION ALL
    SELECT l.member_id, 'lot state is p, a or x, and closed lots are empty',
           format('lot %s: state %s, remaining %s', l.id, l.state, l.remaining)
      FROM loyalty.lot l
     WHERE l.state NOT IN ('p', 'a', 'x') OR (l.state = 'x' AND l.remaining <> 0) OR l.points = 0
    UNION ALL
    SELECT e.member_id, 'every entry belongs to a member', format('entry %s', e.id)
      FROM loyalty.entry e WHERE NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = e.member_id)
    UNION ALL
    SELECT l.member_id, 'every lot belongs to an entry of its member', format('lot %s, entry %s', l.id, l.entry_id)
      FROM loyalty.lot l
     WHERE NOT EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = l.member_id AND e.id = l.entry_id)
    UNION ALL
    SELECT d.member_id, 'every draw names an entry and a lot of its member',
           format('entry %s, lot %s', d.entry_id, d.lot_id)
      FROM loyalty.lot_draw d
     WHERE NOT EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = d.member_id AND e.id = d.entry_id)
        OR NOT EXISTS (SELECT FROM loyalty.lot l WHERE l.member_id = d.member_id AND l.id = d.lot_id)
    UNION ALL
    SELECT e.member_id, 'idempotency keys are unique per member', e.idempotency_key
      FROM loyalty.entry e WHERE e.idempotency_key IS NOT NULL
     GROUP BY e.member_id, e.idempotency_key HAVING count(*) > 1
    ORDER BY 1, 2;
END;
COMMENT ON FUNCTION loyalty.check_invariants() IS
    'the ledger invariants that do not hold, one row per violation (none: all hold)';

-- ---------------------------------------------------------------------------
-- Tiers in full: overrides, paid memberships, history, progress
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.set_tier(member bigint, tier_code text, until timestamptz, reason text,
                                 at timestamptz DEFAULT now())
    RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_set_tier'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.set_tier(bigint, text, timestamptz, text, timestamptz) IS
    'pin a member''s tier until a date (status match, VIP); audited in tier_change';

CREATE FUNCTION loyalty.add_plan(program text, code text, name text, price numeric,
                                 period_months integer, tier_code text DEFAULT NULL,
                                 benefits jsonb DEFAULT '{}', renews boolean DEFAULT true,
                                 signup_bonus_points bigint DEFAULT 0,
                                 renewal_bonus_points bigint DEFAULT 0)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    tid bigint;
    id  bigint;
BEGIN
    IF program IS NULL OR code IS NULL OR name IS NULL OR price IS NULL OR period_months IS NULL
       OR benefits IS NULL OR renews IS NULL OR signup_bonus_points IS NULL OR renewal_bonus_points IS NULL THEN
        RAISE EXCEPTION 'add_plan arguments must not be null (except tier_code)' USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR name = '' OR octet_length(code) > 512 OR octet_length(name) > 512 THEN
        RAISE EXCEPTION 'plan code and name must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF price = 'NaN' OR price < 0 OR price = 'Infinity' THEN
        RAISE EXCEPTION 'price must be a finite number of 0 or more' USING ERRCODE = 'LY031';
    END IF;
    IF period_months < 1 OR period_months > 120 THEN
        RAISE EXCEPTION 'period_months must be between 1 and 120' USING ERRCODE = 'LY038';
    END IF;
    IF signup_bonus_points < 0 OR renewal_bonus_points < 0 THEN
        RAISE EXCEPTION 'bonus points must not be negative' USING ERRCODE = 'LY032';
    END IF;
    IF jsonb_typeof(benefits) <> 'object' THEN
        RAISE EXCEPTION 'benefits must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = add_plan.program;
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    IF tier_code IS NOT NULL THEN
        SELECT t.id INTO tid FROM loyalty.tier t WHERE t.program_id = pid AND t.code = tier_code;
        IF tid IS NULL THEN
            RAISE EXCEPTION 'tier "%" does not exist in program "%"', tier_code, program USING ERRCODE = 'LY003';
        END IF;
    END IF;
    INSERT INTO loyalty.plan (program_id, code, name, price, period_months, tier_id, benefits, renews,
                              signup_bonus_points, renewal_bonus_points)
    VALUES (pid, add_plan.code, add_plan.name, add_plan.price, add_plan.period_months, tid,
            add_plan.benefits, add_plan.renews, add_plan.signup_bonus_points, add_plan.renewal_bonus_points)
    ON CONFLICT ON CONSTRAINT plan_program_id_code_key DO NOTHING
    RETURNING plan.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a plan "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_plan(text, text, text, numeric, integer, text, jsonb, boolean, bigint, bigint) IS
    'add a paid membership plan (price per period, tier granted, bonus points)';

CREATE FUNCTION loyalty.subscribe(member bigint, plan text, idempotency_key text,
                                  at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_subscribe'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.subscribe(bigint, text, text, timestamptz) IS
    'buy a membership plan: its tier holds for the paid period';

CREATE FUNCTION loyalty.renew(member bigint, idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_renew'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.renew(bigint, text, timestamptz) IS
    'pay for one more period of the member''s plan (from its end, or from `at` if it lapsed)';

CREATE FUNCTION loyalty.cancel_subscription(member bigint, at timestamptz DEFAULT now())
    RETURNS timestamptz
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_cancel_subscription'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.cancel_subscription(bigint, timestamptz) IS
    'stop renewing; returns when the paid period (and the granted tier) ends';

CREATE FUNCTION loyalty.tier_history(member bigint)
    RETURNS TABLE (at timestamptz, from_tier text, to_tier text, reason text, qualifying numeric,
                   detail jsonb, recorded_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
AS $$
BEGIN
    IF tier_history.member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = tier_history.member) THEN
        RAISE EXCEPTION 'member % does not exist', tier_history.member USING ERRCODE = 'LY002';
    END IF;
    RETURN QUERY
    SELECT c.at, c.from_tier, c.to_tier, c.reason, c.qualifying, c.detail, c.recorded_at
      FROM loyalty.tier_change c
     WHERE c.member_id = tier_history.member
     ORDER BY c.at, c.id;
END
$$;
COMMENT ON FUNCTION loyalty.tier_history(bigint) IS
    'every tier change of a member: from, to, why (enroll, promotion, downgrade, grace_end, override, override_end, subscription, subscription_end), when';

-- The tier a member holds now and why, with its benefits (tier and plan).
CREATE VIEW loyalty.member_tiers AS
SELECT m.id AS member_id, p.code AS program, m.external_ref, t.code AS tier, t.name AS tier_name,
       t.benefits || coalesce(pl.benefits, '{}') AS benefits,
       m.tier_since,
       CASE WHEN m.pinned_tier_id IS NOT NULL THEN 'override'
            WHEN m.granted_tier_id IS NOT NULL THEN 'subscription'
            WHEN m.grace_until IS NOT NULL THEN 'grace'
            ELSE 'qualified' END AS source,
       nullif(m.tier_review_at, 'infinity') AS review_at,
       m.grace_until, m.pinned_until, s.ends_at AS subscription_until, pl.code AS plan
  FROM loyalty.member m
  JOIN loyalty.program p ON p.id = m.program_id
  JOIN loyalty.tier t ON t.id = m.tier_id
  LEFT JOIN loyalty.subscription s ON s.member_id = m.id AND s.lapsed_at IS NULL
  LEFT JOIN loyalty.plan pl ON pl.id = s.plan_id;
COMMENT ON VIEW loyalty.member_tiers IS
    'each member''s current tier, where it comes from, when it is next reviewed, and its benefits';

CREATE FUNCTION loyalty.tier_progress(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (tier text, tier_name text, source text, qualifying numeric, threshold numeric,
                   next_tier text, next_tier_name text, next_threshold numeric, needed numeric,
                   review_at timestamptz, lapses_at timestamptz, benefits jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
AS $$
DECLARE
    mt  loyalty.member_tiers;
    m   loyalty.member;
    p   loyalty.program;
    cur loyalty.tier;
    nxt loyalty.tier;
    fig numeric;
BEGIN
    SELECT b.qualifying INTO fig FROM loyalty.balance(tier_progress.member, tier_progress.at) b;
    SELECT * INTO mt FROM loyalty.member_tiers x WHERE x.member_id = tier_progress.member;
    SELECT * INTO m FROM loyalty.member x WHERE x.id = tier_progress.member;
    SELECT * INTO p FROM loyalty.program x WHERE x.id = m.program_id;
    SELECT * INTO cur FROM loyalty.tier x WHERE x.id = m.tier_id;
    SELECT * INTO nxt FROM loyalty.tier x
     WHERE x.program_id = m.program_id AND x.threshold > cur.threshold
     ORDER BY x.threshold LIMIT 1;
    tier := cur.code;
    tier_name := cur.name;
    source := mt.source;
    qualifying := fig;
    threshold := cur.threshold;
    next_tier := nxt.code;
    next_tier_name := nxt.name;
    next_threshold := nxt.threshold;
    needed := CASE WHEN nxt.id IS NULL THEN NULL ELSE greatest(nxt.threshold - fig, 0) END;
    review_at := mt.review_at;
    -- when the tier would end if the figure stayed as it is
    lapses_at := CASE
        WHEN cur.threshold = 0 THEN NULL
        WHEN mt.source = 'override' THEN CASE WHEN fig < cur.threshold THEN m.pinned_until END
        WHEN mt.source = 'subscription' THEN CASE WHEN fig < cur.threshold THEN m.granted_until END
        WHEN mt.source = 'grace' THEN m.grace_until
        WHEN fig >= cur.threshold OR mt.review_at IS NULL THEN NULL
        WHEN p.grace_days > 0
            THEN ((mt.review_at AT TIME ZONE p.timezone) + make_interval(days => p.grace_days)) AT TIME ZONE p.timezone
        ELSE mt.review_at END;
    benefits := mt.benefits;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION loyalty.tier_progress(bigint, timestamptz) IS
    'what an app shows a member: tier, qualifying figure, next tier and what is still needed, when the tier would lapse, benefits';
-- ---------------------------------------------------------------------------
-- Rewards catalog and signed vouchers (src/vouchers.c)
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.reward_id_seq;
-- What members can spend points on, and what it grants (a discount, a free
-- item, free shipping, cashback, or anything the app understands).
CREATE TABLE loyalty.reward (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.reward_id_seq'),
    program_id         bigint NOT NULL REFERENCES loyalty.program,
    code               text NOT NULL CHECK (code <> ''),
    name               text NOT NULL,
    cost_points        bigint NOT NULL CHECK (cost_points > 0),
    stock              bigint CHECK (stock >= 0),            -- NULL: unlimited
    valid_from         timestamptz,
    valid_until        timestamptz,
    min_tier_id        bigint REFERENCES loyalty.tier,
    per_member_limit   integer CHECK (per_member_limit > 0), -- NULL: no limit
    grants             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(grants) = 'object'),
    voucher_valid_days integer NOT NULL DEFAULT 30 CHECK (voucher_valid_days BETWEEN 1 AND 3650),
    active             boolean NOT NULL DEFAULT true,
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.reward_id_seq OWNED BY loyalty.reward.id;

-- Signing keys. Only the extension's owner can read them: every function that
-- uses a key is SECURITY DEFINER, and the application never sees a secret.
CREATE TABLE loyalty.voucher_key (
    id         integer PRIMARY KEY CHECK (id BETWEEN 1 AND 63),
    secret     bytea NOT NULL CHECK (length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
REVOKE ALL ON loyalty.voucher_key FROM PUBLIC;

CREATE SEQUENCE loyalty.voucher_id_seq MAXVALUE 68719476735;   -- 36 bits: see the code format
CREATE TABLE loyalty.voucher (
    member_id        bigint NOT NULL REFERENCES loyalty.member,
    id               bigint NOT NULL DEFAULT nextval('loyalty.voucher_id_seq'),
    reward_id        bigint NOT NULL REFERENCES loyalty.reward,
    code             text NOT NULL UNIQUE,
    key_id           integer NOT NULL REFERENCES loyalty.voucher_key,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    redeem_entry_id  bigint NOT NULL,
    used_at          timestamptz,
    used_key         text,
    used_recorded_at timestamptz,
    cancelled_at     timestamptz,
    cancel_entry_id  bigint,
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.voucher_id_seq OWNED BY loyalty.voucher.id;
-- A code carries the voucher id, not the member: look it up by id.
CREATE UNIQUE INDEX voucher_id ON loyalty.voucher (id);
CREATE INDEX voucher_redeem_entry ON loyalty.voucher (member_id, redeem_entry_id);
CREATE INDEX voucher_reward ON loyalty.voucher (member_id, reward_id) WHERE cancelled_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('loyalty.reward', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.reward_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher_key', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher_id_seq', '');

CREATE TYPE loyalty.voucher_receipt AS (
    entry_id     bigint,
    member_id    bigint,
    points       bigint,
    available    bigint,
    pending      bigint,
    tier         text,
    replayed     boolean,
    voucher_id   bigint,
    voucher_code text,
    expires_at   timestamptz
);

CREATE FUNCTION loyalty.add_reward(program text, code text, name text, cost_points bigint,
                                   stock bigint DEFAULT NULL, grants jsonb DEFAULT '{}',
                                   valid_from timestamptz DEFAULT NULL, valid_until timestamptz DEFAULT NULL,
                                   min_tier text DEFAULT NULL, per_member_limit integer DEFAULT NULL,
                                   voucher_valid_days integer DEFAULT 30)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    tid bigint;
    id  bigint;
BEGIN
    IF program IS NULL OR code IS NULL OR name IS NULL OR cost_points IS NULL OR grants IS NULL
       OR voucher_valid_days IS NULL THEN
        RAISE EXCEPTION 'program, code, name, cost_points, grants and voucher_valid_days must not be null'
            USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR name = '' OR octet_length(code) > 512 OR octet_length(name) > 512 THEN
        RAISE EXCEPTION 'reward code and name must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF cost_points <= 0 THEN
        RAISE EXCEPTION 'cost_points must be positive' USING ERRCODE = 'LY032';
    END IF;
    IF stock < 0 OR per_member_limit < 1 OR voucher_valid_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'stock must be 0 or more, per_member_limit 1 or more, voucher_valid_days 1 to 3650'
            USING ERRCODE = 'LY038';
    END IF;
    IF NOT isfinite(coalesce(valid_from, now())) OR NOT isfinite(coalesce(valid_until, now()))
       OR valid_until <= valid_from THEN
        RAISE EXCEPTION 'the validity window must be finite and end after it starts' USING ERRCODE = 'LY033';
    END IF;
    IF jsonb_typeof(grants) <> 'object' THEN
        RAISE EXCEPTION 'grants must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = add_reward.program;
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    IF min_tier IS NOT NULL THEN
        SELECT t.id INTO tid FROM loyalty.tier t WHERE t.program_id = pid AND t.code = min_tier;
        IF tid IS NULL THEN
            RAISE EXCEPTION 'tier "%" does not exist in program "%"', min_tier, program USING ERRCODE = 'LY003';
        END IF;
    END IF;
    INSERT INTO loyalty.reward (program_id, code, name, cost_points, stock, valid_from, valid_until,
                                min_tier_id, per_member_limit, grants, voucher_valid_days)
    VALUES (pid, add_reward.code, add_reward.name, add_reward.cost_points, add_reward.stock,
            add_reward.valid_from, add_reward.valid_until, tid, add_reward.per_member_limit,
            add_reward.grants, add_reward.voucher_valid_days)
    ON CONFLICT ON CONSTRAINT reward_program_id_code_key DO NOTHING
    RETURNING reward.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a reward "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_reward(text, text, text, bigint, bigint, jsonb, timestamptz, timestamptz, text, integer, integer) IS
    'add a reward to the catalog: cost, stock (NULL unlimited), grants, validity, tier, per-member limit';

CREATE FUNCTION loyalty.redeem_reward(member bigint, reward_code text, idempotency_key text,
                                      at timestamptz DEFAULT now())
    RETURNS loyalty.voucher_receipt
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_redeem_reward'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.redeem_reward(bigint, text, text, timestamptz) IS
    'spend points on a reward: debit, take one from stock and issue a signed voucher, atomically';

CREATE FUNCTION loyalty.check_voucher(code text, at timestamptz DEFAULT now())
    RETURNS TABLE (status text, sqlstate text, voucher_id bigint, member_id bigint, reward text,
                   reward_name text, grants jsonb, issued_at timestamptz, expires_at timestamptz,
                   used_at timestamptz, cancelled_at timestamptz)
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_check_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.check_voucher(text, timestamptz) IS
    'is a code valid, for what, expired, used? status valid/used/expired/cancelled/malformed/mistyped/forged/revoked';

CREATE FUNCTION loyalty.use_voucher(code text, idempotency_key text, at timestamptz DEFAULT now())
    RETURNS TABLE (voucher_id bigint, member_id bigint, reward text, grants jsonb, used_at timestamptz,
                   replayed boolean)
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_use_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.use_voucher(text, text, timestamptz) IS
    'spend a voucher exactly once (a retry with the same key replays; another use is LY095)';

CREATE FUNCTION loyalty.cancel_voucher(code text, idempotency_key text, at timestamptz DEFAULT now(),
                                       reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_cancel_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.cancel_voucher(text, text, timestamptz, text) IS
    'cancel an unused voucher: the points come back (entry reward_refund) and the stock';

CREATE FUNCTION loyalty.rotate_voucher_key() RETURNS integer
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_rotate_voucher_key'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.rotate_voucher_key() IS
    'new signing key for new vouchers; codes signed with older keys stay valid until they expire';

CREATE FUNCTION loyalty.revoke_voucher_key(key_id integer) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE loyalty.voucher_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = key_id;
END;
COMMENT ON FUNCTION loyalty.revoke_voucher_key(integer) IS
    'refuse every code signed with this key from now on (LY093)';

CREATE FUNCTION loyalty.voucher_keys()
    RETURNS TABLE (key_id integer, created_at timestamptz, revoked_at timestamptz, current boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT k.id, k.created_at, k.revoked_at,
           k.id = (SELECT max(c.id) FROM loyalty.voucher_key c WHERE c.revoked_at IS NULL)
      FROM loyalty.voucher_key k ORDER BY k.id;
END;
COMMENT ON FUNCTION loyalty.voucher_keys() IS 'the signing keys, without their secrets';

CREATE FUNCTION loyalty.voucher_bundle(program text, store text, at timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_bundle'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.voucher_bundle(text, text, timestamptz) IS
    'offline verification for one store: a derived store key and a tag per outstanding voucher';

CREATE FUNCTION loyalty.voucher_code(voucher_id bigint, key_id integer DEFAULT NULL) RETURNS text
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_code'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.voucher_code(bigint, integer) IS
    'the code of a voucher id under a key (owner only: support and tests)';

CREATE FUNCTION loyalty.voucher_codes(first_id bigint, n integer, key_id integer) RETURNS text[]
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_codes'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off;
COMMENT ON FUNCTION loyalty.voucher_codes(bigint, integer, integer) IS
    'the codes of n consecutive voucher ids under a key (owner only: tests of the code space)';

-- SECURITY DEFINER functions are not for everyone: grant them to the roles that need them.
REVOKE EXECUTE ON FUNCTION loyalty.redeem_reward(bigint, text, text, timestamptz),
                           loyalty.check_voucher(text, timestamptz),
                           loyalty.use_voucher(text, text, timestamptz),
                           loyalty.cancel_voucher(text, text, timestamptz, text),
                           loyalty.rotate_voucher_key(),
                           loyalty.revoke_voucher_key(integer),
                           loyalty.voucher_keys(),
                           loyalty.voucher_bundle(text, text, timestamptz),
                           loyalty.voucher_code(bigint, integer),
                           loyalty.voucher_codes(bigint, integer, integer)
    FROM PUBLIC;

-- The first signing key.
SELECT loyalty.rotate_voucher_key();

-- ---------------------------------------------------------------------------
-- Reports (issue 7): views and functions for reporting tools
-- ---------------------------------------------------------------------------
--
-- Shared definitions (also in the README):
--   * Balances "now" classify the lots by now(), exactly like loyalty.balance(m, now()):
--     a lot whose expiry instant (its expires_at, or the member's inactivity deadline)
--     is <= now() counts as expired even before maintenance has written its expire
--     entry, a pending lot whose available_at <= now() counts as available, and points
--     that expired while the member owed a debt settle the debt first.
--   * Periods are half-open: from_at <= at < to_at, on business time (entry.at).
--   * Active member: at least one earn or redeem entry in the period.
--   * Purchase: an earn entry.
--   * Points issued: points of earn, award, subscribe and renew entries and of positive
--     adjust entries. Transfers move existing points and are neither issued nor redeemed.
--   * Points redeemed: points of redeem entries (as a positive number).
--   * Points expired: points of expire entries, plus lots already past their expiry whose
--     expire entry maintenance has not written yet (classified by now()).
--   * Redemption rate = points redeemed / points issued; breakage rate = points expired /
--     points issued (both in the same period; NULL when nothing was issued).
--   * Repeat purchase rate = members with 2+ purchases / members with 1+ purchases.
--
-- Views run with the privileges of their owner; the functions are SECURITY DEFINER
-- (search_path pinned, read-only, EXECUTE revoked from PUBLIC). So a reporting role
-- needs only USAGE on the schema, SELECT on the views and EXECUTE on the functions:
-- it can read the reports and nothing else (see the README).

-- Debts (negative lots left by refunds under negative_balance = allow) are rare; the
-- liability view finds the members who owe through this index instead of scanning all
-- lots. It costs nothing on the write path: it is partial (only debt lots are in it) and
-- its columns (points, state) are already indexed by lot_live, so HOT updates are unchanged.
CREATE INDEX lot_debt ON loyalty.lot (member_id) WHERE points < 0 AND state <> 'x';

-- Who is this member and where do they stand?
CREATE VIEW loyalty.member_summary AS
SELECT m.id AS member_id,
       p.code AS program,
       m.external_ref,
       t.code AS tier,
       m.enrolled_at,
       (coalesce(b.a, 0) + least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS available,
       coalesce(b.p, 0)::bigint AS pending,
       m.lifetime_earned,
       m.redeemed,
       (m.expired + coalesce(b.x, 0) - least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS expired,
       m.last_activity_at,
       b.next_expiry,
       coalesce(b.next_expiry_points, 0)::bigint AS next_expiry_points,
       m.lifetime_spend,
       m.lifetime_visits,
       (coalesce(b.debt, 0) - least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS debt,
       m.qualifying,
       m.tier_since
  FROM loyalty.member m
  JOIN loyalty.program p ON p.id = m.program_id
  JOIN loyalty.tier t ON t.id = m.tier_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN p.expiry_policy = 'inactivity'
                   THEN loyalty.add_months_local(m.last_activity_at, p.expiry_months, p.timezone)
              END AS deadline) dl
 CROSS JOIN LATERAL (
       -- the member's open lots classified by now(), summed per expiry instant
       SELECT sum(g.a) AS a, sum(g.p) AS p, sum(g.x) AS x, sum(g.debt) AS debt,
              min(g.expiry) FILTER (WHERE g.live > 0) AS next_expiry,
              (array_agg(g.live ORDER BY g.expiry) FILTER (WHERE g.live > 0 AND g.expiry IS NOT NULL))[1]
                  AS next_expiry_points
         FROM (SELECT c.expiry,
                      sum(c.rem) FILTER (WHERE c.st = 'a') AS a,
                      sum(c.rem) FILTER (WHERE c.st = 'p') AS p,
                      sum(c.rem) FILTER (WHERE c.st = 'x') AS x,
                      -sum(c.rem) FILTER (WHERE c.st = 'a' AND c.rem < 0) AS debt,
                      sum(c.rem) FILTER (WHERE c.st <> 'x' AND c.rem > 0) AS live
                 FROM (SELECT l.remaining AS rem,
                              CASE WHEN l.points < 0 THEN NULL
                                   ELSE coalesce(l.expires_at, dl.deadline) END AS expiry,
                              CASE WHEN l.points < 0 THEN 'a'
                                   WHEN coalesce(l.expires_at, dl.deadline) <= now() THEN 'x'
                                   WHEN l.available_at > now() THEN 'p'
                                   ELSE 'a' END AS st
                         FROM loyalty.lot l
                        WHERE l.member_id = m.id AND l.state <> 'x' AND l.remaining <> 0) c
                GROUP BY c.expiry) g) b;
COMMENT ON VIEW loyalty.member_summary IS
    'one row per member: program, external_ref, current tier, balances now (lots classified by now(), '
    'the same figures as loyalty.balance(member, now()) whether or not maintenance has run), last activity '
    '(earn, award, redeem, adjust, transfer, subscribe, renew), next expiry instant and its points, lifetime '
    'spend (money, net of refunds) and visits (purchases not fully refunded), debt (points owed after a '
    'refund of spent points), qualifying figure and tier_since';

-- How many points are outstanding, what would they cost, and how many expire soon?
CREATE VIEW loyalty.liability AS
WITH totals AS (
    -- every open lot, classified by now(), summed per program
    SELECT m.program_id,
           coalesce(sum(l.remaining) FILTER (WHERE c.st = 'a'), 0) AS a,
           coalesce(sum(l.remaining) FILTER (WHERE c.st = 'p'), 0) AS p,
           coalesce(-sum(l.remaining) FILTER (WHERE l.points < 0), 0) AS debt,
           coalesce(sum(l.remaining) FILTER (WHERE c.st <> 'x' AND l.points > 0
                                               AND c.expiry <= now() + interval '30 days'), 0) AS exp30,
           coalesce(sum(l.remaining) FILTER (WHERE c.st <> 'x' AND l.points > 0
                                               AND c.expiry <= now() + interval '60 days'), 0) AS exp60,
           coalesce(sum(l.remaining) FILTER (WHERE c.st <> 'x' AND l.points > 0
                                               AND c.expiry <= now() + interval '90 days'), 0) AS exp90
      FROM loyalty.lot l
      JOIN loyalty.member m ON m.id = l.member_id
      JOIN loyalty.program pp ON pp.id = m.program_id
     CROSS JOIN LATERAL (
           SELECT coalesce(l.expires_at,
                           CASE WHEN pp.expiry_policy = 'inactivity'
                                THEN loyalty.add_months_local(m.last_activity_at, pp.expiry_months, pp.timezone)
                           END) AS expiry) x
     CROSS JOIN LATERAL (
           SELECT x.expiry,
                  CASE WHEN l.points < 0 THEN 'a'
                       WHEN x.expiry <= now() THEN 'x'
                       WHEN l.available_at > now() THEN 'p'
                       ELSE 'a' END AS st) c
     WHERE l.state <> 'x' AND l.remaining <> 0
     GROUP BY m.program_id
), settled AS (
    -- points past expiry (not yet swept) settle a member's debt first (as balance() and
    -- maintenance do): the members who owe are few, and member_summary nets it per member
    SELECT s.program, sum(s.debt) AS debt
      FROM loyalty.member_summary s
     WHERE s.member_id IN (SELECT d.member_id FROM loyalty.lot d WHERE d.points < 0 AND d.state <> 'x')
     GROUP BY s.program
)
SELECT p.code AS program,
       (coalesce(t.a, 0) + coalesce(t.debt, 0) - coalesce(s.debt, 0))::bigint AS available_points,
       coalesce(t.p, 0)::bigint AS pending_points,
       (coalesce(t.a, 0) + coalesce(t.debt, 0) - coalesce(s.debt, 0) + coalesce(t.p, 0))::bigint
           AS outstanding_points,
       p.cost_per_point,
       (coalesce(t.a, 0) + coalesce(t.debt, 0) - coalesce(s.debt, 0) + coalesce(t.p, 0)) * p.cost_per_point
           AS outstanding_value,
       coalesce(t.exp30, 0)::bigint AS expiring_30d,
       coalesce(t.exp60, 0)::bigint AS expiring_60d,
       coalesce(t.exp90, 0)::bigint AS expiring_90d,
       coalesce(s.debt, 0)::bigint AS debt_points,
       (coalesce(t.a, 0) + coalesce(t.debt, 0) - coalesce(s.debt, 0)) * p.cost_per_point AS available_value,
       coalesce(t.p, 0) * p.cost_per_point AS pending_value
  FROM loyalty.program p
  LEFT JOIN totals t ON t.program_id = p.id
  LEFT JOIN settled s ON s.program = p.code;
COMMENT ON VIEW loyalty.liability IS
    'per program, now: available and pending points (the sum of the members'' balances as balance(m, now()) '
    'gives them: lots classified by now(), debts netted, expired points settling debts first), '
    'outstanding = available + pending, its value at program.cost_per_point, points of open lots '
    'expiring in (now(), now() + 30/60/90 days] (gross, before any debt they would settle), and the points '
    'members still owe (debt_points)';

-- How are members spread over the tiers?
CREATE VIEW loyalty.tier_distribution AS
SELECT p.code AS program,
       t.code AS tier,
       t.name AS tier_name,
       t.threshold,
       count(m.id) AS members,
       CASE WHEN sum(count(m.id)) OVER (PARTITION BY p.id) > 0
            THEN count(m.id)::numeric / sum(count(m.id)) OVER (PARTITION BY p.id) END AS share
  FROM loyalty.program p
  JOIN loyalty.tier t ON t.program_id = p.id
  LEFT JOIN loyalty.member m ON m.tier_id = t.id
 GROUP BY p.id, p.code, t.id, t.code, t.name, t.threshold;
COMMENT ON VIEW loyalty.tier_distribution IS
    'per program and tier (every tier, also empty ones): members holding it now (member.tier_id) '
    'and their share of the program''s members (NULL when the program has none)';

-- Look up a program by code, with the project's errors.
CREATE FUNCTION loyalty.report_program(program text) RETURNS loyalty.program
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p loyalty.program;
BEGIN
    IF report_program.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT * INTO p FROM loyalty.program x WHERE x.code = report_program.program;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', report_program.program USING ERRCODE = 'LY001';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION loyalty.report_program(text) IS
    'the program with this code (LY034 when NULL, LY001 when unknown); used by the report functions';

CREATE FUNCTION loyalty.program_kpis(program text, from_at timestamptz, to_at timestamptz)
    RETURNS TABLE (members bigint, new_members bigint, active_members bigint,
                   points_issued bigint, points_redeemed bigint, points_expired bigint,
                   redemption_rate numeric, breakage_rate numeric, avg_points_per_member numeric,
                   repeat_purchase_rate numeric,
                   purchasers bigint, repeat_purchasers bigint, purchases bigint, spend numeric,
                   points_reversed bigint, points_adjusted_out bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p loyalty.program;
BEGIN
    p := loyalty.report_program(program_kpis.program);
    IF program_kpis.from_at IS NULL OR program_kpis.to_at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN program_kpis.from_at IS NULL THEN 'from_at' ELSE 'to_at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF program_kpis.from_at >= program_kpis.to_at THEN
        RAISE EXCEPTION 'from_at must be before to_at'
            USING ERRCODE = 'LY038',
                  DETAIL = format('The period is from_at <= at < to_at; got %s to %s.',
                                  program_kpis.from_at, program_kpis.to_at);
    END IF;

    RETURN QUERY
    WITH e AS (
        SELECT e.member_id, e.kind, e.points, e.amount
          FROM loyalty.entry e
          JOIN loyalty.member m ON m.id = e.member_id
         WHERE m.program_id = p.id
           AND e.at >= program_kpis.from_at AND e.at < program_kpis.to_at
    ), per_member AS (
        SELECT e.member_id,
               count(*) FILTER (WHERE e.kind = 'earn') AS purchases,
               bool_or(e.kind IN ('earn', 'redeem')) AS active
          FROM e GROUP BY e.member_id
    ), sums AS (
        SELECT coalesce(sum(e.points) FILTER (WHERE e.kind IN ('earn', 'award', 'subscribe', 'renew')
                                                 OR (e.kind = 'adjust' AND e.points > 0)), 0) AS issued,
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'reward_refund')), 0) AS redeemed,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0) AS expired,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'reverse'), 0) AS reversed,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'adjust' AND e.points < 0), 0) AS adjusted_out,
               count(*) FILTER (WHERE e.kind = 'earn') AS purchases,
               coalesce(sum(e.amount) FILTER (WHERE e.kind = 'earn'), 0)
                 - coalesce(sum(e.amount) FILTER (WHERE e.kind = 'reverse'), 0) AS spend
          FROM e
    ), unswept AS (
        -- lots past their expiry (within the period and by now()) whose expire entry
        -- has not been written: only members whose next transition is due can have them
        SELECT coalesce(sum(l.remaining), 0) AS points
          FROM loyalty.member m
          JOIN loyalty.lot l ON l.member_id = m.id
         CROSS JOIN LATERAL (
               SELECT coalesce(l.expires_at,
                               CASE WHEN p.expiry_policy = 'inactivity'
                                    THEN loyalty.add_months_local(m.last_activity_at, p.expiry_months, p.timezone)
                               END) AS expiry) x
         WHERE m.program_id = p.id AND m.next_transition_at <= now()
           AND l.state <> 'x' AND l.remaining > 0 AND l.points > 0
           AND x.expiry <= now()
           AND x.expiry >= program_kpis.from_at AND x.expiry < program_kpis.to_at
    ), mem AS (
        SELECT count(*) FILTER (WHERE m.enrolled_at < program_kpis.to_at) AS members,
               count(*) FILTER (WHERE m.enrolled_at >= program_kpis.from_at
                                  AND m.enrolled_at < program_kpis.to_at) AS new_members
          FROM loyalty.member m WHERE m.program_id = p.id
    ), act AS (
        SELECT count(*) FILTER (WHERE pm.active) AS active,
               count(*) FILTER (WHERE pm.purchases >= 1) AS purchasers,
               count(*) FILTER (WHERE pm.purchases >= 2) AS repeaters
          FROM per_member pm
    )
    SELECT mem.members, mem.new_members, act.active,
           s.issued::bigint, s.redeemed::bigint, (s.expired + u.points)::bigint,
           s.redeemed / nullif(s.issued, 0),
           (s.expired + u.points) / nullif(s.issued, 0),
           s.issued / nullif(act.active, 0)::numeric,
           act.repeaters / nullif(act.purchasers, 0)::numeric,
           act.purchasers, act.repeaters, s.purchases, s.spend,
           s.reversed::bigint, s.adjusted_out::bigint
      FROM sums s, unswept u, mem, act;
END
$$;
COMMENT ON FUNCTION loyalty.program_kpis(text, timestamptz, timestamptz) IS
    'a program''s figures for the period from_at <= at < to_at (business time): members (enrolled before to_at), '
    'new_members (enrolled in the period), active_members (an earn or redeem in the period), points_issued '
    '(earn, award, subscribe, renew, positive adjust), points_redeemed (redeem), points_expired (expire entries, '
    'plus lots past expiry not yet swept), redemption_rate = redeemed / issued, breakage_rate = expired / issued, '
    'avg_points_per_member = issued / active members, repeat_purchase_rate = members with 2+ purchases (earn '
    'entries) / members with 1+; then purchasers, repeat_purchasers, purchases, spend (earn amounts minus '
    'refunded amounts), points_reversed (refunds), points_adjusted_out (negative adjustments). Transfers count '
    'in none of them. Ratios are NULL when their denominator is 0';

-- The last 30 days, for dashboards.
CREATE VIEW loyalty.program_kpis_30d AS
SELECT p.code AS program, now() - interval '30 days' AS from_at, now() AS to_at, k.*
  FROM loyalty.program p
 CROSS JOIN LATERAL loyalty.program_kpis(p.code, now() - interval '30 days', now()) k;
COMMENT ON VIEW loyalty.program_kpis_30d IS
    'loyalty.program_kpis for every program over now() - 30 days <= at < now()';

CREATE FUNCTION loyalty.cohort_retention(program text, period text DEFAULT 'month')
    RETURNS TABLE (cohort date, period_offset integer, cohort_members bigint,
                   active_members bigint, retention numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p    loyalty.program;
    step interval;
    cur  timestamp;
BEGIN
    p := loyalty.report_program(cohort_retention.program);
    IF cohort_retention.period IS NULL THEN
        RAISE EXCEPTION 'period must not be null' USING ERRCODE = 'LY034';
    END IF;
    step := CASE cohort_retention.period
        WHEN 'week' THEN interval '1 week'
        WHEN 'month' THEN interval '1 month'
        WHEN 'quarter' THEN interval '3 months'
        WHEN 'year' THEN interval '1 year' END;
    IF step IS NULL THEN
        RAISE EXCEPTION 'invalid period "%"', cohort_retention.period
            USING ERRCODE = 'LY038', HINT = 'Use week, month, quarter or year.';
    END IF;
    cur := date_trunc(cohort_retention.period, now() AT TIME ZONE p.timezone);

    RETURN QUERY
    WITH mem AS (
        SELECT m.id, date_trunc(cohort_retention.period, m.enrolled_at AT TIME ZONE p.timezone) AS c
          FROM loyalty.member m WHERE m.program_id = p.id
    ), sizes AS (
        SELECT mem.c, count(*) AS n FROM mem GROUP BY mem.c
    ), act AS (
        SELECT mem.c, date_trunc(cohort_retention.period, e.at AT TIME ZONE p.timezone) AS b,
               count(DISTINCT e.member_id) AS n
          FROM loyalty.entry e JOIN mem ON mem.id = e.member_id
         WHERE e.kind IN ('earn', 'redeem')
         GROUP BY 1, 2
    )
    SELECT s.c::date, (g.k - 1)::integer, s.n, coalesce(a.n, 0), coalesce(a.n, 0)::numeric / s.n
      FROM sizes s
     CROSS JOIN LATERAL generate_series(s.c, greatest(cur, s.c), step) WITH ORDINALITY g(b, k)
      LEFT JOIN act a ON a.c = s.c AND a.b = g.b
     ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION loyalty.cohort_retention(text, text) IS
    'the retention triangle: members grouped by the period (week, month, quarter or year, in the program''s '
    'time zone) they enrolled in; for each following period up to the current one (period_offset 0 = the '
    'enrolment period), the members of the cohort active in it (an earn or redeem entry dated in it) and '
    'retention = active_members / cohort_members';

CREATE FUNCTION loyalty.member_value(program text, horizon_years numeric DEFAULT 3)
    RETURNS TABLE (member_id bigint, external_ref text, enrolled_at timestamptz, tenure_days numeric,
                   visits bigint, spend numeric, avg_order_value numeric, spend_per_year numeric,
                   points_earned bigint, points_cost numeric, clv_estimate numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p loyalty.program;
BEGIN
    p := loyalty.report_program(member_value.program);
    IF member_value.horizon_years IS NULL THEN
        RAISE EXCEPTION 'horizon_years must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF member_value.horizon_years = 'NaN' OR member_value.horizon_years <= 0
       OR member_value.horizon_years > 100 THEN
        RAISE EXCEPTION 'horizon_years must be above 0 and at most 100' USING ERRCODE = 'LY038';
    END IF;
    RETURN QUERY
    SELECT m.id, m.external_ref, m.enrolled_at, t.days, m.lifetime_visits, m.lifetime_spend,
           m.lifetime_spend / nullif(m.lifetime_visits, 0),
           m.lifetime_spend / (greatest(t.days, 30) / 365.25),
           m.lifetime_earned, m.lifetime_earned * p.cost_per_point,
           m.lifetime_spend / (greatest(t.days, 30) / 365.25) * member_value.horizon_years
      FROM loyalty.member m
     CROSS JOIN LATERAL (
           SELECT greatest(extract(epoch FROM now() - m.enrolled_at) / 86400, 0)::numeric AS days) t
     WHERE m.program_id = p.id
     ORDER BY m.id;
END
$$;
COMMENT ON FUNCTION loyalty.member_value(text, numeric) IS
    'per member of a program, now: tenure_days (since enrolment), visits (purchases not fully refunded), '
    'spend (money, net of refunds), avg_order_value = spend / visits, spend_per_year = spend / tenure in '
    'years (365.25 days; tenure counted as at least 30 days), points_earned (lifetime_earned) and '
    'points_cost = points_earned * cost_per_point, and the simple lifetime value estimate '
    'clv_estimate = spend_per_year * horizon_years (revenue, before margin and points cost)';

CREATE FUNCTION loyalty.expiring_points(within interval, program text DEFAULT NULL)
    RETURNS TABLE (member_id bigint, program_code text, external_ref text, expires_at timestamptz,
                   points bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF expiring_points.within IS NULL THEN
        RAISE EXCEPTION 'within must not be null' USING ERRCODE = 'LY034';
    END IF;
    -- compare the interval itself: now() + a huge interval would overflow
    IF expiring_points.within <= interval '0' OR expiring_points.within > interval '100 years' THEN
        RAISE EXCEPTION 'within must be a positive interval of at most 100 years' USING ERRCODE = 'LY038';
    END IF;
    IF expiring_points.program IS NOT NULL THEN
        pid := (loyalty.report_program(expiring_points.program)).id;
    END IF;
    RETURN QUERY
    SELECT m.id, p.code, m.external_ref, x.expiry, sum(l.remaining)::bigint
      FROM loyalty.program p
      JOIN loyalty.member m ON m.program_id = p.id
      JOIN loyalty.lot l ON l.member_id = m.id
     CROSS JOIN LATERAL (
           SELECT coalesce(l.expires_at,
                           CASE WHEN p.expiry_policy = 'inactivity'
                                THEN loyalty.add_months_local(m.last_activity_at, p.expiry_months, p.timezone)
                           END) AS expiry) x
     WHERE (pid IS NULL OR p.id = pid)
       AND l.state <> 'x' AND l.remaining > 0 AND l.points > 0
       AND x.expiry > now() AND x.expiry <= now() + expiring_points.within
     GROUP BY m.id, p.code, m.external_ref, x.expiry
     ORDER BY x.expiry, m.id;
END
$$;
COMMENT ON FUNCTION loyalty.expiring_points(interval, text) IS
    'for reminders: one row per member and expiry instant in (now(), now() + within], with the points '
    '(available or pending) that expire then, for one program or all (program NULL); gross, before any '
    'debt the expiring points would settle';

REVOKE EXECUTE ON FUNCTION loyalty.program_kpis(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.cohort_retention(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.member_value(text, numeric) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.expiring_points(interval, text) FROM PUBLIC;
