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
-- They carry SET jit = off too: a query whose only path is a disabled sequential
-- scan (a few small catalog-like tables) is costed above jit_above_cost, and
-- JIT-compiling it took up to a second on every call.

CREATE FUNCTION loyalty.create_program(code text, name text, settings jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_create_program'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.create_program(text, text, jsonb) IS
    'create a loyalty program; settings are validated (unknown keys are an error)';

CREATE FUNCTION loyalty.add_tier(program text, code text, name text, threshold numeric,
                                 earn_multiplier numeric DEFAULT 1, benefits jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_add_tier'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
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
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.enroll(text, text, timestamptz, text) IS
    'enroll a member; idempotent on (program, external_ref)';

CREATE FUNCTION loyalty.member_id(program text, external_ref text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off
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

