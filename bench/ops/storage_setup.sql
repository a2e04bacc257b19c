-- bench/ops/storage_setup.sql: the storage case's own database: the program and
-- :members members of setup.sql, with no lots or entries yet, and the floor's tables
-- empty. The case compares what the same earns add on both sides to freshly created
-- relations: sizes measured on tables that earlier cases had filled moved with the
-- free space those left behind.
SELECT loyalty.create_program('bench', 'Bench', '{"expiry": {"policy": "rolling", "months": 12}}');
SELECT loyalty.add_tier('bench', 'base', 'Base', 0);
SELECT loyalty.add_tier('bench', 'gold', 'Gold', 1000000000, 2);
-- ANALYZE after a few: see setup.sql
SELECT count(loyalty.enroll('bench', 'm' || g, '2026-01-01')) FROM generate_series(1, least(:members, 200)) g;
ANALYZE loyalty.member;
SELECT count(loyalty.enroll('bench', 'm' || g, '2026-01-01')) FROM generate_series(201, :members) g;
\ir floor_tables.sql
INSERT INTO floor_member SELECT g, 0 FROM generate_series(1, :members) g;
VACUUM ANALYZE;
