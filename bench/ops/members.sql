-- bench/ops/members.sql: the program and :members members the pgbench cases use
-- (included by setup.sql and storage_setup.sql).
SELECT loyalty.create_program('bench', 'Bench', '{"expiry": {"policy": "rolling", "months": 12}}');
SELECT loyalty.add_tier('bench', 'base', 'Base', 0);
SELECT loyalty.add_tier('bench', 'gold', 'Gold', 1000000000, 2);
-- Enroll a few, ANALYZE, then the rest: on a never-analysed member table enroll's
-- cached lookup by external_ref plans onto the (program_id, referral_code) index and
-- a bulk enroll in one statement goes quadratic (reported; see README Performance).
SELECT count(loyalty.enroll('bench', 'm' || g, '2026-01-01')) FROM generate_series(1, least(:members, 200)) g;
ANALYZE loyalty.member;
SELECT count(loyalty.enroll('bench', 'm' || g, '2026-01-01')) FROM generate_series(201, :members) g;
