-- ---------------------------------------------------------------------------
-- Tiers in full: overrides, paid memberships, history, progress
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.set_tier(member bigint, tier_code text, until timestamptz, reason text,
                                 at timestamptz DEFAULT now())
    RETURNS text
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_set_tier'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
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
    SELECT p.id INTO pid FROM loyalty.program p
     WHERE p.code = add_plan.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
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
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.subscribe(bigint, text, text, timestamptz) IS
    'buy a membership plan: its tier holds for the paid period';

CREATE FUNCTION loyalty.renew(member bigint, idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_renew'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.renew(bigint, text, timestamptz) IS
    'pay for one more period of the member''s plan (from its end, or from `at` if it lapsed)';

CREATE FUNCTION loyalty.cancel_subscription(member bigint, at timestamptz DEFAULT now())
    RETURNS timestamptz
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_cancel_subscription'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.cancel_subscription(bigint, timestamptz) IS
    'stop renewing; returns when the paid period (and the granted tier) ends';

CREATE FUNCTION loyalty.tier_history(member bigint)
    RETURNS TABLE (at timestamptz, from_tier text, to_tier text, reason text, qualifying numeric,
                   detail jsonb, recorded_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off
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
    SET jit = off
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
