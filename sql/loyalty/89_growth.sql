-- ---------------------------------------------------------------------------
-- Growth: event awards, birthdays, referrals, segments, personalised offers
-- (src/events.c, src/referrals.c, src/segments.c)
-- ---------------------------------------------------------------------------

-- ---- event awards ----------------------------------------------------------

CREATE SEQUENCE loyalty.event_type_id_seq;
-- A named event of a program and what it pays; per/max_per_period: at most
-- max_per_period awards per local day, ISO week, month or year of the
-- program's time zone, or ever. Both NULL: no limit.
CREATE TABLE loyalty.event_type (
    id             bigint PRIMARY KEY DEFAULT nextval('loyalty.event_type_id_seq'),
    program_id     bigint NOT NULL REFERENCES loyalty.program,
    code           text NOT NULL CHECK (code <> ''),
    points         bigint NOT NULL CHECK (points > 0),
    per            text CHECK (per IN ('ever', 'day', 'week', 'month', 'year')),
    max_per_period integer CHECK (max_per_period >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((per IS NULL) = (max_per_period IS NULL)),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.event_type_id_seq OWNED BY loyalty.event_type.id;

-- Every event award that paid (what the limits count); the entry holds the points.
CREATE TABLE loyalty.event_award (
    member_id bigint NOT NULL,
    event_id  bigint NOT NULL,
    at        timestamptz NOT NULL,
    entry_id  bigint NOT NULL,
    PRIMARY KEY (member_id, event_id, at, entry_id)
);

-- What record_event returns: a receipt, then whether the event paid and the
-- count of its period (used includes this call; resets_at: when it restarts).
CREATE TYPE loyalty.event_receipt AS (
    entry_id       bigint,
    member_id      bigint,
    points         bigint,
    available      bigint,
    pending        bigint,
    tier           text,
    replayed       boolean,
    event          text,
    awarded        boolean,
    used           integer,
    max_per_period integer,
    resets_at      timestamptz
);

CREATE FUNCTION loyalty.define_event(program text, event text, points bigint,
                                     frequency jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid  bigint;
    per  text;
    mx   integer;
    id   bigint;
    k    text;
BEGIN
    IF program IS NULL OR event IS NULL OR points IS NULL THEN
        RAISE EXCEPTION '% must not be null',
            CASE WHEN program IS NULL THEN 'program' WHEN event IS NULL THEN 'event' ELSE 'points' END
            USING ERRCODE = 'LY034';
    END IF;
    IF event = '' OR octet_length(event) > 512 THEN
        RAISE EXCEPTION 'event must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF points <= 0 THEN
        RAISE EXCEPTION 'points must be positive' USING ERRCODE = 'LY032',
            DETAIL = format('The value given was %s.', points);
    END IF;
    IF frequency IS NOT NULL AND frequency <> 'null'::jsonb THEN
        IF jsonb_typeof(frequency) <> 'object' THEN
            RAISE EXCEPTION 'frequency must be a JSON object' USING ERRCODE = 'LY035';
        END IF;
        FOR k IN SELECT jsonb_object_keys(frequency) LOOP
            IF k NOT IN ('per', 'max') THEN
                RAISE EXCEPTION 'unknown frequency key "%"', k USING ERRCODE = 'LY131',
                    HINT = 'frequency is {"per": "ever"|"day"|"week"|"month"|"year", "max": N}.';
            END IF;
        END LOOP;
        IF jsonb_typeof(frequency -> 'per') IS DISTINCT FROM 'string'
           OR frequency ->> 'per' NOT IN ('ever', 'day', 'week', 'month', 'year') THEN
            RAISE EXCEPTION 'frequency "per" must be one of ever, day, week, month, year' USING ERRCODE = 'LY131';
        END IF;
        per := frequency ->> 'per';
        IF frequency ? 'max' THEN
            IF jsonb_typeof(frequency -> 'max') <> 'number'
               OR (frequency ->> 'max')::numeric NOT BETWEEN 1 AND 1000000
               OR (frequency ->> 'max')::numeric <> trunc((frequency ->> 'max')::numeric) THEN
                RAISE EXCEPTION 'frequency "max" must be an integer from 1 to 1000000' USING ERRCODE = 'LY131';
            END IF;
            mx := (frequency ->> 'max')::integer;
        ELSE
            mx := 1;
        END IF;
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = define_event.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    INSERT INTO loyalty.event_type AS t (program_id, code, points, per, max_per_period)
    VALUES (pid, event, points, per, mx)
    ON CONFLICT (program_id, code) DO UPDATE
       SET points = excluded.points, per = excluded.per, max_per_period = excluded.max_per_period,
           updated_at = now()
    RETURNING t.id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.define_event(text, text, bigint, jsonb) IS
    'define (or redefine) a named event of a program: its points and frequency limit';

CREATE FUNCTION loyalty.record_event(member bigint, event text, idempotency_key text,
                                     at timestamptz DEFAULT now())
    RETURNS loyalty.event_receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_record_event'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.record_event(bigint, text, text, timestamptz) IS
    'award an event''s points to a member, within its frequency limit (points 0, awarded false past it)';

-- ---- birthdays ---------------------------------------------------------------

-- A member's birth date and the next instant their birthday award is due
-- (00:00 of the birthday in the program's time zone; 29 February is
-- celebrated on 28 February in other years).
CREATE TABLE loyalty.member_birthday (
    member_id  bigint PRIMARY KEY REFERENCES loyalty.member,
    birth_date date NOT NULL,
    next_at    timestamptz NOT NULL
);
CREATE INDEX member_birthday_due ON loyalty.member_birthday (next_at);

-- The first birthday instant whose local date is on or after from_at's local date.
CREATE FUNCTION loyalty.next_birthday(birth_date date, from_at timestamptz, timezone text)
    RETURNS timestamptz
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (
        WITH d AS (SELECT (from_at AT TIME ZONE timezone)::date AS today),
             y AS (SELECT today, y::integer AS yr FROM d,
                          LATERAL (VALUES (extract(year FROM today)), (extract(year FROM today) + 1)) v(y)),
             c AS (SELECT today,
                          CASE WHEN extract(month FROM birth_date) = 2 AND extract(day FROM birth_date) = 29
                               THEN make_date(yr, 3, 1) - 1
                               ELSE make_date(yr, extract(month FROM birth_date)::integer,
                                              extract(day FROM birth_date)::integer) END AS bday
                     FROM y)
        SELECT min(c.bday)::timestamp AT TIME ZONE timezone FROM c WHERE c.bday >= c.today);

CREATE FUNCTION loyalty.set_birthday(member bigint, birth_date date, at timestamptz DEFAULT now())
    RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_set_birthday'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.set_birthday(bigint, date, timestamptz) IS
    'set a member''s birth date: the program''s birthday event is paid by run_maintenance once a year';

-- ---- referrals ------------------------------------------------------------------

CREATE TABLE loyalty.referral_terms (
    program_id       bigint PRIMARY KEY REFERENCES loyalty.program,
    referrer_points  bigint NOT NULL CHECK (referrer_points >= 0),
    referee_points   bigint NOT NULL CHECK (referee_points >= 0),
    min_purchase     numeric NOT NULL CHECK (min_purchase >= 0 AND min_purchase < 'Infinity'),
    max_per_referrer integer CHECK (max_per_referrer >= 1),       -- NULL: no limit
    hold_days        integer NOT NULL DEFAULT 0 CHECK (hold_days BETWEEN 0 AND 3650),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per referred member. status: open (no qualifying purchase yet),
-- qualified (bonuses due at pay_at, or the referrer was busy), paid (both
-- sides settled), void (referred before 1.1 and already a purchaser then).
CREATE TABLE loyalty.referral (
    referee_id        bigint PRIMARY KEY REFERENCES loyalty.member,
    referrer_id       bigint NOT NULL REFERENCES loyalty.member,
    program_id        bigint NOT NULL REFERENCES loyalty.program,
    enrolled_at       timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('open', 'qualified', 'paid', 'void')),
    purchase_entry_id bigint,
    qualified_at      timestamptz,
    pay_at            timestamptz,
    min_purchase      numeric,
    referrer_points   bigint,
    referee_points    bigint,
    referee_outcome   text CHECK (referee_outcome IN ('paid')),
    referee_entry_id  bigint,
    referrer_outcome  text CHECK (referrer_outcome IN ('paid', 'limit_reached')),
    referrer_entry_id bigint,
    cancellations     integer NOT NULL DEFAULT 0
);
CREATE INDEX referral_referrer ON loyalty.referral (referrer_id);
CREATE INDEX referral_due ON loyalty.referral (pay_at) WHERE status = 'qualified';

-- Members referred in 1.0: open if they have not bought yet, void otherwise.
INSERT INTO loyalty.referral (referee_id, referrer_id, program_id, enrolled_at, status)
SELECT m.id, m.referred_by, m.program_id, m.enrolled_at,
       CASE WHEN EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = m.id AND e.kind = 'earn')
            THEN 'void' ELSE 'open' END
  FROM loyalty.member m WHERE m.referred_by IS NOT NULL;

CREATE FUNCTION loyalty.set_referral_terms(program text, referrer_points bigint, referee_points bigint,
                                           min_purchase numeric DEFAULT 0,
                                           max_per_referrer integer DEFAULT NULL,
                                           hold_days integer DEFAULT 0)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF program IS NULL OR referrer_points IS NULL OR referee_points IS NULL
       OR min_purchase IS NULL OR hold_days IS NULL THEN
        RAISE EXCEPTION '% must not be null',
            CASE WHEN program IS NULL THEN 'program' WHEN referrer_points IS NULL THEN 'referrer_points'
                 WHEN referee_points IS NULL THEN 'referee_points' WHEN min_purchase IS NULL THEN 'min_purchase'
                 ELSE 'hold_days' END
            USING ERRCODE = 'LY034';
    END IF;
    IF referrer_points < 0 OR referee_points < 0 OR (referrer_points = 0 AND referee_points = 0) THEN
        RAISE EXCEPTION 'referral points must be 0 or more, and not both 0' USING ERRCODE = 'LY135';
    END IF;
    IF min_purchase = 'NaN' OR min_purchase < 0 OR min_purchase = 'Infinity' THEN
        RAISE EXCEPTION 'min_purchase must be a finite amount of 0 or more' USING ERRCODE = 'LY135';
    END IF;
    IF max_per_referrer < 1 THEN
        RAISE EXCEPTION 'max_per_referrer must be at least 1 (NULL: no limit)' USING ERRCODE = 'LY135';
    END IF;
    IF hold_days NOT BETWEEN 0 AND 3650 THEN
        RAISE EXCEPTION 'hold_days must be from 0 to 3650' USING ERRCODE = 'LY135';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = set_referral_terms.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    INSERT INTO loyalty.referral_terms AS t (program_id, referrer_points, referee_points, min_purchase,
                                             max_per_referrer, hold_days)
    VALUES (pid, referrer_points, referee_points, min_purchase, max_per_referrer, hold_days)
    ON CONFLICT (program_id) DO UPDATE
       SET referrer_points = excluded.referrer_points, referee_points = excluded.referee_points,
           min_purchase = excluded.min_purchase, max_per_referrer = excluded.max_per_referrer,
           hold_days = excluded.hold_days, updated_at = now();
END
$$;
COMMENT ON FUNCTION loyalty.set_referral_terms(text, bigint, bigint, numeric, integer, integer) IS
    'the referral bonuses of a program, paid when a referee''s first purchase of min_purchase qualifies';

-- A member's referrals as referrer, for an app screen ("3 friends joined, 2 bought").
CREATE FUNCTION loyalty.referrals(member bigint)
    RETURNS TABLE (referee_id bigint, external_ref text, enrolled_at timestamptz, status text,
                   qualified_at timestamptz, pay_at timestamptz, referrer_outcome text,
                   referrer_points bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF referrals.member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = referrals.member) THEN
        RAISE EXCEPTION 'member % does not exist', referrals.member USING ERRCODE = 'LY002';
    END IF;
    RETURN QUERY
    SELECT r.referee_id, m.external_ref, r.enrolled_at, r.status, r.qualified_at, r.pay_at,
           r.referrer_outcome, CASE WHEN r.referrer_outcome = 'paid' THEN r.referrer_points END
      FROM loyalty.referral r JOIN loyalty.member m ON m.id = r.referee_id
     WHERE r.referrer_id = referrals.member
     ORDER BY r.enrolled_at, r.referee_id;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('loyalty.event_type', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.event_type_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.event_award', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member_birthday', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.referral_terms', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.referral', '');

-- ---- segments --------------------------------------------------------------------

-- A segment: criteria over members' history, all of which must hold. The
-- criteria document is kept as given; the typed columns are what the C
-- evaluator (src/segments.c) reads.
CREATE SEQUENCE loyalty.segment_id_seq;
CREATE TABLE loyalty.segment (
    id               bigint PRIMARY KEY DEFAULT nextval('loyalty.segment_id_seq'),
    program_id       bigint NOT NULL REFERENCES loyalty.program,
    code             text NOT NULL CHECK (code <> ''),
    criteria         jsonb NOT NULL CHECK (jsonb_typeof(criteria) = 'object'),
    tiers            text[],
    recency_min_days integer,
    recency_max_days integer,
    frequency_days   integer,
    frequency_min    integer,
    frequency_max    integer,
    spend_days       integer,
    spend_min        numeric,
    spend_max        numeric,
    categories       text[],
    category_days    integer,
    tenure_min_days  integer,
    tenure_max_days  integer,
    visits_min       bigint,
    visits_max       bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.segment_id_seq OWNED BY loyalty.segment.id;
-- Backends cache segments; any change drops the caches (the program cache's trigger
-- function sends the relcache invalidation segments.c listens for).
CREATE TRIGGER segment_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.segment
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();

-- Purchases per member, local day (program time zone) and category (attrs.category,
-- '' if none), net of refunds: what windowed segment criteria read. Kept by the
-- purchase and refund hooks for programs that have segments.
CREATE TABLE loyalty.purchase_day (
    member_id bigint NOT NULL,
    day       date NOT NULL,
    category  text NOT NULL,
    purchases integer NOT NULL,
    spend     numeric NOT NULL,
    PRIMARY KEY (member_id, day, category)
);

-- A number inside a criteria or offer document, checked (LY137 by default).
CREATE FUNCTION loyalty.growth_number(value jsonb, what text, lo numeric, hi numeric,
                                      integral boolean DEFAULT true, errcode text DEFAULT 'LY137')
    RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR value = 'null'::jsonb THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(value) <> 'number' OR (value #>> '{}')::numeric NOT BETWEEN lo AND hi
       OR (integral AND (value #>> '{}')::numeric <> trunc((value #>> '{}')::numeric)) THEN
        RAISE EXCEPTION '% must be % from % to %', what, CASE WHEN integral THEN 'an integer' ELSE 'a number' END,
            lo, hi USING ERRCODE = errcode;
    END IF;
    RETURN (value #>> '{}')::numeric;
END
$$;

-- Keys of an object document, each one of the allowed ones.
CREATE FUNCTION loyalty.growth_keys(doc jsonb, what text, allowed text[], errcode text DEFAULT 'LY137')
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
BEGIN
    IF doc IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(doc) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object', what USING ERRCODE = errcode;
    END IF;
    FOR k IN SELECT jsonb_object_keys(doc) LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION 'unknown key "%" in %', k, what USING ERRCODE = errcode,
                HINT = format('Allowed: %s.', array_to_string(allowed, ', '));
        END IF;
    END LOOP;
END
$$;

-- An array of 1 to 100 non-empty strings (a single string is taken as one).
CREATE FUNCTION loyalty.growth_strings(value jsonb, what text, errcode text DEFAULT 'LY137')
    RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    out text[];
BEGIN
    IF value IS NULL OR value = 'null'::jsonb THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(value) = 'string' THEN
        value := jsonb_build_array(value);
    END IF;
    IF jsonb_typeof(value) <> 'array' OR jsonb_array_length(value) NOT BETWEEN 1 AND 100
       OR EXISTS (SELECT FROM jsonb_array_elements(value) e
                   WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' = '' OR octet_length(e #>> '{}') > 512) THEN
        RAISE EXCEPTION '% must be a string or an array of 1 to 100 strings of 1 to 512 bytes', what
            USING ERRCODE = errcode;
    END IF;
    SELECT array_agg(DISTINCT e ORDER BY e) INTO out FROM jsonb_array_elements_text(value) e;
    RETURN out;
END
$$;

CREATE FUNCTION loyalty.add_segment(program text, code text, criteria jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid   bigint;
    s     loyalty.segment;
    first boolean;
    tz    text;
    bad   text;
    d     constant numeric := 36500;   -- days: a century
BEGIN
    IF program IS NULL OR code IS NULL OR criteria IS NULL THEN
        RAISE EXCEPTION '% must not be null',
            CASE WHEN program IS NULL THEN 'program' WHEN code IS NULL THEN 'code' ELSE 'criteria' END
            USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR octet_length(code) > 512 THEN
        RAISE EXCEPTION 'code must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF jsonb_typeof(criteria) <> 'object' THEN
        RAISE EXCEPTION 'criteria must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    SELECT p.id, p.timezone INTO pid, tz FROM loyalty.program p WHERE p.code = add_segment.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    PERFORM loyalty.growth_keys(criteria, 'criteria',
        ARRAY['tiers', 'recency', 'frequency', 'spend', 'favourite_category', 'tenure', 'visits']);
    PERFORM loyalty.growth_keys(criteria -> 'recency', 'recency', ARRAY['min_days', 'max_days']);
    PERFORM loyalty.growth_keys(criteria -> 'frequency', 'frequency', ARRAY['days', 'min', 'max']);
    PERFORM loyalty.growth_keys(criteria -> 'spend', 'spend', ARRAY['days', 'min', 'max']);
    PERFORM loyalty.growth_keys(criteria -> 'favourite_category', 'favourite_category', ARRAY['in', 'days']);
    PERFORM loyalty.growth_keys(criteria -> 'tenure', 'tenure', ARRAY['min_days', 'max_days']);
    PERFORM loyalty.growth_keys(criteria -> 'visits', 'visits', ARRAY['min', 'max']);

    s.tiers := loyalty.growth_strings(criteria -> 'tiers', 'tiers');
    SELECT t INTO bad FROM unnest(s.tiers) t
     WHERE NOT EXISTS (SELECT FROM loyalty.tier x WHERE x.program_id = pid AND x.code = t) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier "%" does not exist in program "%"', bad, program USING ERRCODE = 'LY137';
    END IF;
    s.recency_min_days := loyalty.growth_number(criteria #> '{recency,min_days}', 'recency.min_days', 0, d);
    s.recency_max_days := loyalty.growth_number(criteria #> '{recency,max_days}', 'recency.max_days', 0, d);
    s.frequency_days := loyalty.growth_number(criteria #> '{frequency,days}', 'frequency.days', 1, d);
    s.frequency_min := loyalty.growth_number(criteria #> '{frequency,min}', 'frequency.min', 0, 1000000000);
    s.frequency_max := loyalty.growth_number(criteria #> '{frequency,max}', 'frequency.max', 0, 1000000000);
    s.spend_days := loyalty.growth_number(criteria #> '{spend,days}', 'spend.days', 1, d);
    s.spend_min := loyalty.growth_number(criteria #> '{spend,min}', 'spend.min', 0, 1e15, false);
    s.spend_max := loyalty.growth_number(criteria #> '{spend,max}', 'spend.max', 0, 1e15, false);
    s.categories := loyalty.growth_strings(criteria #> '{favourite_category,in}', 'favourite_category.in');
    s.category_days := loyalty.growth_number(criteria #> '{favourite_category,days}', 'favourite_category.days', 1, d);
    s.tenure_min_days := loyalty.growth_number(criteria #> '{tenure,min_days}', 'tenure.min_days', 0, d);
    s.tenure_max_days := loyalty.growth_number(criteria #> '{tenure,max_days}', 'tenure.max_days', 0, d);
    s.visits_min := loyalty.growth_number(criteria #> '{visits,min}', 'visits.min', 0, 1e15);
    s.visits_max := loyalty.growth_number(criteria #> '{visits,max}', 'visits.max', 0, 1e15);
    IF criteria ? 'frequency' AND s.frequency_days IS NULL THEN
        RAISE EXCEPTION 'frequency needs "days"' USING ERRCODE = 'LY137';
    END IF;
    IF criteria ? 'frequency' AND s.frequency_min IS NULL AND s.frequency_max IS NULL
       OR criteria ? 'spend' AND s.spend_min IS NULL AND s.spend_max IS NULL
       OR criteria ? 'recency' AND s.recency_min_days IS NULL AND s.recency_max_days IS NULL
       OR criteria ? 'tenure' AND s.tenure_min_days IS NULL AND s.tenure_max_days IS NULL
       OR criteria ? 'visits' AND s.visits_min IS NULL AND s.visits_max IS NULL THEN
        RAISE EXCEPTION 'a range criterion needs a minimum or a maximum' USING ERRCODE = 'LY137';
    END IF;
    IF criteria ? 'favourite_category' AND s.categories IS NULL THEN
        RAISE EXCEPTION 'favourite_category needs "in"' USING ERRCODE = 'LY137';
    END IF;
    IF s.recency_min_days > s.recency_max_days OR s.frequency_min > s.frequency_max
       OR s.spend_min > s.spend_max OR s.tenure_min_days > s.tenure_max_days
       OR s.visits_min > s.visits_max THEN
        RAISE EXCEPTION 'a criterion''s minimum is above its maximum' USING ERRCODE = 'LY137';
    END IF;
    IF EXISTS (SELECT FROM loyalty.segment x WHERE x.program_id = pid AND x.code = add_segment.code) THEN
        RAISE EXCEPTION 'program "%" already has a segment "%"', program, code USING ERRCODE = 'LY041';
    END IF;

    -- The program's first segment: wait for its purchases in flight (each holds a
    -- shared advisory lock keyed by the program, src/segments.c), then fill the rollup
    -- from the ledger; purchases after this commit keep it themselves.
    first := NOT EXISTS (SELECT FROM loyalty.segment x WHERE x.program_id = pid);
    IF first THEN
        PERFORM pg_advisory_xact_lock(x'4C5A0000'::integer | ((pid >> 32) & 65535)::integer,
                                      ((pid & 4294967295) - CASE WHEN (pid & 4294967295) >= 2147483648
                                                                 THEN 4294967296 ELSE 0 END)::integer);
        first := NOT EXISTS (SELECT FROM loyalty.segment x WHERE x.program_id = pid);
    END IF;
    IF first THEN
        INSERT INTO loyalty.purchase_day (member_id, day, category, purchases, spend)
        SELECT e.member_id, (e.at AT TIME ZONE tz)::date,
               CASE WHEN jsonb_typeof(e.request -> 'attrs' -> 'category') = 'string'
                         AND octet_length(e.request -> 'attrs' ->> 'category') BETWEEN 1 AND 512
                    THEN e.request -> 'attrs' ->> 'category' ELSE '' END,
               count(*) FILTER (WHERE r.refunded < e.amount),
               sum(e.amount - r.refunded)
          FROM loyalty.member m
          JOIN loyalty.entry e ON e.member_id = m.id AND e.kind = 'earn'
          CROSS JOIN LATERAL (SELECT coalesce(sum(x.amount), 0) AS refunded FROM loyalty.entry x
                               WHERE x.member_id = e.member_id AND x.ref_entry_id = e.id
                                 AND x.kind = 'reverse') r
         WHERE m.program_id = pid
         GROUP BY 1, 2, 3
        ON CONFLICT DO NOTHING;
    END IF;
    INSERT INTO loyalty.segment (program_id, code, criteria, tiers, recency_min_days, recency_max_days,
                                 frequency_days, frequency_min, frequency_max, spend_days, spend_min,
                                 spend_max, categories, category_days, tenure_min_days, tenure_max_days,
                                 visits_min, visits_max)
    VALUES (pid, code, criteria, s.tiers, s.recency_min_days, s.recency_max_days, s.frequency_days,
            s.frequency_min, s.frequency_max, s.spend_days, s.spend_min, s.spend_max, s.categories,
            s.category_days, s.tenure_min_days, s.tenure_max_days, s.visits_min, s.visits_max)
    RETURNING id INTO s.id;
    RETURN s.id;
END
$$;
COMMENT ON FUNCTION loyalty.add_segment(text, text, jsonb) IS
    'add a segment of a program: criteria over members'' history (tiers, recency, frequency, spend, favourite_category, tenure, visits)';

CREATE FUNCTION loyalty.in_segment(member bigint, segment bigint, at timestamptz DEFAULT now())
    RETURNS boolean
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'loyalty_in_segment'
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION loyalty.member_segments(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (segment_id bigint, segment text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF member_segments.member IS NULL OR member_segments.at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN member_segments.member IS NULL THEN 'member' ELSE 'at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF NOT isfinite(member_segments.at) THEN
        RAISE EXCEPTION 'business time must be finite' USING ERRCODE = 'LY033';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = member_segments.member) THEN
        RAISE EXCEPTION 'member % does not exist', member_segments.member USING ERRCODE = 'LY002';
    END IF;
    RETURN QUERY
    SELECT s.id, s.code
      FROM loyalty.segment s JOIN loyalty.member m ON m.program_id = s.program_id
     WHERE m.id = member_segments.member
       AND loyalty.in_segment(m.id, s.id, member_segments.at)
     ORDER BY s.code;
END
$$;
COMMENT ON FUNCTION loyalty.member_segments(bigint, timestamptz) IS
    'the segments a member belongs to at `at`';

-- ---- personalised offers ------------------------------------------------------------

CREATE SEQUENCE loyalty.offer_id_seq;
CREATE TABLE loyalty.offer (
    id          bigint PRIMARY KEY DEFAULT nextval('loyalty.offer_id_seq'),
    program_id  bigint NOT NULL REFERENCES loyalty.program,
    code        text NOT NULL CHECK (code <> ''),
    name        text NOT NULL,
    definition  jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    segment_ids bigint[],          -- NULL: any member; else a member of any of them
    tier_codes  text[],            -- NULL: any tier; else holding one of them
    valid_from  timestamptz,
    valid_until timestamptz,
    reward_id   bigint REFERENCES loyalty.reward,
    bonus       jsonb CHECK (jsonb_typeof(bonus) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (reward_id IS NOT NULL OR bonus IS NOT NULL),
    CHECK (valid_from < valid_until),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.offer_id_seq OWNED BY loyalty.offer.id;

CREATE FUNCTION loyalty.add_offer(program text, code text, definition jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid   bigint;
    segs  text[];
    sids  bigint[];
    tiers text[];
    bad   text;
    vf    timestamptz;
    vu    timestamptz;
    rid   bigint;
    nm    text;
    id    bigint;
BEGIN
    IF program IS NULL OR code IS NULL OR definition IS NULL THEN
        RAISE EXCEPTION '% must not be null',
            CASE WHEN program IS NULL THEN 'program' WHEN code IS NULL THEN 'code' ELSE 'definition' END
            USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR octet_length(code) > 512 THEN
        RAISE EXCEPTION 'code must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF jsonb_typeof(definition) <> 'object' THEN
        RAISE EXCEPTION 'definition must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = add_offer.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    PERFORM loyalty.growth_keys(definition, 'definition',
        ARRAY['name', 'description', 'segments', 'tiers', 'valid_from', 'valid_until', 'reward', 'bonus'], 'LY138');
    IF definition ? 'name' AND (jsonb_typeof(definition -> 'name') <> 'string'
                                OR octet_length(definition ->> 'name') NOT BETWEEN 1 AND 512) THEN
        RAISE EXCEPTION 'name must be a string of 1 to 512 bytes' USING ERRCODE = 'LY138';
    END IF;
    nm := coalesce(definition ->> 'name', code);
    segs := loyalty.growth_strings(definition -> 'segments', 'segments', 'LY138');
    SELECT t INTO bad FROM unnest(segs) t
     WHERE NOT EXISTS (SELECT FROM loyalty.segment s WHERE s.program_id = pid AND s.code = t) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" does not exist in program "%"', bad, program USING ERRCODE = 'LY136';
    END IF;
    SELECT array_agg(s.id ORDER BY s.id) INTO sids FROM loyalty.segment s
     WHERE s.program_id = pid AND s.code = ANY (segs);
    tiers := loyalty.growth_strings(definition -> 'tiers', 'tiers', 'LY138');
    SELECT t INTO bad FROM unnest(tiers) t
     WHERE NOT EXISTS (SELECT FROM loyalty.tier x WHERE x.program_id = pid AND x.code = t) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'tier "%" does not exist in program "%"', bad, program USING ERRCODE = 'LY003';
    END IF;
    BEGIN
        IF definition ? 'valid_from' THEN
            IF jsonb_typeof(definition -> 'valid_from') <> 'string' THEN RAISE invalid_datetime_format; END IF;
            vf := (definition ->> 'valid_from')::timestamptz;
        END IF;
        IF definition ? 'valid_until' THEN
            IF jsonb_typeof(definition -> 'valid_until') <> 'string' THEN RAISE invalid_datetime_format; END IF;
            vu := (definition ->> 'valid_until')::timestamptz;
        END IF;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
        RAISE EXCEPTION 'valid_from and valid_until must be timestamps' USING ERRCODE = 'LY138';
    END;
    IF NOT isfinite(vf) OR NOT isfinite(vu) THEN
        RAISE EXCEPTION 'valid_from and valid_until must be finite (leave one out for an open end)' USING ERRCODE = 'LY138';
    END IF;
    IF vf >= vu THEN
        RAISE EXCEPTION 'valid_from must be before valid_until' USING ERRCODE = 'LY138';
    END IF;
    IF definition ? 'reward' THEN
        IF jsonb_typeof(definition -> 'reward') <> 'string' THEN
            RAISE EXCEPTION 'reward must be a reward code' USING ERRCODE = 'LY138';
        END IF;
        SELECT r.id INTO rid FROM loyalty.reward r WHERE r.program_id = pid AND r.code = definition ->> 'reward';
        IF rid IS NULL THEN
            RAISE EXCEPTION 'reward "%" does not exist in program "%"', definition ->> 'reward', program
                USING ERRCODE = 'LY007';
        END IF;
    END IF;
    IF definition ? 'bonus' AND jsonb_typeof(definition -> 'bonus') <> 'object' THEN
        RAISE EXCEPTION 'bonus must be a JSON object describing the bonus' USING ERRCODE = 'LY138';
    END IF;
    IF rid IS NULL AND NOT definition ? 'bonus' THEN
        RAISE EXCEPTION 'an offer needs a reward or a bonus' USING ERRCODE = 'LY138';
    END IF;
    IF EXISTS (SELECT FROM loyalty.offer o WHERE o.program_id = pid AND o.code = add_offer.code) THEN
        RAISE EXCEPTION 'program "%" already has an offer "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    INSERT INTO loyalty.offer (program_id, code, name, definition, segment_ids, tier_codes, valid_from,
                               valid_until, reward_id, bonus)
    VALUES (pid, code, nm, definition, sids, tiers, vf, vu, rid, definition -> 'bonus')
    RETURNING offer.id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_offer(text, text, jsonb) IS
    'add a personalised offer: a reward or a bonus for members of some segments and tiers, in a validity window';

CREATE FUNCTION loyalty.offers_for(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (offer_id bigint, offer text, name text, reward text, bonus jsonb,
                   valid_until timestamptz, definition jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m loyalty.member;
    tier text;
BEGIN
    IF offers_for.member IS NULL OR offers_for.at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN offers_for.member IS NULL THEN 'member' ELSE 'at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF NOT isfinite(offers_for.at) THEN
        RAISE EXCEPTION 'business time must be finite' USING ERRCODE = 'LY033';
    END IF;
    SELECT * INTO m FROM loyalty.member mm WHERE mm.id = offers_for.member;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member % does not exist', offers_for.member USING ERRCODE = 'LY002';
    END IF;
    SELECT t.code INTO tier FROM loyalty.tier t WHERE t.id = m.tier_id;
    RETURN QUERY
    SELECT o.id, o.code, o.name, r.code, o.bonus, o.valid_until, o.definition
      FROM loyalty.offer o
      LEFT JOIN loyalty.reward r ON r.id = o.reward_id
     WHERE o.program_id = m.program_id
       AND (o.valid_from IS NULL OR o.valid_from <= offers_for.at)
       AND (o.valid_until IS NULL OR offers_for.at < o.valid_until)
       AND (o.tier_codes IS NULL OR tier = ANY (o.tier_codes))
       AND (o.segment_ids IS NULL
            OR EXISTS (SELECT FROM unnest(o.segment_ids) s(id) WHERE loyalty.in_segment(m.id, s.id, offers_for.at)))
     ORDER BY o.valid_until NULLS LAST, o.code;
END
$$;
COMMENT ON FUNCTION loyalty.offers_for(bigint, timestamptz) IS
    'the offers a member qualifies for at `at` (segments, tier held now, validity window)';

SELECT pg_catalog.pg_extension_config_dump('loyalty.segment', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.segment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.purchase_day', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.offer', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.offer_id_seq', '');

-- ---- rewards for a segment ----------------------------------------------------------

-- A reward listed here can only be redeemed by members of the segment (redeem_reward, LY140).
CREATE TABLE loyalty.reward_segment (
    reward_id  bigint PRIMARY KEY REFERENCES loyalty.reward,
    segment_id bigint NOT NULL REFERENCES loyalty.segment
);

CREATE FUNCTION loyalty.set_reward_segment(program text, reward_code text, segment_code text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    rid bigint;
    sid bigint;
BEGIN
    IF program IS NULL OR reward_code IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN program IS NULL THEN 'program' ELSE 'reward_code' END
            USING ERRCODE = 'LY034';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = set_reward_segment.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    SELECT r.id INTO rid FROM loyalty.reward r WHERE r.program_id = pid AND r.code = reward_code;
    IF rid IS NULL THEN
        RAISE EXCEPTION 'reward "%" does not exist in program "%"', reward_code, program USING ERRCODE = 'LY007';
    END IF;
    IF segment_code IS NULL THEN
        DELETE FROM loyalty.reward_segment rs WHERE rs.reward_id = rid;
        RETURN;
    END IF;
    SELECT s.id INTO sid FROM loyalty.segment s WHERE s.program_id = pid AND s.code = segment_code;
    IF sid IS NULL THEN
        RAISE EXCEPTION 'segment "%" does not exist in program "%"', segment_code, program USING ERRCODE = 'LY136';
    END IF;
    INSERT INTO loyalty.reward_segment AS rs (reward_id, segment_id) VALUES (rid, sid)
    ON CONFLICT (reward_id) DO UPDATE SET segment_id = excluded.segment_id;
END
$$;
COMMENT ON FUNCTION loyalty.set_reward_segment(text, text, text) IS
    'restrict a reward to the members of a segment (NULL segment: everyone again)';

SELECT pg_catalog.pg_extension_config_dump('loyalty.reward_segment', '');
