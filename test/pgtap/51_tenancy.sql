-- Tenancy: programs bound to tenant roles. Tenant A can neither read nor move
-- tenant B's points by any function or view, gets for B's programs, members
-- and vouchers exactly the error an unknown one gets, and cannot escape
-- through SET ROLE unless it is a member of B.
BEGIN;
SELECT plan(29);

-- Tenant group roles; each tenant holds the roles its staff need.
CREATE ROLE t51_ta NOLOGIN IN ROLE loyalty_app, loyalty_admin, loyalty_report;
CREATE ROLE t51_tb NOLOGIN IN ROLE loyalty_app, loyalty_admin, loyalty_report;
CREATE ROLE t51_ua NOLOGIN IN ROLE t51_ta;          -- a user of tenant A
CREATE ROLE t51_ub NOLOGIN IN ROLE t51_tb;          -- a user of tenant B
CREATE ROLE t51_uc NOLOGIN NOINHERIT IN ROLE t51_tb; -- a member of B that must SET ROLE to act as B
GRANT USAGE ON SCHEMA loyalty TO t51_uc;
GRANT EXECUTE ON FUNCTION loyalty.earn(bigint, numeric, text, timestamptz, jsonb) TO t51_uc;

SELECT loyalty.create_program('t51a', 'A', '{"pending_days": 1}');
SELECT loyalty.create_program('t51b', 'B', '{"pending_days": 1}');
SELECT loyalty.create_program('t51u', 'Unbound', '{}');
SELECT loyalty.add_tier(p, 'base', 'Base', 0) FROM unnest(ARRAY['t51a', 't51b', 't51u']) p;
SELECT loyalty.add_tier('t51b', 'gold', 'Gold', 1000);
SELECT loyalty.add_plan('t51b', 'vip', 'VIP', 10, 1);
SELECT loyalty.add_reward('t51b', 'mug', 'Mug', 5);
SELECT loyalty.add_rule('t51b', 'r1', '{"kind": "bonus", "points": 1}');
SELECT loyalty.add_partner('t51b', 'zoo', 'Zoo', 0.01);
SELECT loyalty.add_stamp_card('t51b', 'card', 3, '{}', '{"points": 50}');
SELECT loyalty.bind_program('t51a', 't51_ta');
SELECT loyalty.bind_program('t51b', 't51_tb');
SELECT loyalty.enroll('t51a', 'a1', '2026-01-01 00:00:00+00') AS a1 \gset
SELECT loyalty.enroll('t51b', 'b1', '2026-01-01 00:00:00+00') AS b1 \gset
SELECT loyalty.enroll('t51b', 'b2', '2026-01-01 00:00:00+00') AS b2 \gset
SELECT loyalty.earn(:a1, 100, 'ea1', '2026-01-01 00:00:00+00');
SELECT loyalty.earn(:b1, 100, 'eb1', '2025-12-01 00:00:00+00');
SELECT loyalty.earn(:b2, 50, 'eb2', '2026-01-01 00:00:00+00');
SELECT loyalty.subscribe(:b1, 'vip', 'sb1', '2026-01-01 00:00:00+00');
SELECT voucher_code AS vb, voucher_id AS vbid FROM loyalty.redeem_reward(:b1, 'mug', 'rb1', '2026-01-01 00:00:00+00') \gset
-- a well-formed, genuinely signed code of a voucher that does not exist
SELECT loyalty.voucher_code(:vbid + 1000, (SELECT max(key_id) FROM loyalty.voucher_keys())) AS vunknown \gset

-- Everything of tenant B, to compare after A has tried everything.
CREATE TEMP TABLE b_before AS
SELECT (SELECT string_agg(format('%s', e), ';' ORDER BY e.member_id, e.id) FROM loyalty.entry e WHERE e.member_id IN (:b1, :b2)) AS entries,
       (SELECT string_agg(format('%s', m), ';' ORDER BY m.id) FROM loyalty.member m WHERE m.program_id = (SELECT id FROM loyalty.program WHERE code = 't51b')) AS members,
       (SELECT string_agg(format('%s', v), ';' ORDER BY v.id) FROM loyalty.voucher v WHERE v.member_id IN (:b1, :b2)) AS vouchers,
       (SELECT string_agg(format('%s', t), ';' ORDER BY t.id) FROM loyalty.tier t WHERE t.program_id = (SELECT id FROM loyalty.program WHERE code = 't51b')) AS tiers,
       (SELECT format('%s', p) FROM loyalty.program p WHERE code = 't51b') AS program;

-- Run a statement as the current role; its outcome as 'ok' or 'SQLSTATE: message'.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Every function that takes a member, a program or a voucher code: the call
-- with tenant B's object, and the same call with an unknown one.
CREATE TEMP TABLE probe (fn text, foreign_sql text, unknown_sql text, foreign_out text, unknown_out text);
GRANT ALL ON probe TO PUBLIC;
INSERT INTO probe (fn, foreign_sql)
VALUES ('earn', 'SELECT loyalty.earn(%s, 10, ''p1'')'),
       ('award', 'SELECT loyalty.award(%s, 10, ''bonus'', ''p2'')'),
       ('redeem', 'SELECT loyalty.redeem(%s, 1, ''p3'')'),
       ('reverse', 'SELECT loyalty.reverse(%s, ''eb1'', 1, ''p4'')'),
       ('adjust', 'SELECT loyalty.adjust(%s, 10, ''fix'', ''p5'')'),
       ('transfer', 'SELECT loyalty.transfer(' || :a1 || ', %s, 1, ''p6'')'),
       ('transfer', 'SELECT loyalty.transfer(%s, ' || :a1 || ', 1, ''p7'')'),
       ('transfer', 'SELECT loyalty.transfer(%s, ' || :b2 || ', 1, ''p8'')'),
       ('subscribe', 'SELECT loyalty.subscribe(%s, ''vip'', ''p9'')'),
       ('renew', 'SELECT loyalty.renew(%s, ''p10'')'),
       ('cancel_subscription', 'SELECT loyalty.cancel_subscription(%s)'),
       ('set_tier', 'SELECT loyalty.set_tier(%s, ''gold'', ''infinity'', ''vip'')'),
       ('redeem_reward', 'SELECT loyalty.redeem_reward(%s, ''mug'', ''p11'')'),
       ('anonymise_member', 'SELECT loyalty.anonymise_member(%s, ''gdpr'')'),
       ('balance', 'SELECT loyalty.balance(%s)'),
       ('statement', 'SELECT loyalty.statement(%s)'),
       ('tier_history', 'SELECT loyalty.tier_history(%s)'),
       ('tier_progress', 'SELECT loyalty.tier_progress(%s)'),
       ('reverse_lines', 'SELECT loyalty.reverse_lines(%s, ''eb1'', ''[{"line": 1}]'', ''p14'')'),
       ('partner_redeem', 'SELECT loyalty.partner_redeem(%s, 1, ''zoo'', ''p15'')'),
       ('stamp_cards', 'SELECT loyalty.stamp_cards(%s)'),
       ('challenge_progress', 'SELECT loyalty.challenge_progress(%s)'),
       ('member_badges', 'SELECT loyalty.member_badges(%s)'),
       ('engagement_member', 'SELECT loyalty.engagement_member(%s)'),
       ('record_event', 'SELECT loyalty.record_event(%s, ''review'', ''p16'')'),
       ('set_birthday', 'SELECT loyalty.set_birthday(%s, ''1990-01-01'')'),
       ('referrals', 'SELECT loyalty.referrals(%s)'),
       ('offers_for', 'SELECT loyalty.offers_for(%s)'),
       ('member_segments', 'SELECT loyalty.member_segments(%s)'),
       ('in_segment', 'SELECT loyalty.in_segment(%s, 1)');
UPDATE probe SET unknown_sql = format(foreign_sql, 999999999), foreign_sql = format(foreign_sql, :b1);
INSERT INTO probe (fn, foreign_sql)
VALUES ('enroll', 'SELECT loyalty.enroll(%L, ''new'')'),
       ('member_id', 'SELECT loyalty.member_id(%L, ''b1'')'),
       ('add_tier', 'SELECT loyalty.add_tier(%L, ''x'', ''X'', 5)'),
       ('add_plan', 'SELECT loyalty.add_plan(%L, ''x'', ''X'', 1, 1, ''gold'')'),
       ('add_reward', 'SELECT loyalty.add_reward(%L, ''x'', ''X'', 1, min_tier => ''gold'')'),
       ('bind_program', 'SELECT loyalty.bind_program(%L, ''t51_ta'')'),
       ('voucher_bundle', 'SELECT loyalty.voucher_bundle(%L, ''store'')'),
       ('program_kpis', 'SELECT loyalty.program_kpis(%L, ''2020-01-01'', ''2030-01-01'')'),
       ('cohort_retention', 'SELECT loyalty.cohort_retention(%L)'),
       ('member_value', 'SELECT loyalty.member_value(%L)'),
       ('report_program', 'SELECT loyalty.report_program(%L)'),
       ('expiring_points', 'SELECT loyalty.expiring_points(''1 year'', %L)'),
       ('add_rule', 'SELECT loyalty.add_rule(%L, ''x'', ''{"kind": "bonus", "points": 1}'')'),
       ('end_rule', 'SELECT loyalty.end_rule(%L, ''r1'')'),
       ('add_partner', 'SELECT loyalty.add_partner(%L, ''zoo2'', ''Zoo'', 0.01)'),
       ('add_stamp_card', 'SELECT loyalty.add_stamp_card(%L, ''x'', 3, ''{}'', ''{"points": 50}'')'),
       ('add_challenge', 'SELECT loyalty.add_challenge(%L, ''x'', ''{"goal": "purchases", "target": 3, "period": "month", "reward": {"points": 100}}'')'),
       ('rule_performance', 'SELECT loyalty.rule_performance(%L, ''2020-01-01'', ''2030-01-01'')'),
       ('partner_settlement', 'SELECT loyalty.partner_settlement(%L, ''2020-01-01'', ''2030-01-01'')'),
       ('define_event', 'SELECT loyalty.define_event(%L, ''review'', 1)'),
       ('set_referral_terms', 'SELECT loyalty.set_referral_terms(%L, 1, 1)'),
       ('add_segment', 'SELECT loyalty.add_segment(%L, ''x'', ''{}'')'),
       ('add_offer', 'SELECT loyalty.add_offer(%L, ''x'', ''{"bonus": {}}'')'),
       ('set_reward_segment', 'SELECT loyalty.set_reward_segment(%L, ''mug'', NULL)'),
       ('set_expiry_reminders', 'SELECT loyalty.set_expiry_reminders(%L, ''{7}'')');
UPDATE probe SET unknown_sql = format(foreign_sql, 't51zz'), foreign_sql = format(foreign_sql, 't51b')
 WHERE unknown_sql IS NULL;
INSERT INTO probe (fn, foreign_sql, unknown_sql)
VALUES ('use_voucher', format('SELECT loyalty.use_voucher(%L, ''p12'')', :'vb'), format('SELECT loyalty.use_voucher(%L, ''p12'')', :'vunknown')),
       ('cancel_voucher', format('SELECT loyalty.cancel_voucher(%L, ''p13'')', :'vb'), format('SELECT loyalty.cancel_voucher(%L, ''p13'')', :'vunknown')),
       ('check_voucher', format('SELECT 1 / 0 FROM loyalty.check_voucher(%L) WHERE status = ''forged'' AND voucher_id IS NULL', :'vb'),
                         format('SELECT 1 / 0 FROM loyalty.check_voucher(%L) WHERE status = ''forged'' AND voucher_id IS NULL', :'vunknown'));

SELECT is_empty($$SELECT p.oid::regprocedure FROM pg_proc p
                     JOIN loyalty.access_rules() r ON CASE WHEN r.kind = 'function' THEN to_regprocedure(r.object) END = p.oid
                   WHERE r.roles && '{admin,app,report}'
                     AND (p.proargnames && '{member,from_member,to_member,program}'
                          OR p.proname IN ('check_voucher', 'use_voucher', 'cancel_voucher'))
                     AND p.proname NOT IN (SELECT fn FROM probe)$$,
                'every function a role may call with a member, program or voucher is probed below');

-- ---------------------------------------------------------------------------
-- Tenant A (staff with app, admin and report roles) tries everything on B
-- ---------------------------------------------------------------------------
SET SESSION AUTHORIZATION t51_ua;
UPDATE probe SET foreign_out = pg_temp.try(foreign_sql), unknown_out = pg_temp.try(unknown_sql);
CREATE TEMP TABLE a_seen AS
SELECT (SELECT count(*) FROM loyalty.member_summary WHERE program = 't51b') AS summary,
       (SELECT count(*) FROM loyalty.member_tiers WHERE program = 't51b') AS tiers_view,
       (SELECT count(*) FROM loyalty.liability WHERE program = 't51b') AS liability,
       (SELECT count(*) FROM loyalty.tier_distribution WHERE program = 't51b') AS distribution,
       (SELECT count(*) FROM loyalty.program_kpis_30d WHERE program = 't51b') AS kpis,
       (SELECT count(*) FROM loyalty.audit_log WHERE program = 't51b') AS audit,
       (SELECT count(*) FROM loyalty.expiring_points('100 years') WHERE program_code = 't51b') AS expiring,
       (SELECT count(*) FROM loyalty.program WHERE code = 't51b') AS program,
       (SELECT count(*) FROM loyalty.member WHERE id IN (:b1, :b2)) AS member,
       (SELECT count(*) FROM loyalty.entry WHERE member_id IN (:b1, :b2)) AS entry,
       (SELECT count(*) FROM loyalty.lot WHERE member_id IN (:b1, :b2)) AS lot,
       (SELECT count(*) FROM loyalty.lot_draw WHERE member_id IN (:b1, :b2)) AS lot_draw,
       (SELECT count(*) FROM loyalty.tier_change WHERE member_id IN (:b1, :b2)) AS tier_change,
       (SELECT count(*) FROM loyalty.subscription WHERE member_id IN (:b1, :b2)) AS subscription,
       (SELECT count(*) FROM loyalty.tier t JOIN loyalty.plan p USING (program_id)) AS tier_plan_b,
       (SELECT count(*) FROM loyalty.reward) AS reward,
       (SELECT count(*) FROM loyalty.rules WHERE program = 't51b') + (SELECT count(*) FROM loyalty.partner_liability WHERE program = 't51b')
         + (SELECT count(*) FROM loyalty.rule) + (SELECT count(*) FROM loyalty.partner) + (SELECT count(*) FROM loyalty.stamp_card)
         + (SELECT count(*) FROM loyalty.member_stamp_card WHERE member_id IN (:b1, :b2)) AS engage,
       (SELECT count(*) FROM loyalty.check_invariants() WHERE member_id IN (:b1, :b2)) AS invariants,
       (SELECT count(*) FROM loyalty.member_summary WHERE program IN ('t51a', 't51u')) AS own_summary,
       (SELECT count(*) FROM loyalty.entry WHERE member_id = :a1) AS own_entries,
       (SELECT available FROM loyalty.balance(:a1, '2026-02-01 00:00:00+00')) AS own_balance;
SELECT pg_temp.try('SET ROLE t51_tb') AS set_role_b,
       pg_temp.try($$SELECT loyalty.bind_program('t51a', 't51_tb')$$) AS bind_to_b,
       pg_temp.try($$SELECT loyalty.bind_program('t51a', NULL)$$) AS unbind,
       pg_temp.try($$SELECT loyalty.enroll('t51u', 'u1')$$) AS unbound_enroll,
       (loyalty.run_maintenance('2026-06-01 00:00:00+00') ->> 'members')::int AS maintained
  \gset
RESET SESSION AUTHORIZATION;

SELECT is_empty($$SELECT fn, foreign_out FROM probe WHERE foreign_out = 'ok' OR foreign_out LIKE '42501%'$$,
                'tenant A: every call on B''s member, program or voucher fails, and not for lack of privileges');
SELECT is_empty(format($$SELECT fn, foreign_out, unknown_out FROM probe
                          WHERE regexp_replace(foreign_out, '\m(%1$s|%2$s|999999999|t51b|t51zz)\M', 'X', 'g')
                                IS DISTINCT FROM regexp_replace(unknown_out, '\m(%1$s|%2$s|999999999|t51b|t51zz)\M', 'X', 'g')$$, :b1, :b2),
                'tenant A: each fails exactly as it does for an unknown member, program or voucher (no probing)');
SELECT is((SELECT string_agg(DISTINCT left(foreign_out, 5), ',' ORDER BY left(foreign_out, 5)) FROM probe),
          '22012,LY001,LY002,LY092', 'the errors are: unknown program, unknown member, code not genuine (check_voucher: status forged)');
SELECT is((SELECT entries FROM b_before),
          (SELECT string_agg(format('%s', e), ';' ORDER BY e.member_id, e.id) FROM loyalty.entry e WHERE e.member_id IN (:b1, :b2)),
          'B''s ledger is untouched');
SELECT is((SELECT members FROM b_before),
          (SELECT string_agg(format('%s', m), ';' ORDER BY m.id) FROM loyalty.member m WHERE m.program_id = (SELECT id FROM loyalty.program WHERE code = 't51b')),
          'B''s members (balances, tiers, external refs) are untouched');
SELECT is((SELECT vouchers FROM b_before),
          (SELECT string_agg(format('%s', v), ';' ORDER BY v.id) FROM loyalty.voucher v WHERE v.member_id IN (:b1, :b2)),
          'B''s voucher is neither used nor cancelled');
SELECT is((SELECT tiers || program FROM b_before),
          (SELECT (SELECT string_agg(format('%s', t), ';' ORDER BY t.id) FROM loyalty.tier t WHERE t.program_id = p.id) || format('%s', p)
             FROM loyalty.program p WHERE code = 't51b'),
          'B''s program, tiers and binding are untouched');
SELECT is((SELECT count(*)::int FROM loyalty.plan p JOIN loyalty.program g ON g.id = p.program_id WHERE g.code = 't51b')
          + (SELECT count(*)::int FROM loyalty.reward r JOIN loyalty.program g ON g.id = r.program_id WHERE g.code = 't51b'),
          2, 'no plan or reward was added to B');
SELECT is((SELECT (summary, tiers_view, liability, distribution, kpis, audit, expiring)::text FROM a_seen),
          '(0,0,0,0,0,0,0)', 'tenant A sees nothing of B in any view or report');
SELECT is((SELECT (program, member, entry, lot, lot_draw, tier_change, subscription, tier_plan_b, reward, invariants, engage)::text FROM a_seen),
          '(0,0,0,0,0,0,0,0,0,0,0)', 'tenant A reads no row of B in any table (rules, partners, cards too)');
SELECT is((SELECT (own_summary, own_entries, own_balance)::text FROM a_seen), '(1,1,100)',
          'tenant A sees its own program and the unbound one');
SELECT is(:'set_role_b'::text, '42501: permission denied to set role "t51_tb"', 'tenant A cannot SET ROLE to B');
SELECT is(left(:'bind_to_b', 5)::text, 'LY151', 'tenant A cannot hand its program to B');
SELECT is(left(:'unbind', 5)::text, 'LY151', 'tenant A cannot unbind its program (only the owner can)');
SELECT is(:'unbound_enroll'::text, 'ok', 'an unbound program is usable by every role with the privileges');
SELECT is(:maintained, 1, 'run_maintenance by tenant A sweeps only A''s due member');
SELECT ok((SELECT next_transition_at < '2026-06-01' FROM loyalty.member WHERE id = :b2), 'B''s due member is left for B (or the owner)');

-- ---------------------------------------------------------------------------
-- B itself, and a NOINHERIT member of B
-- ---------------------------------------------------------------------------
SET SESSION AUTHORIZATION t51_ub;
SELECT pg_temp.try(format($$SELECT loyalty.earn(%s, 10, 'ub1', '2026-02-01 00:00:00+00')$$, :b1)) AS ub_earn,
       (SELECT count(*) FROM loyalty.member_summary WHERE program = 't51b') AS ub_sees,
       (SELECT count(*) FROM loyalty.member_summary WHERE program = 't51a') AS ub_sees_a,
       pg_temp.try(format($$SELECT loyalty.earn(%s, 10, 'ub2')$$, :a1)) AS ub_earn_a
  \gset
RESET SESSION AUTHORIZATION;
SELECT is(:'ub_earn'::text, 'ok', 'tenant B uses its own program');
SELECT is(:ub_sees || '/' || :ub_sees_a, '2/0', 'tenant B sees its own members and none of A''s');
SELECT is(left(:'ub_earn_a', 5)::text, 'LY002', 'tenant B cannot touch A''s member either');

SET SESSION AUTHORIZATION t51_uc;
SELECT pg_temp.try(format($$SELECT loyalty.earn(%s, 10, 'uc1', '2026-02-01 00:00:00+00')$$, :b1)) AS uc_direct \gset
SET ROLE t51_tb;
SELECT pg_temp.try(format($$SELECT loyalty.earn(%s, 10, 'uc2', '2026-02-01 00:00:00+00')$$, :b1)) AS uc_as_b,
       (SELECT acting FROM (SELECT current_user::text AS acting) x) AS uc_role \gset
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT is(:'uc_direct'::text, format('LY002: member %s does not exist', :b1),
          'a NOINHERIT member of B does not have B''s programs without SET ROLE (checks use the role in effect)');
SELECT is((:'uc_as_b' || '/' || :'uc_role')::text, 'ok/t51_tb', 'after SET ROLE t51_tb it acts as B');
SELECT is((SELECT session_role || '/' || acting_role FROM loyalty.audit_log
            WHERE action = 'program.update' AND program = 't51b' ORDER BY id DESC LIMIT 1),
          'postgres/postgres', 'the binding was audited');

-- ---------------------------------------------------------------------------
-- The owner, and binding rules
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(*)::int FROM loyalty.member_summary WHERE program IN ('t51a', 't51b', 't51u')), 4,
          'the owner (superuser) sees every tenant');
SELECT throws_ok($$SELECT loyalty.bind_program('t51u', 'postgres')$$, 'LY150', NULL,
                 'a program cannot be bound to a superuser role');
SELECT lives_ok($$SELECT loyalty.bind_program('t51u', NULL)$$, 'the owner may unbind');
SELECT ok(NOT has_function_privilege('t51_ua', 'loyalty.caller_may_use(regrole)', 'EXECUTE')
          AND has_function_privilege('t51_ua', 'loyalty.tenant_visible(regrole)', 'EXECUTE'),
          'the policy test is executable by the roles, the definer-side test only by the owner');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
