-- members: enroll, member_id, referrals.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

SELECT loyalty.create_program('mbr', 'Members') IS NOT NULL AS created;

-- A program needs a base tier (threshold 0) before anyone enrolls: LY040.
SELECT loyalty.enroll('mbr', 'alice', '2024-01-01 09:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('mbr', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.add_tier('mbr', 'silver', 'Silver', 500, 2) IS NOT NULL AS added;

-- enroll returns the member id and is idempotent on (program, external_ref).
SELECT loyalty.enroll('mbr', 'alice', '2024-01-01 09:00+00') AS alice \gset
SELECT loyalty.enroll('mbr', 'alice', '2024-02-01 09:00+00') = :alice AS same_member;
SELECT loyalty.member_id('mbr', 'alice') = :alice AS found;
SELECT loyalty.member_id('mbr', 'nobody') IS NULL AS unknown_is_null;
SELECT external_ref, enrolled_at, t.code AS tier, tier_since, referred_by,
       length(referral_code) AS code_length
  FROM loyalty.member m JOIN loyalty.tier t ON t.id = m.tier_id
 WHERE m.id = :alice;

-- A new member starts at zero in the base tier.
SELECT * FROM loyalty.balance(:alice, '2024-01-01 09:00+00');

-- Referral: bob enrolls with alice's code.
SELECT referral_code AS alice_code FROM loyalty.member WHERE id = :alice \gset
SELECT loyalty.enroll('mbr', 'bob', '2024-01-05 12:00+00', :'alice_code') AS bob \gset
SELECT referred_by = :alice AS referred_by_alice FROM loyalty.member WHERE id = :bob;
SELECT count(DISTINCT referral_code) AS distinct_codes FROM loyalty.member
 WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'mbr');

-- Errors: unknown program (LY001), unknown referral code (LY004),
-- NULL external_ref (LY034), empty external_ref (LY037).
SELECT loyalty.enroll('nope', 'carol', '2024-01-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.member_id('nope', 'carol');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.enroll('mbr', 'carol', '2024-01-06 00:00+00', 'NOSUCHCD');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.enroll('mbr', NULL, '2024-01-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.enroll('mbr', '', '2024-01-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.enroll('mbr', 'carol', 'infinity');
\echo :LAST_ERROR_SQLSTATE
-- Operations on an unknown member: LY002.
SELECT * FROM loyalty.earn(-1, 10, 'k1', '2024-01-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM loyalty.balance(-1, '2024-01-06 00:00+00');
\echo :LAST_ERROR_SQLSTATE

-- Nothing was written by the failed calls.
SELECT external_ref FROM loyalty.member
 WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'mbr')
 ORDER BY external_ref;
SELECT count(*) AS violations FROM loyalty.check_invariants();
