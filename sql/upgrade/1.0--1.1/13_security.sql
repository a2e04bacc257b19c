-- Security (issue 6): add_plan and add_reward run as the owner (SECURITY DEFINER,
-- set in 98_security.sql), so they look their program up only among those the
-- caller may use (loyalty.caller_may_use). Bodies changed: drop and create again;
-- 98_security.sql grants them again.

DROP FUNCTION loyalty.add_plan(text, text, text, numeric, integer, text, jsonb, boolean, bigint, bigint);
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

DROP FUNCTION loyalty.add_reward(text, text, text, bigint, bigint, jsonb, timestamptz, timestamptz, text, integer, integer);
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
    SELECT p.id INTO pid FROM loyalty.program p
     WHERE p.code = add_reward.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
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

-- maintain cannot pin its search_path (it commits): its body qualifies its types too.
DROP PROCEDURE loyalty.maintain(timestamptz, integer);
CREATE PROCEDURE loyalty.maintain(now timestamptz DEFAULT now(), batch_size integer DEFAULT 50)
    LANGUAGE plpgsql
AS $$
DECLARE
    r pg_catalog.jsonb;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'LY038';
    END IF;
    LOOP
        r := loyalty.run_maintenance(now, batch_size);
        COMMIT;
        EXIT WHEN (r OPERATOR(pg_catalog.->>) 'members')::pg_catalog.int8 OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;
