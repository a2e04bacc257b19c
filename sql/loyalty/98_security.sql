-- ---------------------------------------------------------------------------
-- Security (issue 6): roles, privileges, tenants, audit, data protection.
-- Runs last in the install script and, through a symlink, in the 1.0 -> 1.1
-- upgrade: everything here works on a fresh install and on an upgraded one.
-- ---------------------------------------------------------------------------

-- The schema must be ours: a schema "loyalty" created beforehand by another
-- role could hold objects planted to be picked up by our functions, and its
-- owner could add more later.
DO $$
DECLARE
    s record;
BEGIN
    SELECT n.nspowner, n.nspacl,
           EXISTS (SELECT FROM pg_catalog.pg_roles r
                    WHERE r.oid OPERATOR(pg_catalog.=) n.nspowner AND r.rolsuper) AS super_owner
      INTO s FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'loyalty';
    IF NOT s.super_owner
       OR EXISTS (SELECT FROM pg_catalog.aclexplode(s.nspacl) a
                   WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                     AND a.grantee OPERATOR(pg_catalog.<>) s.nspowner) THEN
        RAISE EXCEPTION 'schema "loyalty" is not safe to install into'
            USING ERRCODE = 'LY152',
                  DETAIL = 'It must be owned by a superuser, and no other role may create objects in it.',
                  HINT = 'Drop the schema (it was not created by CREATE EXTENSION loyalty) or fix its owner and privileges.';
    END IF;
END
$$;

-- The three roles. Roles belong to the cluster, the extension to one database:
-- the first CREATE EXTENSION creates them (NOLOGIN, no attributes), later ones
-- in other databases find them. A role of that name that someone else created
-- with more than that (it can log in, is a superuser, can create roles or
-- databases, replicates, bypasses row-level security, or is itself a member of
-- other roles) must not receive our privileges: installation stops (LY150).
DO $$
DECLARE
    rname text;
    r     record;
BEGIN
    FOREACH rname IN ARRAY ARRAY['loyalty_admin', 'loyalty_app', 'loyalty_report'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) rname) THEN
            BEGIN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                                          'NOREPLICATION NOBYPASSRLS', rname);
            EXCEPTION WHEN unique_violation OR duplicate_object THEN
                -- CREATE EXTENSION in another database made it at the same moment: the
                -- roles are cluster-wide. It is checked below like any existing role.
                NULL;
            END;
        END IF;
        SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) rname;
        IF r.rolsuper OR r.rolcanlogin OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
              OR r.rolbypassrls
              OR EXISTS (SELECT FROM pg_catalog.pg_auth_members a
                          WHERE a.member OPERATOR(pg_catalog.=) r.oid) THEN
            RAISE EXCEPTION 'role "%" exists and is not safe to receive the privileges of loyalty', rname
                USING ERRCODE = 'LY150',
                      DETAIL = 'It can log in, has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS, '
                               'or is a member of another role.',
                      HINT = pg_catalog.format('Drop the role or make it a plain group role: '
                                               'ALTER ROLE %I NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB '
                                               'NOREPLICATION NOBYPASSRLS, and revoke its memberships.', rname);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Tenants: a program may be bound to a role
-- ---------------------------------------------------------------------------

-- NULL: every role that may execute the functions may use the program.
ALTER TABLE loyalty.program ADD COLUMN tenant regrole;
-- Set by anonymise_member: the member's personal data is gone.
ALTER TABLE loyalty.member ADD COLUMN anonymised_at timestamptz;

-- Inside the SECURITY DEFINER functions: may the role outside them (session
-- user or SET ROLE) use a program bound to `tenant`? (src/tenancy.c)
CREATE FUNCTION loyalty.caller_may_use(tenant regrole) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'loyalty_caller_may_use'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.caller_may_use(regrole) IS
    'may the role in effect outside SECURITY DEFINER functions use a program bound to this tenant role';

-- The row-level policies' test: may the current user see a program bound to `tenant`?
CREATE FUNCTION loyalty.tenant_visible(tenant regrole) RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'loyalty_tenant_visible'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.tenant_visible(regrole) IS
    'row-level security: NULL, a role the current user has the privileges of, or the owner''s';

CREATE FUNCTION loyalty.acting_role() RETURNS text
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'loyalty_acting_role'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.acting_role() IS
    'the role in effect outside SECURITY DEFINER functions (what current_user is for the caller)';

CREATE FUNCTION loyalty.bind_program(program text, tenant regrole) RETURNS void
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_bind_program'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.bind_program(text, regrole) IS
    'bind a program to a tenant role: only roles with its privileges may use the program (audited)';

-- ---------------------------------------------------------------------------
-- Audit
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.audit_id_seq;
-- Who did what, why. session_role is session_user; acting_role is the role
-- in effect for the caller (SET ROLE), which inside our SECURITY DEFINER
-- functions current_user is not (it is the owner).
CREATE TABLE loyalty.audit (
    id           bigint PRIMARY KEY DEFAULT nextval('loyalty.audit_id_seq'),
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    session_role text NOT NULL,
    acting_role  text NOT NULL,
    action       text NOT NULL,
    program_id   bigint,
    member_id    bigint,
    reason       text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE loyalty.audit_id_seq OWNED BY loyalty.audit.id;
CREATE INDEX audit_program ON loyalty.audit (program_id, recorded_at);
CREATE INDEX audit_member ON loyalty.audit (member_id) WHERE member_id IS NOT NULL;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON loyalty.audit
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON loyalty.audit
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();
SELECT pg_catalog.pg_extension_config_dump('loyalty.audit', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.audit_id_seq', '');

-- Settings changes: a row trigger on the configuration tables records the old
-- and new values of what changed, with the reason set in loyalty.audit_reason.
-- Arguments: columns whose changes are not settings (reward.stock). Created by
-- the classification below for every table it marks as audited.
CREATE FUNCTION loyalty.audit_settings_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o   jsonb;
    n   jsonb;
    d   jsonb;
    pid bigint;
BEGIN
    -- COPY is how pg_dump restores these tables (and only the owner can run it):
    -- the rows were audited when they were first made, and the audit is restored too
    IF current_query() ~* '^\s*copy\s' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD) - coalesce(TG_ARGV, '{}'); END IF;
    IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW) - coalesce(TG_ARGV, '{}'); END IF;
    IF TG_OP = 'UPDATE' THEN
        -- only what changed, before and after
        SELECT jsonb_build_object('old', coalesce(jsonb_object_agg(k.key, o -> k.key), '{}'),
                                  'new', coalesce(jsonb_object_agg(k.key, k.value), '{}'))
          INTO d
          FROM jsonb_each(n) k WHERE (o -> k.key) IS DISTINCT FROM k.value;
        IF d -> 'new' = '{}' THEN
            RETURN NULL;
        END IF;
    ELSE
        d := jsonb_strip_nulls(jsonb_build_object('old', o, 'new', n));
    END IF;
    pid := (coalesce(n, o) ->> CASE WHEN TG_TABLE_NAME = 'program' THEN 'id' ELSE 'program_id' END)::bigint;
    INSERT INTO loyalty.audit (session_role, acting_role, action, program_id, reason, detail)
    VALUES (session_user, loyalty.acting_role(), TG_TABLE_NAME || '.' || lower(TG_OP), pid,
            nullif(current_setting('loyalty.audit_reason', true), ''), d);
    RETURN NULL;
END
$$;

CREATE VIEW loyalty.audit_log AS
SELECT a.id, a.recorded_at, a.session_role, a.acting_role, a.action, p.code AS program,
       a.member_id, a.reason, a.detail
  FROM loyalty.audit a
  LEFT JOIN loyalty.program p ON p.id = a.program_id;
COMMENT ON VIEW loyalty.audit_log IS
    'manual adjustments, tier overrides, settings changes (programs, tiers, plans, rewards, tenants) and '
    'anonymisations: when, session_user, the acting role (SET ROLE), what, program, member, why, what changed';

-- ---------------------------------------------------------------------------
-- Data protection
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.anonymise_member(member bigint, reason text) RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_anonymise_member'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.anonymise_member(bigint, text) IS
    'erase who a member is (external_ref, referral code and link, personal attributes); the ledger stays; '
    'true when done now, false when already done (audited)';

-- ---------------------------------------------------------------------------
-- Who may do what: THE classification of every function, view and table.
-- ---------------------------------------------------------------------------
--
-- One row per object of the extension. A function, procedure, table or view
-- that is not listed here gets no privileges at all (EXECUTE is revoked from
-- PUBLIC for every function), and test/pgtap/50_security_roles.sql fails
-- naming it. To add an object: add its row below (signature as
-- to_regprocedure() reads it, types may be abbreviated).
--
--   roles       which of loyalty_admin / loyalty_app / loyalty_report get
--               EXECUTE (functions) or SELECT (tables, views); {} = owner only
--   definer     functions: SECURITY DEFINER (needed to write the tables, which
--               no role may write directly) or SECURITY INVOKER (reads; the
--               row-level policies then keep a tenant to its programs)
--   tenant_key  tables: how a row finds its program for row-level security:
--               'tenant' (the program row itself), 'program_id', 'member_id',
--               'program_id_or_null'; NULL = no policy (owner-only table)
--   audit       tables: settings tables whose changes are audited, listing the
--               columns that are not settings (NULL = not audited)
CREATE FUNCTION loyalty.access_rules()
    RETURNS TABLE (kind text, object text, roles text[], definer boolean, tenant_key text, audit text[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT r.kind, r.object, r.roles::text[], r.definer, r.tenant_key, r.audit::text[] FROM (VALUES
    -- programs, tiers, plans, rewards: admin
    ('function', 'loyalty.create_program(text, text, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_tier(text, text, text, numeric, numeric, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_plan(text, text, text, numeric, integer, text, jsonb, boolean, bigint, bigint)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_reward(text, text, text, bigint, bigint, jsonb, timestamptz, timestamptz, text, integer, integer)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.bind_program(text, regrole)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_rule(text, text, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.end_rule(text, text, timestamptz)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_partner(text, text, text, numeric)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_stamp_card(text, text, integer, jsonb, jsonb, text)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_challenge(text, text, jsonb, text)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.voucher_keys()', '{admin}', true, NULL, NULL),
    -- staff corrections, overrides, maintenance, data protection: admin
    ('function', 'loyalty.adjust(bigint, bigint, text, text, timestamptz)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.set_tier(bigint, text, timestamptz, text, timestamptz)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.run_maintenance(timestamptz, integer)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.earn_batch(regclass)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.run_rollups(integer)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.reset_rollups()', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.report_hwm()', '{admin,report}', true, NULL, NULL),   -- reads rollup_state for them
    ('function', 'loyalty.maintain(timestamptz, integer)', '{admin}', false, NULL, NULL),
    ('function', 'loyalty.anonymise_member(bigint, text)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.check_invariants()', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.access_rules()', '{admin}', false, NULL, NULL),
    -- member operations: app
    ('function', 'loyalty.enroll(text, text, timestamptz, text)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.earn(bigint, numeric, text, timestamptz, jsonb)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.award(bigint, bigint, text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.redeem(bigint, bigint, text, timestamptz, text)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.reverse(bigint, text, numeric, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.transfer(bigint, bigint, bigint, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.subscribe(bigint, text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.renew(bigint, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.cancel_subscription(bigint, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.redeem_reward(bigint, text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.check_voucher(text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.use_voucher(text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.cancel_voucher(text, text, timestamptz, text)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.voucher_bundle(text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.reverse_lines(bigint, text, jsonb, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.partner_redeem(bigint, bigint, text, text, timestamptz, text)', '{app}', true, NULL, NULL),
    -- reading a member: app (and admin, for support)
    ('function', 'loyalty.member_id(text, text)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.balance(bigint, timestamptz)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.statement(bigint, timestamptz, timestamptz)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.tier_history(bigint)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.tier_progress(bigint, timestamptz)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.stamp_cards(bigint)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.challenge_progress(bigint, timestamptz)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.member_badges(bigint)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.engagement_member(bigint)', '{admin,app}', false, NULL, NULL),
    -- reports: report (and admin)
    ('function', 'loyalty.report_program(text)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.liability_rows()', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.program_kpis(text, timestamptz, timestamptz)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.cohort_retention(text, text)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.member_value(text, numeric)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.expiring_points(interval, text)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.rule_performance(text, timestamptz, timestamptz)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.partner_settlement(text, timestamptz, timestamptz)', '{admin,report}', false, NULL, NULL),
    ('function', 'loyalty.check_engagement()', '{admin,report}', false, NULL, NULL),
    -- helpers the views, policies and reading functions call with the caller's rights
    ('function', 'loyalty.add_months_local(timestamptz, integer, text)', '{admin,app,report}', false, NULL, NULL),
    ('function', 'loyalty.is_activity(loyalty.entry_kind)', '{admin,app,report}', false, NULL, NULL),
    ('function', 'loyalty.tenant_visible(regrole)', '{admin,app,report}', false, NULL, NULL),
    -- outbox (93_outbox.sql): consumers read and acknowledge through functions; admin configures and purges
    ('function', 'loyalty.next_events(text, integer)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.ack_events(text, bigint)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.purge_events(timestamptz)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.set_expiry_reminders(text, integer[])', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.position_events()', '{}', true, NULL, NULL),
    -- owner only: signing keys, code generation, triggers, internals
    ('function', 'loyalty.rotate_voucher_key()', '{}', true, NULL, NULL),
    ('function', 'loyalty.revoke_voucher_key(integer)', '{}', true, NULL, NULL),
    ('function', 'loyalty.voucher_code(bigint, integer)', '{}', true, NULL, NULL),
    ('function', 'loyalty.voucher_codes(bigint, integer, integer)', '{}', true, NULL, NULL),
    ('function', 'loyalty.caller_may_use(regrole)', '{}', false, NULL, NULL),
    ('function', 'loyalty.acting_role()', '{}', false, NULL, NULL),
    ('function', 'loyalty.forbid_change()', '{}', false, NULL, NULL),
    ('function', 'loyalty.tier_guard()', '{}', false, NULL, NULL),
    ('function', 'loyalty.invalidate_program_cache()', '{}', false, NULL, NULL),
    ('function', 'loyalty.audit_settings_change()', '{}', false, NULL, NULL),
    ('function', 'loyalty.engagement_reward(bigint, jsonb, text[])', '{}', false, NULL, NULL),
    ('function', 'loyalty.engagement_program(text, text, text)', '{}', false, NULL, NULL),
    -- views: all run with the caller's rights (security_invoker), so row-level security applies
    ('view', 'loyalty.member_summary', '{admin,app,report}', NULL, NULL, NULL),
    ('view', 'loyalty.member_tiers', '{admin,app,report}', NULL, NULL, NULL),
    ('view', 'loyalty.liability', '{admin,report}', NULL, NULL, NULL),
    ('view', 'loyalty.tier_distribution', '{admin,report}', NULL, NULL, NULL),
    ('view', 'loyalty.program_kpis_30d', '{admin,report}', NULL, NULL, NULL),
    ('view', 'loyalty.audit_log', '{admin,report}', NULL, NULL, NULL),
    ('view', 'loyalty.rules', '{admin,report}', NULL, NULL, NULL),
    ('view', 'loyalty.partner_liability', '{admin,report}', NULL, NULL, NULL),
    -- tables: SELECT only (what the views and reading functions need), never a write
    ('table', 'loyalty.program', '{admin,app,report}', NULL, 'tenant', '{}'),
    ('table', 'loyalty.tier', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.plan', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.reward', '{admin,app,report}', NULL, 'program_id', '{stock}'),
    ('table', 'loyalty.member', '{admin,app,report}', NULL, 'program_id', NULL),
    ('table', 'loyalty.entry', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.lot', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.lot_draw', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.tier_change', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.subscription', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.rule', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.rule_usage', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.partner', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.stamp_card', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.challenge', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.member_stamp_card', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.stamp', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.challenge_progress', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.challenge_tally', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.challenge_credit', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.member_badge', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.audit', '{admin,report}', NULL, 'program_id_or_null', NULL),
    ('table', 'loyalty.rollup_state', '{}', NULL, NULL, NULL),       -- the high-water mark: through report_hwm()
    ('table', 'loyalty.rollup_day', '{admin,report}', NULL, 'program_id', NULL),
    ('table', 'loyalty.rollup_member_year', '{admin,report}', NULL, 'program_id', NULL),
    ('table', 'loyalty.rollup_cohort', '{admin,report}', NULL, 'program_id', NULL),
    -- growth (89_growth.sql): events, birthdays, referrals, segments, offers
    ('function', 'loyalty.define_event(text, text, bigint, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.set_referral_terms(text, bigint, bigint, numeric, integer, integer)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_segment(text, text, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.add_offer(text, text, jsonb)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.set_reward_segment(text, text, text)', '{admin}', true, NULL, NULL),
    ('function', 'loyalty.record_event(bigint, text, text, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.set_birthday(bigint, date, timestamptz)', '{app}', true, NULL, NULL),
    ('function', 'loyalty.referrals(bigint)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.offers_for(bigint, timestamptz)', '{admin,app}', false, NULL, NULL),
    ('function', 'loyalty.member_segments(bigint, timestamptz)', '{admin,app,report}', false, NULL, NULL),
    ('function', 'loyalty.in_segment(bigint, bigint, timestamptz)', '{admin,app,report}', false, NULL, NULL),
    ('function', 'loyalty.next_birthday(date, timestamptz, text)', '{}', false, NULL, NULL),
    ('function', 'loyalty.growth_number(jsonb, text, numeric, numeric, boolean, text)', '{}', false, NULL, NULL),
    ('function', 'loyalty.growth_keys(jsonb, text, text[], text)', '{}', false, NULL, NULL),
    ('function', 'loyalty.growth_strings(jsonb, text, text)', '{}', false, NULL, NULL),
    ('table', 'loyalty.event_type', '{admin,app,report}', NULL, 'program_id', '{updated_at}'),
    ('table', 'loyalty.event_award', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.member_birthday', '{admin}', NULL, 'member_id', NULL),   -- personal data
    ('table', 'loyalty.referral_terms', '{admin,app,report}', NULL, 'program_id', '{updated_at}'),
    ('table', 'loyalty.referral', '{admin,app,report}', NULL, 'program_id', NULL),
    ('table', 'loyalty.segment', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.purchase_day', '{admin,app,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.offer', '{admin,app,report}', NULL, 'program_id', '{}'),
    ('table', 'loyalty.reward_segment', '{}', NULL, NULL, NULL),     -- read by redeem_reward (owner)
    ('table', 'loyalty.outbox', '{admin,report}', NULL, 'program_id', NULL),
    ('table', 'loyalty.outbox_consumer', '{}', NULL, NULL, NULL),    -- cursors: through next_events, ack_events
    ('table', 'loyalty.expiry_reminder', '{admin,report}', NULL, 'member_id', NULL),
    ('table', 'loyalty.voucher', '{}', NULL, 'member_id', NULL),     -- codes are bearer tokens
    ('table', 'loyalty.voucher_key', '{}', NULL, NULL, NULL)         -- signing secrets
) AS r(kind, object, roles, definer, tenant_key, audit);
END;
COMMENT ON FUNCTION loyalty.access_rules() IS
    'the privileges of loyalty_admin, loyalty_app and loyalty_report on every object of the extension, '
    'SECURITY DEFINER or INVOKER per function, row-level security and audit per table';

-- Apply the classification.
DO $$
DECLARE
    r    record;
    obj  text;
    fn   oid;
    rel  oid;
    role text;
    expr text;
    path text := pg_catalog.current_setting('search_path');
BEGIN
    -- names below print and parse schema-qualified, whatever the script's search_path
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- no function of the extension is executable by PUBLIC, listed or not
    FOR r IN SELECT p.oid FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                          AND d.objid OPERATOR(pg_catalog.=) p.oid
                                          AND d.deptype OPERATOR(pg_catalog.=) 'e'
               JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
              WHERE e.extname OPERATOR(pg_catalog.=) 'loyalty' LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', r.oid::pg_catalog.regprocedure);
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA loyalty TO loyalty_admin, loyalty_app, loyalty_report';

    FOR r IN SELECT * FROM loyalty.access_rules() LOOP
        IF r.kind OPERATOR(pg_catalog.=) 'function' THEN
            fn := pg_catalog.to_regprocedure(r.object);
            CONTINUE WHEN fn IS NULL;      -- a stale row: the catalog test names it
            obj := fn::pg_catalog.regprocedure::text;
            EXECUTE pg_catalog.format('ALTER ROUTINE %s %s', obj,
                                      CASE WHEN r.definer THEN 'SECURITY DEFINER' ELSE 'SECURITY INVOKER' END);
            FOREACH role IN ARRAY r.roles LOOP
                EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO %I', obj, 'loyalty_' OPERATOR(pg_catalog.||) role);
            END LOOP;
        ELSE
            rel := pg_catalog.to_regclass(r.object);
            CONTINUE WHEN rel IS NULL;
            obj := rel::pg_catalog.regclass::text;
            IF r.kind OPERATOR(pg_catalog.=) 'view' THEN
                EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', obj);
            END IF;
            EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %s FROM PUBLIC', obj);
            FOREACH role IN ARRAY r.roles LOOP
                EXECUTE pg_catalog.format('GRANT SELECT ON TABLE %s TO %I', obj, 'loyalty_' OPERATOR(pg_catalog.||) role);
            END LOOP;
            IF r.tenant_key IS NOT NULL THEN
                expr := CASE r.tenant_key
                    WHEN 'tenant' THEN 'loyalty.tenant_visible(tenant)'
                    WHEN 'program_id' THEN pg_catalog.format(
                        'EXISTS (SELECT FROM loyalty.program p WHERE p.id = %s.program_id)', obj)
                    WHEN 'program_id_or_null' THEN pg_catalog.format(
                        '%1$s.program_id IS NULL OR EXISTS (SELECT FROM loyalty.program p WHERE p.id = %1$s.program_id)', obj)
                    WHEN 'member_id' THEN pg_catalog.format(
                        'EXISTS (SELECT FROM loyalty.member m WHERE m.id = %s.member_id)', obj)
                END;
                IF expr IS NULL THEN
                    RAISE EXCEPTION 'unknown tenant_key "%" for %', r.tenant_key, obj;
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', obj);
                EXECUTE pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', obj);
                EXECUTE pg_catalog.format('CREATE POLICY tenant ON %s USING (%s)', obj, expr);
            END IF;
            IF r.audit IS NOT NULL THEN
                EXECUTE pg_catalog.format(
                    'CREATE TRIGGER audit_settings AFTER INSERT OR DELETE ON %1$s '
                    'FOR EACH ROW EXECUTE FUNCTION loyalty.audit_settings_change(%2$s)', obj,
                    (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(c), ', ') FROM pg_catalog.unnest(r.audit) c));
                EXECUTE pg_catalog.format(
                    'CREATE TRIGGER audit_settings_update AFTER UPDATE ON %1$s FOR EACH ROW '
                    'WHEN ((pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) %3$L::text[]) IS DISTINCT FROM '
                    '      (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) %3$L::text[])) '
                    'EXECUTE FUNCTION loyalty.audit_settings_change(%2$s)', obj,
                    (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(c), ', ') FROM pg_catalog.unnest(r.audit) c),
                    r.audit);
            END IF;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', path, true);
END
$$;
