-- expiry: when lots become available and when they expire, in the program's
-- time zone; balance() applies both as of the time asked, maintenance or not.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

SELECT loyalty.create_program('exp_roll', 'Rolling, Paris',
       '{"timezone": "Europe/Paris", "expiry": {"policy": "rolling", "months": 1}}') IS NOT NULL AS created;
SELECT loyalty.create_program('exp_month', 'End of month, New York',
       '{"timezone": "America/New_York", "expiry": {"policy": "end_of_period", "months": 1, "period": "month"}}') IS NOT NULL AS created;
SELECT loyalty.create_program('exp_quarter', 'End of quarter, New York',
       '{"timezone": "America/New_York", "expiry": {"policy": "end_of_period", "months": 3, "period": "quarter"}}') IS NOT NULL AS created;
SELECT loyalty.create_program('exp_year', 'End of year, New York',
       '{"timezone": "America/New_York", "expiry": {"policy": "end_of_period", "months": 12, "period": "year"}}') IS NOT NULL AS created;
SELECT loyalty.create_program('exp_idle', 'Inactivity',
       '{"expiry": {"policy": "inactivity", "months": 6}}') IS NOT NULL AS created;
SELECT loyalty.create_program('exp_pend', 'Pending, Paris',
       '{"timezone": "Europe/Paris", "pending_days": 3, "expiry": {"policy": "rolling", "months": 1}}') IS NOT NULL AS created;
SELECT loyalty.add_tier(p, 'base', 'Base', 0) IS NOT NULL AS added
  FROM unnest(ARRAY['exp_roll', 'exp_month', 'exp_quarter', 'exp_year', 'exp_idle', 'exp_pend']) AS p;

-- rolling, 1 month: earned 2024-01-31 10:00 Paris, the day is clamped to
-- the end of February: expires 2024-02-29 10:00 Paris (09:00 UTC).
SELECT loyalty.enroll('exp_roll', 'jan', '2024-01-01 00:00+00') AS jan \gset
SELECT points, available FROM loyalty.earn(:jan, 100, 'p1', '2024-01-31 10:00+01');
SELECT available, expired, next_expiry, next_expiry_points FROM loyalty.balance(:jan, '2024-02-29 08:59:59+00');
SELECT available, expired, next_expiry, next_expiry_points FROM loyalty.balance(:jan, '2024-02-29 09:00:00+00');
-- An operation after the expiry sees it without maintenance: the redeem
-- fails (LY010), the next earn writes the expire entry, dated at the expiry.
SELECT * FROM loyalty.redeem(:jan, 50, 'r1', '2024-03-01 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT points, available FROM loyalty.earn(:jan, 5, 'p2', '2024-03-01 00:00+00');
SELECT at, kind, points FROM loyalty.statement(:jan);
SELECT available, lifetime_earned, expired FROM loyalty.balance(:jan, '2024-03-02 00:00+00');

-- rolling across the change to summer time: 2024-03-15 12:00 Paris (11:00
-- UTC) expires 2024-04-15 12:00 Paris (10:00 UTC).
SELECT loyalty.enroll('exp_roll', 'mar', '2024-01-01 00:00+00') AS mar \gset
SELECT points, available FROM loyalty.earn(:mar, 10, 'p1', '2024-03-15 12:00+01');
SELECT available, expired, next_expiry FROM loyalty.balance(:mar, '2024-04-15 09:59:59+00');
SELECT available, expired, next_expiry FROM loyalty.balance(:mar, '2024-04-15 10:00:00+00');

-- end_of_period: 2024-01-15 + 1 month = 2024-02-15, so the lot lasts to the
-- end of February in New York and expires 2024-03-01 00:00 EST (05:00 UTC).
SELECT loyalty.enroll('exp_month', 'feb', '2024-01-01 00:00+00') AS feb \gset
SELECT points, available FROM loyalty.earn(:feb, 10, 'p1', '2024-01-15 12:00-05');
SELECT available, expired, next_expiry FROM loyalty.balance(:feb, '2024-03-01 04:59:59+00');
SELECT available, expired, next_expiry FROM loyalty.balance(:feb, '2024-03-01 05:00:00+00');
-- quarter: 2024-02-10 + 3 months = 2024-05-10, end of Q2: 2024-07-01 00:00 EDT.
SELECT loyalty.enroll('exp_quarter', 'q', '2024-01-01 00:00+00') AS q \gset
SELECT points, available FROM loyalty.earn(:q, 10, 'p1', '2024-02-10 12:00-05');
SELECT available, next_expiry, next_expiry_points FROM loyalty.balance(:q, '2024-06-30 00:00+00');
-- year: 2024-06-10 + 12 months = 2025-06-10, end of 2025: 2026-01-01 00:00 EST.
SELECT loyalty.enroll('exp_year', 'y', '2024-01-01 00:00+00') AS y \gset
SELECT points, available FROM loyalty.earn(:y, 10, 'p1', '2024-06-10 12:00-04');
SELECT available, next_expiry, next_expiry_points FROM loyalty.balance(:y, '2025-12-31 00:00+00');

-- inactivity, 6 months: everything expires 6 months after the last earn,
-- award or redeem.
SELECT loyalty.enroll('exp_idle', 'ida', '2024-01-01 00:00+00') AS ida \gset
SELECT points, available FROM loyalty.earn(:ida, 10, 'p1', '2024-01-10 10:00+00');
SELECT points, available FROM loyalty.earn(:ida, 20, 'p2', '2024-03-01 10:00+00');
SELECT available, next_expiry, next_expiry_points FROM loyalty.balance(:ida, '2024-05-31 00:00+00');
-- The redeem on 2024-06-01 12:00 pushes it to 2024-12-01 12:00.
SELECT points, available FROM loyalty.redeem(:ida, 5, 'r1', '2024-06-01 12:00+00');
SELECT available, expired, next_expiry, next_expiry_points FROM loyalty.balance(:ida, '2024-09-01 10:00+00');
SELECT available, expired FROM loyalty.balance(:ida, '2024-12-01 11:59:59+00');
SELECT available, expired FROM loyalty.balance(:ida, '2024-12-01 12:00:00+00');

-- pending_days counts local calendar days: earned 2024-03-29 12:00 Paris
-- (11:00 UTC), available 2024-04-01 12:00 Paris (10:00 UTC, summer time),
-- and the rolling month runs from then: expires 2024-05-01 10:00 UTC.
SELECT loyalty.enroll('exp_pend', 'pia', '2024-01-01 00:00+00') AS pia \gset
SELECT points, available, pending FROM loyalty.earn(:pia, 10, 'p1', '2024-03-29 12:00+01');
SELECT available, pending, next_expiry FROM loyalty.balance(:pia, '2024-04-01 09:59:59+00');
SELECT available, pending, next_expiry FROM loyalty.balance(:pia, '2024-04-01 10:00:00+00');
-- Pending points cannot be spent.
SELECT * FROM loyalty.redeem(:pia, 1, 'r1', '2024-03-30 00:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT available, pending, expired FROM loyalty.balance(:pia, '2024-05-01 09:59:59+00');
SELECT available, pending, expired FROM loyalty.balance(:pia, '2024-05-01 10:00:00+00');

-- The session's time zone changes how times print, not what they mean.
SET timezone = 'Pacific/Auckland';
SELECT available, expired, next_expiry = '2024-02-29 09:00:00+00' AS same_instant
  FROM loyalty.balance(:jan, '2024-02-29 08:59:59+00');
SELECT available, expired FROM loyalty.balance(:feb, '2024-03-01 05:00:00+00');
-- An earn made from this session still uses New York's calendar.
SELECT loyalty.enroll('exp_month', 'feb2', '2024-01-01 00:00+00') AS feb2 \gset
SELECT points, available FROM loyalty.earn(:feb2, 10, 'p1', '2024-01-15 12:00-05');
SELECT next_expiry = '2024-03-01 05:00:00+00' AS same_expiry
  FROM loyalty.balance(:feb2, '2024-03-01 04:59:59+00');
RESET timezone;

SELECT count(*) AS violations FROM loyalty.check_invariants();
