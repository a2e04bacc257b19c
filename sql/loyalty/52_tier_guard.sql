-- ---------------------------------------------------------------------------
-- A tier a member holds cannot go (LY043)
-- ---------------------------------------------------------------------------
-- The member's tier columns carry no foreign keys (20_members.sql): the hot side,
-- every promotion and review, pays nothing. This guards the other side, a rare
-- change by the owner (no role may write loyalty.tier): a tier that a member holds
-- in any tier column can be neither deleted nor given another id or program, and
-- loyalty.tier cannot be truncated while there are members. check_invariants()
-- verifies the same over the whole member table.
CREATE FUNCTION loyalty.tier_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    held bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.program_id = OLD.program_id THEN
        RETURN NEW;
    END IF;
    -- An operation in flight may be moving a member to this tier: wait for every
    -- transaction that locked a member, and keep new ones out until this one ends
    -- (they then read the tiers again: src/cache.c). Reads go on. Under READ
    -- COMMITTED the scan below then sees every committed holder.
    LOCK TABLE loyalty.member IN EXCLUSIVE MODE;
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT FROM loyalty.member) THEN
            RAISE EXCEPTION 'cannot truncate loyalty.tier: members hold its tiers'
                USING ERRCODE = 'LY043';
        END IF;
        RETURN NULL;
    END IF;
    SELECT count(*) INTO held FROM loyalty.member m
     WHERE OLD.id IN (m.tier_id, m.earned_tier_id, m.grace_tier_id, m.pinned_tier_id, m.granted_tier_id);
    IF held > 0 THEN
        RAISE EXCEPTION 'tier "%" (id %) is held by % member(s)', OLD.code, OLD.id, held
            USING ERRCODE = 'LY043',
                  DETAIL = CASE TG_OP WHEN 'DELETE' THEN 'A tier that members hold cannot be deleted.'
                           ELSE 'The id and program of a tier that members hold cannot change.' END,
                  HINT = 'Move its members to another tier first (loyalty.member: tier_id, earned_tier_id, '
                         'grace_tier_id, pinned_tier_id, granted_tier_id).';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION loyalty.tier_guard() IS
    'trigger: a tier that a member holds cannot be deleted, nor its id or program changed (LY043)';

CREATE TRIGGER tier_held BEFORE DELETE OR UPDATE OF id, program_id ON loyalty.tier
    FOR EACH ROW EXECUTE FUNCTION loyalty.tier_guard();
CREATE TRIGGER tier_no_truncate BEFORE TRUNCATE ON loyalty.tier
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.tier_guard();
