-- 02_members: enroll, member_id, referral codes, bad input.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(33);

SELECT lives_ok($$SELECT loyalty.create_program('tap02_p', 'Members')$$, 'program');
SELECT lives_ok($$SELECT loyalty.add_tier('tap02_p', 'base', 'Base', 0)$$, 'base tier');
SELECT lives_ok($$SELECT loyalty.create_program('tap02_q', 'Other program')$$, 'second program');
SELECT lives_ok($$SELECT loyalty.add_tier('tap02_q', 'base', 'Base', 0)$$, 'second base tier');
-- A program whose only tier starts at 100: no base tier.
SELECT lives_ok($$SELECT loyalty.create_program('tap02_nobase', 'No base')$$, 'program without base tier');
SELECT lives_ok($$SELECT loyalty.add_tier('tap02_nobase', 'silver', 'Silver', 100)$$, 'non-base tier only');
SELECT lives_ok($$SELECT loyalty.create_program('tap02_empty', 'No tiers')$$, 'program without tiers');

-- ---------------------------------------------------------------------------
-- enroll is idempotent on (program, external_ref)
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.enroll('tap02_p', 'alice', '2026-01-05 10:00:00+00') > 0, 'enroll returns a member id');
SELECT is(loyalty.enroll('tap02_p', 'alice', '2026-01-05 10:00:00+00'),
          loyalty.member_id('tap02_p', 'alice'), 'enrolling again returns the same id');
SELECT is(loyalty.enroll('tap02_p', 'alice', '2026-03-01 00:00:00+00'),
          loyalty.member_id('tap02_p', 'alice'), 'enrolling again at another time returns the same id');
SELECT is((SELECT count(*) FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
            WHERE p.code = 'tap02_p' AND m.external_ref = 'alice'),
          1::bigint, 'only one member row for alice');
SELECT is((SELECT enrolled_at FROM loyalty.member WHERE id = loyalty.member_id('tap02_p', 'alice')),
          '2026-01-05 10:00:00+00'::timestamptz, 'enrolled_at is the first enrolment time');

-- The same external_ref in another program is another member.
SELECT isnt(loyalty.enroll('tap02_q', 'alice', '2026-01-05 10:00:00+00'),
            loyalty.member_id('tap02_p', 'alice'), 'same external_ref in another program is another member');

-- New member: base tier, nothing on the balance.
SELECT is((SELECT (available, pending, lifetime_earned, redeemed, expired, tier)::text
             FROM loyalty.balance(loyalty.member_id('tap02_p', 'alice'), '2026-01-06 00:00:00+00')),
          '(0,0,0,0,0,base)', 'new member: zero balance, base tier');
SELECT is((SELECT length(referral_code) FROM loyalty.member WHERE id = loyalty.member_id('tap02_p', 'alice')),
          8, 'member gets an 8-character referral code');

-- ---------------------------------------------------------------------------
-- member_id
-- ---------------------------------------------------------------------------
SELECT is(loyalty.member_id('tap02_p', 'nobody'), NULL::bigint, 'member_id is NULL for an unknown external_ref');
SELECT throws_ok($$SELECT loyalty.member_id('tap02_nope', 'alice')$$, 'LY001', NULL,
                 'member_id of an unknown program -> LY001');

-- ---------------------------------------------------------------------------
-- Referrals
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.enroll('tap02_p', 'bob', '2026-01-06 10:00:00+00',
                         (SELECT referral_code FROM loyalty.member
                           WHERE id = loyalty.member_id('tap02_p', 'alice'))) > 0,
          'enroll with alice''s referral code');
SELECT is((SELECT referred_by FROM loyalty.member WHERE id = loyalty.member_id('tap02_p', 'bob')),
          loyalty.member_id('tap02_p', 'alice'), 'bob.referred_by is alice');
SELECT isnt((SELECT referral_code FROM loyalty.member WHERE id = loyalty.member_id('tap02_p', 'bob')),
            (SELECT referral_code FROM loyalty.member WHERE id = loyalty.member_id('tap02_p', 'alice')),
            'bob has his own referral code');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', 'carol', '2026-01-06 10:00:00+00', 'NOSUCHCD')$$,
                 'LY004', NULL, 'unknown referral code -> LY004');
-- alice's code from program tap02_p is unknown in program tap02_q.
SELECT throws_ok($$SELECT loyalty.enroll('tap02_q', 'carol', '2026-01-06 10:00:00+00',
                          (SELECT referral_code FROM loyalty.member
                            WHERE id = loyalty.member_id('tap02_p', 'alice')))$$,
                 'LY004', NULL, 'referral code of another program -> LY004');
SELECT is(loyalty.member_id('tap02_p', 'carol'), NULL::bigint, 'failed enrolment left no member');

-- ---------------------------------------------------------------------------
-- Errors
-- ---------------------------------------------------------------------------
SELECT throws_ok($$SELECT loyalty.enroll('tap02_nope', 'dave', '2026-01-06 10:00:00+00')$$,
                 'LY001', NULL, 'enroll in an unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_nobase', 'dave', '2026-01-06 10:00:00+00')$$,
                 'LY040', NULL, 'program whose tiers have no threshold 0 -> LY040');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_empty', 'dave', '2026-01-06 10:00:00+00')$$,
                 'LY040', NULL, 'program without tiers -> LY040');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', NULL, '2026-01-06 10:00:00+00')$$,
                 'LY034', NULL, 'NULL external_ref -> LY034');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', '', '2026-01-06 10:00:00+00')$$,
                 'LY037', NULL, 'empty external_ref -> LY037');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', 'dave', 'infinity')$$,
                 'LY033', NULL, 'enroll at infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', 'dave', '-infinity')$$,
                 'LY033', NULL, 'enroll at -infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.enroll('tap02_p', 'dave', NULL)$$,
                 'LY034', NULL, 'enroll at NULL -> LY034');
SELECT is(loyalty.member_id('tap02_p', 'dave'), NULL::bigint, 'failed enrolments left no member dave');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
