-- Audit (who and why for adjustments, tier overrides and settings changes) and
-- anonymise_member (who the member is goes, the ledger stays).
BEGIN;
SELECT plan(33);

-- A login role of the staff acts as its team role through SET ROLE.
CREATE ROLE t52_team NOLOGIN IN ROLE loyalty_admin, loyalty_app;
CREATE ROLE t52_login NOLOGIN NOINHERIT IN ROLE t52_team;

-- ---------------------------------------------------------------------------
-- Settings changes
-- ---------------------------------------------------------------------------
SET SESSION AUTHORIZATION t52_login;
SET ROLE t52_team;
SET LOCAL loyalty.audit_reason = 'spring launch (ticket 42)';
SELECT loyalty.create_program('t52', 'Audit', '{"pending_days": 0}') AS pid \gset
SELECT loyalty.add_tier('t52', 'base', 'Base', 0);
SELECT loyalty.add_tier('t52', 'gold', 'Gold', 500, 1.5);
SELECT loyalty.add_reward('t52', 'mug', 'Mug', 5, stock => 10);
SELECT loyalty.enroll('t52', 'alice@example.com', '2026-01-01 00:00:00+00') AS referrer \gset
RESET loyalty.audit_reason;
RESET ROLE;
RESET SESSION AUTHORIZATION;

SELECT is((SELECT string_agg(action || ':' || session_role || '/' || acting_role || ':' || coalesce(reason, '-'), ', ' ORDER BY id)
             FROM loyalty.audit_log WHERE program = 't52'),
          'program.insert:t52_login/t52_team:spring launch (ticket 42), tier.insert:t52_login/t52_team:spring launch (ticket 42), '
          'tier.insert:t52_login/t52_team:spring launch (ticket 42), reward.insert:t52_login/t52_team:spring launch (ticket 42)',
          'creating a program, tiers and a reward is audited: the session user, the role it acted as (not the owner), why');
SELECT is((SELECT detail -> 'new' ->> 'earn_multiplier' FROM loyalty.audit_log WHERE program = 't52' AND action = 'tier.insert'
            AND detail -> 'new' ->> 'code' = 'gold'), '1.5', 'the audit row holds the new tier');

-- A settings update and a tier edit, whatever function (or the owner) makes them.
SET LOCAL loyalty.audit_reason = 'finance asked';
UPDATE loyalty.program SET cost_per_point = 0.01 WHERE code = 't52';
UPDATE loyalty.tier SET earn_multiplier = 2 WHERE program_id = :pid AND code = 'gold';
RESET loyalty.audit_reason;
SELECT is((SELECT detail::text FROM loyalty.audit_log WHERE program = 't52' AND action = 'program.update'),
          '{"new": {"cost_per_point": 0.01}, "old": {"cost_per_point": 0}}', 'a settings update records what changed, before and after');
SELECT is((SELECT reason || ' ' || (detail -> 'old' ->> 'earn_multiplier') || '->' || (detail -> 'new' ->> 'earn_multiplier')
             FROM loyalty.audit_log WHERE program = 't52' AND action = 'tier.update'),
          'finance asked 1.5->2', 'a tier edit records what changed and why');
UPDATE loyalty.tier SET earn_multiplier = 2 WHERE program_id = :pid AND code = 'gold';
SELECT is((SELECT count(*)::int FROM loyalty.audit_log WHERE program = 't52' AND action = 'tier.update'), 1,
          'an update that changes nothing is not recorded');

-- COPY (how pg_dump restores the table, with the audit restored beside it) is not audited again.
SELECT count(*) AS audit_before_copy FROM loyalty.audit \gset
SELECT format('printf ''%s\tt52-restored\tRestored\t1\t1\n''', :pid) AS copy_cmd \gset
COPY loyalty.plan (program_id, code, name, price, period_months) FROM PROGRAM :'copy_cmd';
SELECT is((SELECT count(*) FROM loyalty.audit) || '/' || (SELECT count(*) FROM loyalty.plan WHERE code = 't52-restored'),
          :audit_before_copy || '/1', 'a row restored with COPY is there, and not audited twice');

-- ---------------------------------------------------------------------------
-- Adjustments and overrides
-- ---------------------------------------------------------------------------
SELECT loyalty.enroll('t52', 'bob', '2026-01-01 00:00:00+00', (SELECT referral_code FROM loyalty.member WHERE id = :referrer)) AS m \gset
SELECT loyalty.earn(:m, 100, 'e1', '2026-01-02 00:00:00+00');
SELECT loyalty.redeem_reward(:m, 'mug', 'r1', '2026-01-03 00:00:00+00');
SELECT is((SELECT count(*)::int FROM loyalty.audit_log WHERE program = 't52' AND action LIKE 'reward.%'), 1,
          'a redemption taking one from stock is not a settings change');

SET SESSION AUTHORIZATION t52_login;
SET ROLE t52_team;
SELECT (loyalty.adjust(:m, 25, 'goodwill: late delivery', 'adj-1', '2026-01-04 00:00:00+00')).entry_id AS adj \gset
SELECT loyalty.adjust(:m, 25, 'goodwill: late delivery', 'adj-1', '2026-01-04 00:00:00+00');   -- a retry
SELECT loyalty.set_tier(:m, 'gold', '2026-12-31 00:00:00+00', 'status match from a competitor', '2026-01-05 00:00:00+00');
RESET ROLE;
RESET SESSION AUTHORIZATION;

SELECT is((SELECT format('%s/%s/%s/%s/%s', session_role, acting_role, reason, detail ->> 'points', detail ->> 'idempotency_key')
             FROM loyalty.audit_log WHERE action = 'adjust' AND member_id = :m),
          't52_login/t52_team/goodwill: late delivery/25/adj-1', 'an adjustment is audited with who, why and how much');
SELECT is((SELECT (detail ->> 'entry_id')::bigint FROM loyalty.audit_log WHERE action = 'adjust' AND member_id = :m), :adj::bigint,
          'the audit row names the ledger entry');
SELECT is((SELECT count(*)::int FROM loyalty.audit_log WHERE action = 'adjust' AND member_id = :m), 1, 'a replayed adjustment is not audited twice');
SELECT is((SELECT format('%s/%s/%s/%s', acting_role, reason, detail ->> 'tier', detail ->> 'until')
             FROM loyalty.audit_log WHERE action = 'set_tier' AND member_id = :m),
          't52_team/status match from a competitor/gold/2026-12-31 00:00:00+00', 'a tier override is audited');
SELECT is((SELECT detail ->> 'session_user' || '/' || (detail ->> 'current_user') FROM loyalty.tier_change
            WHERE member_id = :m AND reason = 'override'),
          't52_login/t52_team', 'set_tier''s tier_change row names the acting role, not the owner the function runs as');
SELECT throws_ok(format($$SELECT loyalty.adjust(%s, 5, '', 'adj-2')$$, :m), 'LY036', NULL, 'an adjustment needs a reason');

-- The audit is append-only and readable by admin and report, not by the app.
SELECT throws_ok('UPDATE loyalty.audit SET reason = NULL', 'LY060', NULL, 'the audit cannot be updated, even by the owner');
SELECT throws_ok('DELETE FROM loyalty.audit', 'LY060', NULL, 'the audit cannot be deleted from');
SELECT throws_ok('TRUNCATE loyalty.audit', 'LY060', NULL, 'the audit cannot be truncated');
SELECT ok(has_table_privilege('loyalty_admin', 'loyalty.audit_log', 'SELECT')
          AND has_table_privilege('loyalty_report', 'loyalty.audit_log', 'SELECT')
          AND NOT has_table_privilege('loyalty_app', 'loyalty.audit_log', 'SELECT'),
          'audit_log: admin and report read it, the app does not');

-- ---------------------------------------------------------------------------
-- Anonymisation
-- ---------------------------------------------------------------------------
-- Personal attributes other features keep on the member row (created here).
ALTER TABLE loyalty.member ADD COLUMN attrs jsonb NOT NULL DEFAULT '{}', ADD COLUMN birthday date;
UPDATE loyalty.member SET attrs = '{"name": "Alice A.", "phone": "+1 555 0100"}', birthday = '1990-04-01' WHERE id = :referrer;
SELECT loyalty.earn(:referrer, 40, 'ea1', '2026-01-02 00:00:00+00');
SELECT loyalty.redeem(:referrer, 15, 'ea2', '2026-01-03 00:00:00+00');
SELECT loyalty.transfer(:referrer, :m, 5, 'ea3', '2026-01-04 00:00:00+00');
CREATE TEMP TABLE before AS
SELECT (SELECT format('%s', b) FROM loyalty.balance(:referrer, '2026-06-01 00:00:00+00') b) AS balance,
       (SELECT string_agg(format('%s/%s/%s', entry_id, kind, points), ';' ORDER BY entry_id) FROM loyalty.statement(:referrer)) AS statement,
       (SELECT referral_code FROM loyalty.member WHERE id = :referrer) AS code,
       (SELECT count(*) FROM loyalty.audit) AS audit_rows;
UPDATE loyalty.member SET referred_by = :m WHERE id = :referrer;   -- a referral link of hers too

SET SESSION AUTHORIZATION t52_login;
SET ROLE t52_team;
SELECT loyalty.anonymise_member(:referrer, 'erasure request 2026-07') AS first \gset
SELECT loyalty.anonymise_member(:referrer, 'erasure request 2026-07') AS second \gset
RESET ROLE;
RESET SESSION AUTHORIZATION;

SELECT is((:'first' || '/' || :'second')::text, 't/f', 'anonymise_member: done the first time, nothing to do the second');
SELECT ok((SELECT external_ref ~ '^anonymised-[0-9a-f]{32}$' FROM loyalty.member WHERE id = :referrer),
          'external_ref is replaced by a random, non-identifying value');
SELECT ok((SELECT referral_code <> (SELECT code FROM before) AND referred_by IS NULL FROM loyalty.member WHERE id = :referrer),
          'her referral code is replaced and the link to who referred her is gone');
SELECT is((SELECT attrs::text || '/' || coalesce(birthday::text, 'null') FROM loyalty.member WHERE id = :referrer), '{}/null',
          'personal attributes (attrs, birthday) are erased');
SELECT ok((SELECT anonymised_at IS NOT NULL FROM loyalty.member WHERE id = :referrer), 'the member row says when');
SELECT is(loyalty.member_id('t52', 'alice@example.com'), NULL, 'the old external reference finds no one');
SELECT is((SELECT count(*) FROM loyalty.outbox WHERE payload::text LIKE '%alice@example.com%'), 0::bigint,
          'no outbox event names her any more (member_enrolled carried the external reference)');
SELECT is((SELECT format('%s', b) FROM loyalty.balance(:referrer, '2026-06-01 00:00:00+00') b), (SELECT balance FROM before),
          'her balances are unchanged');
SELECT is((SELECT string_agg(format('%s/%s/%s', entry_id, kind, points), ';' ORDER BY entry_id) FROM loyalty.statement(:referrer)),
          (SELECT statement FROM before), 'her statement still works, with every entry and the same points');
SELECT is((SELECT referred_by FROM loyalty.member WHERE id = :m), :referrer::bigint,
          'the member she referred keeps pointing at the (now anonymous) member');
SELECT is((SELECT count(*) FROM loyalty.audit) - (SELECT audit_rows FROM before), 1::bigint, 'one audit row, for the first call only');
SELECT is((SELECT format('%s/%s/%s', acting_role, reason, detail) FROM loyalty.audit_log
            WHERE action = 'anonymise_member' AND member_id = :referrer),
          't52_team/erasure request 2026-07/{}', 'the anonymisation is audited, with nothing identifying in it');
SELECT is_empty($$SELECT id FROM loyalty.audit WHERE (coalesce(reason, '') || detail::text) ~* 'alice|555 0100|1990-04-01'$$,
                'no audit row mentions her');
SELECT ok(loyalty.enroll('t52', 'alice@example.com', '2026-08-01 00:00:00+00') <> :referrer,
          'enrolling the same reference again makes a new member');
SELECT throws_ok(format($$SELECT loyalty.anonymise_member(%s, NULL)$$, :m), 'LY036', NULL, 'anonymise_member needs a reason');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold after anonymisation');
SELECT * FROM finish();
ROLLBACK;
