-- setup.sql: :n members of program "sched" (rolling 12-month expiry), each with a lot of
-- i points that expired a month ago (due for maintenance) and a lot of 5 points that is
-- not due yet. Maintenance must expire exactly n(n+1)/2 points and leave 5n available.
\set ON_ERROR_STOP 1
SELECT loyalty.create_program('sched', 'Scheduling', '{"expiry": {"policy": "rolling", "months": 12}}');
SELECT loyalty.add_tier('sched', 'base', 'Base', 0);
SELECT count(loyalty.enroll('sched', 'm' || i, now() - interval '14 months')) FROM generate_series(1, :n) AS i;
SELECT count(loyalty.award(loyalty.member_id('sched', 'm' || i), i, 'start', 'a1', now() - interval '13 months'))
  FROM generate_series(1, :n) AS i;
SELECT count(loyalty.award(loyalty.member_id('sched', 'm' || i), 5, 'recent', 'a2', now() - interval '2 months'))
  FROM generate_series(1, :n) AS i;
