-- bench/bulk/setup.sql: the bulk cases' data, with psql variables
--   :bulk_members members and :bulk purchases (bulk earn, then expiry of their lots),
--   :tier_members members promoted in 2025 (tier re-evaluation).
-- Business times are fixed so that every run does the same work: purchases on
-- 2025-01-01..28, lots expire 12 months later, maintenance runs as of 2026-03-01.

SELECT loyalty.create_program('bulk', 'Bulk', '{"expiry": {"policy": "rolling", "months": 12}, "timezone": "UTC"}');
SELECT loyalty.add_tier('bulk', 'base', 'Base', 0);
CREATE TABLE bench_bulk_member (n int PRIMARY KEY, id bigint NOT NULL);
ANALYZE loyalty.member;   -- see bench/ops/setup.sql: keeps enroll's lookup on its index
INSERT INTO bench_bulk_member
SELECT g, loyalty.enroll('bulk', 'b' || g, '2024-01-01') FROM generate_series(1, least(:bulk_members, 200)) g;
ANALYZE loyalty.member;
INSERT INTO bench_bulk_member
SELECT g, loyalty.enroll('bulk', 'b' || g, '2024-01-01') FROM generate_series(201, :bulk_members) g;

-- The purchases, as a shop would stage them: earn_batch reads this table.
CREATE TABLE bench_staging (member bigint, amount numeric, idempotency_key text, at timestamptz);
INSERT INTO bench_staging
SELECT m.id, 10 + g % 50, 'p' || g, '2025-01-01'::timestamptz + (g % 28) * interval '1 day' + (g % 1000) * interval '1 second'
  FROM generate_series(1, :bulk) g
  JOIN bench_bulk_member m ON m.n = 1 + g % :bulk_members;

-- The floor: the least any implementation must write for the same purchases.
CREATE TABLE fb_member (id bigint PRIMARY KEY, available bigint NOT NULL DEFAULT 0) WITH (fillfactor = 80);
CREATE TABLE fb_entry (member_id bigint, id bigserial, points bigint, at timestamptz, key text,
                       PRIMARY KEY (member_id, id), UNIQUE (member_id, key));
CREATE TABLE fb_lot (member_id bigint, id bigserial, entry_id bigint, points bigint, remaining bigint,
                     expires_at timestamptz, PRIMARY KEY (member_id, id)) WITH (fillfactor = 90);
CREATE INDEX fb_lot_due ON fb_lot (expires_at) WHERE remaining > 0;
INSERT INTO fb_member SELECT id FROM bench_bulk_member;

-- Tier re-evaluation: members promoted to silver by one purchase in 2025, spend
-- basis, calendar-year window, downgrade at period end: as of 2027-01-02 they
-- are reviewed (2025 keeps silver, 2026 drops them to base).
SELECT loyalty.create_program('tiers', 'Tiers', '{"tier_basis": "spend", "tier_window": "calendar_year", "downgrade": "period_end", "expiry": {"policy": "none"}, "timezone": "UTC"}');
SELECT loyalty.add_tier('tiers', 'base', 'Base', 0);
SELECT loyalty.add_tier('tiers', 'silver', 'Silver', 100);
CREATE TABLE bench_tier_staging (member bigint, amount numeric, idempotency_key text, at timestamptz);
INSERT INTO bench_tier_staging
SELECT loyalty.enroll('tiers', 't' || g, '2024-01-01'), 150, 't' || g, '2025-06-01'
  FROM generate_series(1, least(:tier_members, 200)) g;
ANALYZE loyalty.member;
INSERT INTO bench_tier_staging
SELECT loyalty.enroll('tiers', 't' || g, '2024-01-01'), 150, 't' || g, '2025-06-01'
  FROM generate_series(201, :tier_members) g;

CREATE TABLE fb_tmember (id bigint PRIMARY KEY, tier int NOT NULL DEFAULT 1) WITH (fillfactor = 80);
CREATE TABLE fb_tentry (member_id bigint, amount numeric, at timestamptz);
INSERT INTO fb_tmember SELECT member FROM bench_tier_staging;
INSERT INTO fb_tentry SELECT member, amount, at FROM bench_tier_staging;
CREATE INDEX ON fb_tentry (member_id, at);
VACUUM ANALYZE;
