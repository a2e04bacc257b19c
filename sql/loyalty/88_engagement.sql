-- ---------------------------------------------------------------------------
-- Engagement: stamp cards, challenges and badges (src/engagement.c)
-- ---------------------------------------------------------------------------
-- Definitions are admin tables; progress tables are written only by the purchase
-- and refund hooks (earn and reverse), under the member's lock. Like the ledger,
-- the tables every purchase writes carry no foreign keys: each check would cost a
-- query per purchase, and only the C core writes them.

CREATE SEQUENCE loyalty.stamp_card_id_seq;
-- A stamp card: what earns a stamp (`per`, `attrs_match`, `line_match`,
-- `min_amount`), how many fill a card and what a full card gives (points or a
-- reward of the catalog, issued as a free voucher).
CREATE TABLE loyalty.stamp_card (
    id            bigint PRIMARY KEY DEFAULT nextval('loyalty.stamp_card_id_seq'),
    program_id    bigint NOT NULL REFERENCES loyalty.program,
    code          text NOT NULL CHECK (code <> ''),
    name          text NOT NULL,
    stamps_needed integer NOT NULL CHECK (stamps_needed BETWEEN 1 AND 10000),
    per           text NOT NULL CHECK (per IN ('purchase', 'line', 'qty')),
    attrs_match   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attrs_match) = 'object'),
    line_match    jsonb CHECK (jsonb_typeof(line_match) = 'object'),
    min_amount    numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0 AND min_amount < 'Infinity'),
    reward_points bigint CHECK (reward_points BETWEEN 1 AND 1000000000),
    reward_id     bigint REFERENCES loyalty.reward,
    match         jsonb NOT NULL,   -- the definition as given (normalised)
    reward        jsonb NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((reward_points IS NULL) <> (reward_id IS NULL)),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.stamp_card_id_seq OWNED BY loyalty.stamp_card.id;

-- A member's progress on a card: `stamps` is the net count ever collected
-- (given minus taken back by refunds), `completed` the cards filled and
-- rewarded. The card in hand holds stamps - completed * stamps_needed, which a
-- refund across a completed card can make negative (a debt, see README).
CREATE TABLE loyalty.member_stamp_card (
    member_id  bigint NOT NULL,
    card_id    bigint NOT NULL,
    stamps     bigint NOT NULL DEFAULT 0,
    completed  integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, card_id)
) WITH (fillfactor = 80);   -- room for HOT updates: every stamp updates the row

-- Every stamp movement: + by a purchase (entry_id = the purchase), - by a
-- refund (entry_id = the reverse entry). A refund takes back what its purchase
-- gave, never more.
CREATE TABLE loyalty.stamp (
    member_id         bigint NOT NULL,
    entry_id          bigint NOT NULL,
    card_id           bigint NOT NULL,
    purchase_entry_id bigint NOT NULL,
    at                timestamptz NOT NULL,
    stamps            integer NOT NULL,
    completed         integer NOT NULL DEFAULT 0,   -- cards this movement filled
    reward_entry_id   bigint,                       -- the award entry it wrote
    voucher_ids       bigint[],                     -- the vouchers it issued
    PRIMARY KEY (member_id, purchase_entry_id, entry_id, card_id)
);

CREATE SEQUENCE loyalty.challenge_id_seq;
-- A challenge: a goal over a period; completing it pays points and/or a badge.
CREATE TABLE loyalty.challenge (
    id            bigint PRIMARY KEY DEFAULT nextval('loyalty.challenge_id_seq'),
    program_id    bigint NOT NULL REFERENCES loyalty.program,
    code          text NOT NULL CHECK (code <> ''),
    name          text NOT NULL,
    goal          text NOT NULL CHECK (goal IN ('purchases', 'spend', 'stores', 'streak_weeks')),
    target        numeric NOT NULL CHECK (target > 0 AND target < 'Infinity'),
    period        text NOT NULL CHECK (period IN ('month', 'week', 'lifetime', 'fixed')),
    starts_at     timestamptz,
    ends_at       timestamptz,
    attrs_match   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attrs_match) = 'object'),
    min_amount    numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0 AND min_amount < 'Infinity'),
    reward_points bigint CHECK (reward_points BETWEEN 1 AND 1000000000),
    badge         text CHECK (badge <> ''),
    definition    jsonb NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (reward_points IS NOT NULL OR badge IS NOT NULL),
    CHECK ((period = 'fixed') = (starts_at IS NOT NULL AND ends_at IS NOT NULL)),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.challenge_id_seq OWNED BY loyalty.challenge.id;

-- Progress per member, challenge and period instance (a calendar month or week
-- in the program's time zone, the fixed window, or all time), kept
-- incrementally by the purchase and refund hooks.
CREATE TABLE loyalty.challenge_progress (
    member_id       bigint NOT NULL,
    challenge_id    bigint NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    purchases       integer NOT NULL DEFAULT 0,
    spend           numeric NOT NULL DEFAULT 0,
    stores          integer NOT NULL DEFAULT 0,   -- distinct stores with a purchase still counted
    streak          integer NOT NULL DEFAULT 0,   -- longest run of consecutive weeks with a purchase
    completed_at    timestamptz,
    completed_by    bigint,                       -- the purchase entry that completed it
    reward_entry_id bigint,
    PRIMARY KEY (member_id, challenge_id, period_start)
) WITH (fillfactor = 80);

-- Purchases per store (goal stores) or per local week (goal streak_weeks),
-- bucket = the store, or the Monday of the week as YYYY-MM-DD.
CREATE TABLE loyalty.challenge_tally (
    member_id    bigint NOT NULL,
    challenge_id bigint NOT NULL,
    period_start timestamptz NOT NULL,
    bucket       text NOT NULL,
    purchases    integer NOT NULL,
    PRIMARY KEY (member_id, challenge_id, period_start, bucket)
) WITH (fillfactor = 80);

-- What each purchase added to each challenge, so its refund takes back exactly that.
CREATE TABLE loyalty.challenge_credit (
    member_id         bigint NOT NULL,
    purchase_entry_id bigint NOT NULL,
    challenge_id      bigint NOT NULL,
    period_start      timestamptz NOT NULL,
    amount            numeric NOT NULL,
    refunded          numeric NOT NULL DEFAULT 0,
    bucket            text,
    counted           boolean NOT NULL DEFAULT true,   -- still counted as a purchase
    PRIMARY KEY (member_id, purchase_entry_id, challenge_id)
);

-- Badges a member holds: each at most once, from the first challenge that gave it.
CREATE TABLE loyalty.member_badge (
    member_id         bigint NOT NULL REFERENCES loyalty.member,
    badge             text NOT NULL,
    challenge_id      bigint NOT NULL REFERENCES loyalty.challenge,
    awarded_at        timestamptz NOT NULL,
    purchase_entry_id bigint NOT NULL,
    PRIMARY KEY (member_id, badge)
);

-- Backends cache which programs have cards or challenges (src/engagement.c);
-- a change to the definitions drops that cache everywhere.
CREATE TRIGGER stamp_card_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.stamp_card
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();
CREATE TRIGGER challenge_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.challenge
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();

SELECT pg_catalog.pg_extension_config_dump('loyalty.stamp_card', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.stamp_card_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member_stamp_card', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.stamp', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.challenge', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.challenge_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.challenge_progress', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.challenge_tally', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.challenge_credit', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member_badge', '');

-- The reward of a card or a challenge: {"points": N} and/or {"reward": code}
-- (cards) or {"badge": code} (challenges). Returns points, reward id, badge.
CREATE FUNCTION loyalty.engagement_reward(program_id bigint, reward jsonb, allow text[],
                                          OUT points bigint, OUT reward_id bigint, OUT badge text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF reward IS NULL THEN
        RAISE EXCEPTION 'reward must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF jsonb_typeof(reward) <> 'object' THEN
        RAISE EXCEPTION 'reward must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    FOR k IN SELECT jsonb_object_keys(reward) LOOP
        IF NOT k = ANY (allow) THEN
            RAISE EXCEPTION 'unknown reward key "%"', k USING ERRCODE = 'LY122',
                DETAIL = format('Allowed keys: %s.', array_to_string(allow, ', '));
        END IF;
    END LOOP;
    IF reward ? 'points' THEN
        IF jsonb_typeof(reward -> 'points') <> 'number'
           OR (reward ->> 'points')::numeric <> trunc((reward ->> 'points')::numeric)
           OR (reward ->> 'points')::numeric NOT BETWEEN 1 AND 1000000000 THEN
            RAISE EXCEPTION 'reward points must be an integer from 1 to 1000000000' USING ERRCODE = 'LY122';
        END IF;
        points := (reward ->> 'points')::bigint;
    END IF;
    IF reward ? 'reward' THEN
        IF jsonb_typeof(reward -> 'reward') <> 'string' THEN
            RAISE EXCEPTION 'reward "reward" must be the code of a catalog reward' USING ERRCODE = 'LY122';
        END IF;
        SELECT r.id INTO reward_id FROM loyalty.reward r
         WHERE r.program_id = engagement_reward.program_id AND r.code = reward ->> 'reward';
        IF reward_id IS NULL THEN
            RAISE EXCEPTION 'reward "%" does not exist in the program', reward ->> 'reward'
                USING ERRCODE = 'LY007';
        END IF;
    END IF;
    IF reward ? 'badge' THEN
        IF jsonb_typeof(reward -> 'badge') <> 'string' OR reward ->> 'badge' = ''
           OR octet_length(reward ->> 'badge') > 512 THEN
            RAISE EXCEPTION 'badge must be a string of 1 to 512 bytes' USING ERRCODE = 'LY122';
        END IF;
        badge := reward ->> 'badge';
    END IF;
END
$$;
COMMENT ON FUNCTION loyalty.engagement_reward(bigint, jsonb, text[]) IS
    'internal: validate the reward of a stamp card or challenge';

-- The program id of a definition's program, after the common argument checks.
CREATE FUNCTION loyalty.engagement_program(program text, code text, name text)
    RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF program IS NULL OR code IS NULL THEN
        RAISE EXCEPTION 'program and code must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR octet_length(code) > 512 OR name = '' OR octet_length(name) > 512 THEN
        RAISE EXCEPTION 'code and name must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p
     WHERE p.code = engagement_program.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    RETURN pid;
END
$$;
COMMENT ON FUNCTION loyalty.engagement_program(text, text, text) IS
    'internal: checks shared by add_stamp_card and add_challenge';

CREATE FUNCTION loyalty.add_stamp_card(program text, code text, stamps_needed integer,
                                       match jsonb, reward jsonb, name text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid   bigint;
    k     text;
    per   text := 'purchase';
    amin  numeric := 0;
    r     record;
    id    bigint;
BEGIN
    pid := loyalty.engagement_program(program, code, name);
    IF stamps_needed IS NULL OR match IS NULL THEN
        RAISE EXCEPTION 'stamps_needed and match must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF stamps_needed NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'stamps_needed must be from 1 to 10000' USING ERRCODE = 'LY121',
            DETAIL = format('It was %s.', stamps_needed);
    END IF;
    IF jsonb_typeof(match) <> 'object' THEN
        RAISE EXCEPTION 'match must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    FOR k IN SELECT jsonb_object_keys(match) LOOP
        IF k NOT IN ('per', 'attrs', 'line', 'min_amount') THEN
            RAISE EXCEPTION 'unknown match key "%"', k USING ERRCODE = 'LY120',
                DETAIL = 'Allowed keys: per, attrs, line, min_amount.';
        END IF;
    END LOOP;
    IF match ? 'per' THEN
        IF jsonb_typeof(match -> 'per') <> 'string' OR match ->> 'per' NOT IN ('purchase', 'line', 'qty') THEN
            RAISE EXCEPTION 'match "per" must be "purchase", "line" or "qty"' USING ERRCODE = 'LY120';
        END IF;
        per := match ->> 'per';
    END IF;
    IF match ? 'attrs' AND jsonb_typeof(match -> 'attrs') <> 'object' THEN
        RAISE EXCEPTION 'match "attrs" must be a JSON object' USING ERRCODE = 'LY120';
    END IF;
    IF match ? 'line' AND jsonb_typeof(match -> 'line') <> 'object' THEN
        RAISE EXCEPTION 'match "line" must be a JSON object' USING ERRCODE = 'LY120';
    END IF;
    IF match ? 'min_amount' THEN
        IF jsonb_typeof(match -> 'min_amount') <> 'number' OR (match ->> 'min_amount')::numeric < 0
           OR (match ->> 'min_amount')::numeric > 1e15 THEN
            RAISE EXCEPTION 'match "min_amount" must be a number from 0 to 1e15' USING ERRCODE = 'LY120';
        END IF;
        amin := (match ->> 'min_amount')::numeric;
    END IF;
    r := loyalty.engagement_reward(pid, reward, ARRAY['points', 'reward']);
    IF (r.points IS NULL) = (r.reward_id IS NULL) THEN
        RAISE EXCEPTION 'a stamp card rewards either points or a catalog reward' USING ERRCODE = 'LY122',
            HINT = 'Use {"points": N} or {"reward": "code"}.';
    END IF;
    INSERT INTO loyalty.stamp_card (program_id, code, name, stamps_needed, per, attrs_match, line_match,
                                    min_amount, reward_points, reward_id, match, reward)
    VALUES (pid, add_stamp_card.code, coalesce(add_stamp_card.name, add_stamp_card.code),
            add_stamp_card.stamps_needed, per, coalesce(match -> 'attrs', '{}'), match -> 'line', amin,
            r.points, r.reward_id,
            jsonb_build_object('per', per, 'min_amount', amin) || jsonb_strip_nulls(jsonb_build_object(
                'attrs', match -> 'attrs', 'line', match -> 'line')),
            reward)
    ON CONFLICT ON CONSTRAINT stamp_card_program_id_code_key DO NOTHING
    RETURNING stamp_card.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a stamp card "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_stamp_card(text, text, integer, jsonb, jsonb, text) IS
    'define a stamp card: what earns a stamp, how many fill it, what a full card gives';

CREATE FUNCTION loyalty.add_challenge(program text, code text, definition jsonb, name text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid    bigint;
    k      text;
    d      jsonb := definition;
    goal   text;
    target numeric;
    period text;
    t0     timestamptz;
    t1     timestamptz;
    m      jsonb := '{}';
    amin   numeric := 0;
    r      record;
    id     bigint;
BEGIN
    pid := loyalty.engagement_program(program, code, name);
    IF d IS NULL THEN
        RAISE EXCEPTION 'definition must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF jsonb_typeof(d) <> 'object' THEN
        RAISE EXCEPTION 'definition must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    FOR k IN SELECT jsonb_object_keys(d) LOOP
        IF k NOT IN ('goal', 'target', 'period', 'match', 'reward') THEN
            RAISE EXCEPTION 'unknown challenge key "%"', k USING ERRCODE = 'LY123',
                DETAIL = 'Allowed keys: goal, target, period, match, reward.';
        END IF;
    END LOOP;
    IF jsonb_typeof(d -> 'goal') IS DISTINCT FROM 'string'
       OR d ->> 'goal' NOT IN ('purchases', 'spend', 'stores', 'streak_weeks') THEN
        RAISE EXCEPTION 'challenge "goal" must be "purchases", "spend", "stores" or "streak_weeks"'
            USING ERRCODE = 'LY123';
    END IF;
    goal := d ->> 'goal';
    IF jsonb_typeof(d -> 'target') IS DISTINCT FROM 'number' OR (d ->> 'target')::numeric <= 0
       OR (d ->> 'target')::numeric > 1e15
       OR (goal <> 'spend' AND ((d ->> 'target')::numeric <> trunc((d ->> 'target')::numeric)
                                OR (d ->> 'target')::numeric > 1000000)) THEN
        RAISE EXCEPTION 'challenge "target" must be a positive number (an integer up to 1000000 for %)', goal
            USING ERRCODE = 'LY123';
    END IF;
    target := (d ->> 'target')::numeric;
    CASE jsonb_typeof(d -> 'period')
        WHEN 'string' THEN
            period := d ->> 'period';
            IF period NOT IN ('month', 'week', 'lifetime') THEN
                RAISE EXCEPTION 'challenge "period" must be "month", "week", "lifetime" or {"from": ..., "to": ...}'
                    USING ERRCODE = 'LY123';
            END IF;
        WHEN 'object' THEN
            period := 'fixed';
            IF (SELECT count(*) FROM jsonb_object_keys(d -> 'period') x WHERE x NOT IN ('from', 'to')) > 0
               OR jsonb_typeof(d -> 'period' -> 'from') IS DISTINCT FROM 'string'
               OR jsonb_typeof(d -> 'period' -> 'to') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'a fixed challenge period is {"from": timestamp, "to": timestamp}'
                    USING ERRCODE = 'LY123';
            END IF;
            BEGIN
                t0 := (d -> 'period' ->> 'from')::timestamptz;
                t1 := (d -> 'period' ->> 'to')::timestamptz;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'a fixed challenge period needs two timestamps' USING ERRCODE = 'LY123';
            END;
            IF NOT isfinite(t0) OR NOT isfinite(t1) OR t1 <= t0 THEN
                RAISE EXCEPTION 'a fixed challenge period must be finite and end after it starts'
                    USING ERRCODE = 'LY123';
            END IF;
        ELSE
            RAISE EXCEPTION 'challenge "period" is required: "month", "week", "lifetime" or {"from": ..., "to": ...}'
                USING ERRCODE = 'LY123';
    END CASE;
    IF goal = 'streak_weeks' AND period IN ('month', 'week') THEN
        RAISE EXCEPTION 'a streak of weeks needs a "lifetime" or fixed period' USING ERRCODE = 'LY123';
    END IF;
    IF d ? 'match' THEN
        m := d -> 'match';
        IF jsonb_typeof(m) <> 'object'
           OR (SELECT count(*) FROM jsonb_object_keys(m) x WHERE x NOT IN ('attrs', 'min_amount')) > 0
           OR (m ? 'attrs' AND jsonb_typeof(m -> 'attrs') <> 'object')
           OR (m ? 'min_amount' AND (jsonb_typeof(m -> 'min_amount') <> 'number'
                                     OR (m ->> 'min_amount')::numeric NOT BETWEEN 0 AND 1e15)) THEN
            RAISE EXCEPTION 'challenge "match" is {"attrs": {...}, "min_amount": number >= 0}'
                USING ERRCODE = 'LY123';
        END IF;
        amin := coalesce((m ->> 'min_amount')::numeric, 0);
    END IF;
    IF NOT d ? 'reward' THEN
        RAISE EXCEPTION 'challenge "reward" is required: {"points": N} and/or {"badge": "code"}'
            USING ERRCODE = 'LY122';
    END IF;
    r := loyalty.engagement_reward(pid, d -> 'reward', ARRAY['points', 'badge']);
    IF r.points IS NULL AND r.badge IS NULL THEN
        RAISE EXCEPTION 'a challenge rewards points, a badge or both' USING ERRCODE = 'LY122';
    END IF;
    INSERT INTO loyalty.challenge (program_id, code, name, goal, target, period, starts_at, ends_at,
                                   attrs_match, min_amount, reward_points, badge, definition)
    VALUES (pid, add_challenge.code, coalesce(add_challenge.name, add_challenge.code), goal, target,
            period, t0, t1, coalesce(m -> 'attrs', '{}'), amin, r.points, r.badge, d)
    ON CONFLICT ON CONSTRAINT challenge_program_id_code_key DO NOTHING
    RETURNING challenge.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a challenge "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_challenge(text, text, jsonb, text) IS
    'define a challenge: a goal (purchases, spend, stores, streak_weeks) over a period, and its reward';

-- The member row, or LY002 / LY034.
CREATE FUNCTION loyalty.engagement_member(member bigint) RETURNS loyalty.member
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m loyalty.member;
BEGIN
    IF member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT * INTO m FROM loyalty.member mm WHERE mm.id = engagement_member.member;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member % does not exist', member USING ERRCODE = 'LY002';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION loyalty.engagement_member(bigint) IS 'internal: the member, or LY002';

CREATE FUNCTION loyalty.stamp_cards(member bigint)
    RETURNS TABLE (card text, name text, stamps integer, needed integer, completed integer,
                   reward_pending integer, total_stamps bigint, reward jsonb, active boolean)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m loyalty.member := loyalty.engagement_member(member);
BEGIN
    -- stamps: on the card in hand (negative: a debt left by a refund);
    -- reward_pending: full cards whose catalog reward could not be issued yet.
    RETURN QUERY
    SELECT c.code, c.name,
           (coalesce(s.stamps, 0) - coalesce(s.completed, 0)::bigint * c.stamps_needed
              - greatest((coalesce(s.stamps, 0) - coalesce(s.completed, 0)::bigint * c.stamps_needed)
                          / c.stamps_needed, 0) * c.stamps_needed)::integer,
           c.stamps_needed,
           coalesce(s.completed, 0),
           greatest((coalesce(s.stamps, 0) - coalesce(s.completed, 0)::bigint * c.stamps_needed)
                     / c.stamps_needed, 0)::integer,
           coalesce(s.stamps, 0), c.reward, c.active
      FROM loyalty.stamp_card c
      LEFT JOIN loyalty.member_stamp_card s ON s.member_id = m.id AND s.card_id = c.id
     WHERE c.program_id = m.program_id AND (c.active OR s.card_id IS NOT NULL)
     ORDER BY c.code;
END
$$;
COMMENT ON FUNCTION loyalty.stamp_cards(bigint) IS
    'a member''s stamp cards: stamps on the card in hand, stamps needed, cards completed';

CREATE FUNCTION loyalty.challenge_progress(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (challenge text, name text, goal text, target numeric, progress numeric,
                   period_start timestamptz, period_end timestamptz, completed_at timestamptz,
                   reward_points bigint, badge text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m  loyalty.member := loyalty.engagement_member(member);
    tz text;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'business time must be finite' USING ERRCODE = 'LY033';
    END IF;
    SELECT p.timezone INTO tz FROM loyalty.program p WHERE p.id = m.program_id;
    -- the period instance of each active challenge that contains `at`
    RETURN QUERY
    WITH c AS (
        SELECT c.*,
               CASE c.period
                   WHEN 'month' THEN date_trunc('month', challenge_progress.at AT TIME ZONE tz) AT TIME ZONE tz
                   WHEN 'week' THEN date_trunc('week', challenge_progress.at AT TIME ZONE tz) AT TIME ZONE tz
                   WHEN 'fixed' THEN c.starts_at
                   ELSE '-infinity'::timestamptz END AS ps,
               CASE c.period
                   WHEN 'month' THEN (date_trunc('month', challenge_progress.at AT TIME ZONE tz) + interval '1 month') AT TIME ZONE tz
                   WHEN 'week' THEN (date_trunc('week', challenge_progress.at AT TIME ZONE tz) + interval '7 days') AT TIME ZONE tz
                   WHEN 'fixed' THEN c.ends_at
                   ELSE 'infinity'::timestamptz END AS pe
          FROM loyalty.challenge c
         WHERE c.program_id = m.program_id AND c.active
    )
    SELECT c.code, c.name, c.goal, c.target,
           CASE c.goal WHEN 'purchases' THEN coalesce(p.purchases, 0)::numeric
                       WHEN 'spend' THEN coalesce(p.spend, 0)
                       WHEN 'stores' THEN coalesce(p.stores, 0)::numeric
                       ELSE coalesce(p.streak, 0)::numeric END,
           c.ps, c.pe, p.completed_at, c.reward_points, c.badge
      FROM c
      LEFT JOIN loyalty.challenge_progress p
        ON p.member_id = m.id AND p.challenge_id = c.id AND p.period_start = c.ps
     ORDER BY c.code;
END
$$;
COMMENT ON FUNCTION loyalty.challenge_progress(bigint, timestamptz) IS
    'a member''s progress on each active challenge in the period that contains `at`';

CREATE FUNCTION loyalty.member_badges(member bigint)
    RETURNS TABLE (badge text, challenge text, awarded_at timestamptz, purchase_entry_id bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m loyalty.member := loyalty.engagement_member(member);
BEGIN
    RETURN QUERY
    SELECT b.badge, c.code, b.awarded_at, b.purchase_entry_id
      FROM loyalty.member_badge b JOIN loyalty.challenge c ON c.id = b.challenge_id
     WHERE b.member_id = m.id
     ORDER BY b.awarded_at, b.badge;
END
$$;
COMMENT ON FUNCTION loyalty.member_badges(bigint) IS 'the badges a member holds, and when';

-- What must hold between the engagement tables and the ledger; no rows when all is well.
CREATE FUNCTION loyalty.check_engagement()
    RETURNS TABLE (member_id bigint, invariant text, detail text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- a member's card is the sum of its stamp log
    SELECT s.member_id, 'stamp_card_log',
           format('card %s holds %s stamps, %s completed; its log says %s and %s', s.card_id,
                  s.stamps, s.completed, coalesce(l.stamps, 0), coalesce(l.completed, 0))
      FROM loyalty.member_stamp_card s
      LEFT JOIN (SELECT g.member_id, g.card_id, sum(g.stamps) AS stamps, sum(g.completed) AS completed
                   FROM loyalty.stamp g GROUP BY g.member_id, g.card_id) l
        ON l.member_id = s.member_id AND l.card_id = s.card_id
     WHERE s.stamps <> coalesce(l.stamps, 0) OR s.completed <> coalesce(l.completed, 0)
    UNION ALL
    SELECT l.member_id, 'stamp_log_orphan', format('card %s has a log but no card row', l.card_id)
      FROM (SELECT DISTINCT g.member_id, g.card_id FROM loyalty.stamp g) l
     WHERE NOT EXISTS (SELECT FROM loyalty.member_stamp_card s WHERE s.member_id = l.member_id AND s.card_id = l.card_id)
    UNION ALL
    -- refunds never take back more stamps than their purchase gave
    SELECT g.member_id, 'stamps_overtaken',
           format('purchase %s, card %s: %s stamps net', g.purchase_entry_id, g.card_id, sum(g.stamps))
      FROM loyalty.stamp g GROUP BY g.member_id, g.purchase_entry_id, g.card_id HAVING sum(g.stamps) < 0
    UNION ALL
    -- every card completed was paid once: points in award entries, or one voucher each
    SELECT s.member_id, 'stamp_card_paid', format('card %s: %s completed, %s paid', s.card_id, s.completed, p.paid)
      FROM loyalty.member_stamp_card s
      JOIN loyalty.stamp_card c ON c.id = s.card_id
     CROSS JOIN LATERAL (
           SELECT CASE WHEN c.reward_points IS NOT NULL
                       THEN (SELECT coalesce(sum(e.points), 0) FROM loyalty.stamp l
                               JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.reward_entry_id
                              WHERE l.member_id = s.member_id AND l.card_id = s.card_id) / c.reward_points
                       ELSE (SELECT count(*) FROM loyalty.stamp l
                               JOIN loyalty.voucher v ON v.member_id = l.member_id AND v.id = ANY (l.voucher_ids)
                              WHERE l.member_id = s.member_id AND l.card_id = s.card_id) END AS paid) p
     WHERE s.completed <> p.paid
    UNION ALL
    -- a challenge's progress is the sum of what its purchases still count
    SELECT p.member_id, 'challenge_progress',
           format('challenge %s from %s: %s purchases, spend %s; credits say %s and %s', p.challenge_id,
                  p.period_start, p.purchases, p.spend, coalesce(c.n, 0), coalesce(c.spend, 0))
      FROM loyalty.challenge_progress p
      LEFT JOIN (SELECT r.member_id, r.challenge_id, r.period_start, count(*) FILTER (WHERE r.counted) AS n,
                        sum(r.amount - r.refunded) AS spend
                   FROM loyalty.challenge_credit r GROUP BY r.member_id, r.challenge_id, r.period_start) c
        ON c.member_id = p.member_id AND c.challenge_id = p.challenge_id AND c.period_start = p.period_start
     WHERE p.purchases <> coalesce(c.n, 0) OR p.spend <> coalesce(c.spend, 0)
    UNION ALL
    SELECT t.member_id, 'challenge_tally',
           format('challenge %s from %s, bucket %s: %s purchases; credits say %s', t.challenge_id,
                  t.period_start, t.bucket, t.purchases,
                  (SELECT count(*) FROM loyalty.challenge_credit r
                    WHERE r.member_id = t.member_id AND r.challenge_id = t.challenge_id
                      AND r.period_start = t.period_start AND r.bucket = t.bucket AND r.counted))
      FROM loyalty.challenge_tally t
     WHERE t.purchases <> (SELECT count(*) FROM loyalty.challenge_credit r
                            WHERE r.member_id = t.member_id AND r.challenge_id = t.challenge_id
                              AND r.period_start = t.period_start AND r.bucket = t.bucket AND r.counted)
    UNION ALL
    -- a completion with points has its award entry; none without
    SELECT p.member_id, 'challenge_paid', format('challenge %s from %s', p.challenge_id, p.period_start)
      FROM loyalty.challenge_progress p JOIN loyalty.challenge c ON c.id = p.challenge_id
     WHERE (p.completed_at IS NULL AND p.reward_entry_id IS NOT NULL)
        OR (p.completed_at IS NOT NULL AND c.reward_points IS NOT NULL
            AND NOT EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = p.member_id AND e.id = p.reward_entry_id
                              AND e.kind = 'award' AND e.points = c.reward_points))
    UNION ALL
    -- a badge comes from a completion of its challenge
    SELECT b.member_id, 'badge_unearned', format('badge %s from challenge %s', b.badge, b.challenge_id)
      FROM loyalty.member_badge b
     WHERE NOT EXISTS (SELECT FROM loyalty.challenge_progress p
                        WHERE p.member_id = b.member_id AND p.challenge_id = b.challenge_id
                          AND p.completed_at IS NOT NULL);
END;
COMMENT ON FUNCTION loyalty.check_engagement() IS
    'engagement invariants: cards match their stamp log and were paid once, challenge progress matches its credits';
