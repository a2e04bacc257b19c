-- loyalty 1.0: programs, tiers, members, the append-only ledger, lots and balances.
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
    'subscribe', 'renew');

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
CREATE INDEX entry_member_at ON loyalty.entry (member_id, at);
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
CREATE INDEX lot_entry ON loyalty.lot (member_id, entry_id);

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

CREATE FUNCTION loyalty.create_program(code text, name text, settings jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_create_program'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.create_program(text, text, jsonb) IS
    'create a loyalty program; settings are validated (unknown keys are an error)';

CREATE FUNCTION loyalty.add_tier(program text, code text, name text, threshold numeric,
                                 earn_multiplier numeric DEFAULT 1, benefits jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_add_tier'
    SET search_path = pg_catalog, pg_temp;
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
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.enroll(text, text, timestamptz, text) IS
    'enroll a member; idempotent on (program, external_ref)';

CREATE FUNCTION loyalty.member_id(program text, external_ref text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
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
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.earn(bigint, numeric, text, timestamptz, jsonb) IS
    'credit points for a purchase of `amount`';

CREATE FUNCTION loyalty.award(member bigint, points bigint, reason text, idempotency_key text,
                              at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_award'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.award(bigint, bigint, text, text, timestamptz) IS
    'credit bonus points that are not tied to a purchase';

CREATE FUNCTION loyalty.redeem(member bigint, points bigint, idempotency_key text,
                               at timestamptz DEFAULT now(), reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_redeem'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.redeem(bigint, bigint, text, timestamptz, text) IS
    'spend available points, soonest-expiring lots first';

CREATE FUNCTION loyalty.reverse(member bigint, original_key text, amount numeric,
                                idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_reverse'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.reverse(bigint, text, numeric, text, timestamptz) IS
    'take back the points of a refunded (part of a) purchase';

CREATE FUNCTION loyalty.adjust(member bigint, points bigint, reason text, idempotency_key text,
                               at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_adjust'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.adjust(bigint, bigint, text, text, timestamptz) IS
    'manual correction by staff (positive or negative); reason required';

CREATE FUNCTION loyalty.transfer(from_member bigint, to_member bigint, points bigint,
                                 idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_transfer'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.transfer(bigint, bigint, bigint, text, timestamptz) IS
    'move available points between members of one program; lots keep their expiry';

-- ---------------------------------------------------------------------------
-- Maintenance
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.run_maintenance(now timestamptz DEFAULT now(), max_members integer DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_run_maintenance'
    SET search_path = pg_catalog, pg_temp;
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
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out')
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
AS $$
BEGIN
    IF statement.member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member mm WHERE mm.id = statement.member) THEN
        RAISE EXCEPTION 'member % does not exist', statement.member USING ERRCODE = 'LY002';
    END IF;
    RETURN QUERY
    SELECT e.id, e.at, e.recorded_at, e.kind::text, e.points, e.idempotency_key,
           e.detail || jsonb_strip_nulls(jsonb_build_object(
               'amount', e.amount,
               'reason', e.reason,
               'counterparty', e.counterparty_id,
               'drawn', (SELECT jsonb_agg(jsonb_build_object('lot', d.lot_id, 'points', d.points)
                                          ORDER BY d.lot_id)
                           FROM loyalty.lot_draw d
                          WHERE d.member_id = e.member_id AND d.entry_id = e.id),
               'lots', (SELECT jsonb_agg(jsonb_build_object('lot', l.id, 'points', l.points,
                                                            'available_at', l.available_at,
                                                            'expires_at', l.expires_at)
                                         ORDER BY l.id)
                          FROM loyalty.lot l
                         WHERE l.member_id = e.member_id AND l.entry_id = e.id)))
      FROM loyalty.entry e
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
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out')
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
    SET search_path = pg_catalog, pg_temp;
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
    IF code = '' OR name = '' THEN
        RAISE EXCEPTION 'plan code and name must not be empty' USING ERRCODE = 'LY037';
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
    ON CONFLICT (program_id, code) DO NOTHING
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
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.subscribe(bigint, text, text, timestamptz) IS
    'buy a membership plan: its tier holds for the paid period';

CREATE FUNCTION loyalty.renew(member bigint, idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_renew'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.renew(bigint, text, timestamptz) IS
    'pay for one more period of the member''s plan (from its end, or from `at` if it lapsed)';

CREATE FUNCTION loyalty.cancel_subscription(member bigint, at timestamptz DEFAULT now())
    RETURNS timestamptz
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_cancel_subscription'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.cancel_subscription(bigint, timestamptz) IS
    'stop renewing; returns when the paid period (and the granted tier) ends';

CREATE FUNCTION loyalty.tier_history(member bigint)
    RETURNS TABLE (at timestamptz, from_tier text, to_tier text, reason text, qualifying numeric,
                   detail jsonb, recorded_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
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
        WHEN p.grace_days > 0 THEN mt.review_at + make_interval(days => p.grace_days)
        ELSE mt.review_at END;
    benefits := mt.benefits;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION loyalty.tier_progress(bigint, timestamptz) IS
    'what an app shows a member: tier, qualifying figure, next tier and what is still needed, when the tier would lapse, benefits';
