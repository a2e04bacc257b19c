-- 45_events: event awards with frequency limits at their edges in a non-UTC zone,
-- replays, signup at enroll, birthdays once a year (29 February), hostile input.
BEGIN;
SELECT plan(62);

SELECT loyalty.create_program('ev', 'Events', '{"timezone": "America/New_York"}');
SELECT loyalty.add_tier('ev', 'base', 'Base', 0);
SELECT ok(loyalty.define_event('ev', 'signup', 50, '{"per": "ever"}') > 0, 'define signup (once ever)');
SELECT ok(loyalty.define_event('ev', 'review', 10, '{"per": "day", "max": 2}') > 0, 'define review (2 per local day)');
SELECT ok(loyalty.define_event('ev', 'share', 5, '{"per": "week"}') > 0, 'define share (1 per ISO week, max defaults to 1)');
SELECT ok(loyalty.define_event('ev', 'survey', 7, '{"per": "month", "max": 1}') > 0, 'define survey (1 per month)');
SELECT ok(loyalty.define_event('ev', 'app_install', 3) > 0, 'define app_install (no limit)');
SELECT is(loyalty.define_event('ev', 'app_install', 4), loyalty.define_event('ev', 'app_install', 4),
          'redefining an event keeps its id');

-- signup fires at enrolment, once.
CREATE TEMP TABLE ids AS SELECT loyalty.enroll('ev', 'ann', '2026-03-01 09:00-05') AS ann;
SELECT is((SELECT available FROM loyalty.member WHERE id = (SELECT ann FROM ids)), 50::bigint,
          'signup paid 50 at enrolment');
SELECT is(loyalty.enroll('ev', 'ann', '2026-03-02 09:00-05'), (SELECT ann FROM ids), 'enroll again: same member');
SELECT is((SELECT count(*) FROM loyalty.entry WHERE member_id = (SELECT ann FROM ids)), 1::bigint,
          'enroll again: no second signup');
SELECT is((SELECT (awarded, used, points) FROM loyalty.record_event((SELECT ann FROM ids), 'signup', 'k-signup', '2026-03-05 10:00-05')),
          (false, 1, 0::bigint), 'signup again by hand: refused (once ever), 0 points');

-- review: 2 per local day in New York. The day of 2026-03-02 runs 05:00Z to 05:00Z next day.
SELECT is((SELECT (points, available, awarded, used, max_per_period, resets_at)
             FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv1', '2026-03-02 00:00:00-05')),
          (10::bigint, 60::bigint, true, 1, 2, '2026-03-03 05:00:00+00'::timestamptz), 'first review of the local day at 00:00: 10 points');
SELECT is((SELECT (points, awarded, used) FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv2', '2026-03-02 12:00-05')),
          (10::bigint, true, 2), 'second review: 10 points');
SELECT is((SELECT (points, available, awarded, used) FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv3', '2026-03-02 23:59:59.999999-05')),
          (0::bigint, 70::bigint, false, 2), 'third review at 23:59:59.999999 local: limit reached, 0 points');
SELECT is((SELECT (points, awarded, used, resets_at) FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv4', '2026-03-03 05:00:00+00')),
          (10::bigint, true, 1, '2026-03-04 05:00:00+00'::timestamptz), 'at local midnight (05:00Z) the count starts again');
SELECT is((SELECT (points, replayed, awarded, used, resets_at) FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv3', '2026-04-01 00:00-05')),
          (0::bigint, true, false, 2, '2026-03-03 05:00:00+00'::timestamptz), 'replay of the refused call: the same refusal, even on another day');
SELECT is((SELECT (points, replayed, available) FROM loyalty.record_event((SELECT ann FROM ids), 'review', 'rv1', '2026-03-02 00:00-05')),
          (10::bigint, true, 60::bigint), 'replay of a paid call: the original receipt');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), 'share', 'rv1', '2026-03-02 00:00-05')$$,
                 'LY020', NULL, 'the key of a review used for another event -> LY020');
SELECT throws_ok($$SELECT loyalty.award((SELECT ann FROM ids), 10, 'x', 'rv1', '2026-03-02 00:00-05')$$,
                 'LY020', NULL, 'the key of an event used for an award -> LY020');

-- share: 1 per ISO week (Monday 00:00 local). 2026-03-08 is a Sunday, and DST starts that
-- morning in New York, so the week of 2 March ends at Monday 2026-03-09 00:00 EDT = 04:00Z.
SELECT is((SELECT (points, resets_at) FROM loyalty.record_event((SELECT ann FROM ids), 'share', 'sh1', '2026-03-02 08:00-05')),
          (5::bigint, '2026-03-09 04:00:00+00'::timestamptz), 'share on Monday 2 March; the week resets Monday 9 March 00:00 EDT');
SELECT is((SELECT awarded FROM loyalty.record_event((SELECT ann FROM ids), 'share', 'sh2', '2026-03-09 03:59:59+00')),
          false, 'Sunday 23:59:59 EDT: same week, refused');
SELECT is((SELECT awarded FROM loyalty.record_event((SELECT ann FROM ids), 'share', 'sh3', '2026-03-09 04:00:00+00')),
          true, 'Monday 00:00 EDT: a new week, paid');
-- survey: 1 per calendar month, local: 31 March 23:30 EDT is still March.
SELECT is((SELECT awarded FROM loyalty.record_event((SELECT ann FROM ids), 'survey', 'sv1', '2026-03-31 23:30-04')), true, 'survey in March');
SELECT is((SELECT awarded FROM loyalty.record_event((SELECT ann FROM ids), 'survey', 'sv2', '2026-04-01 03:59:59+00')), false,
          '2026-04-01 03:59:59Z is 23:59:59 on 31 March in New York: refused');
SELECT is((SELECT awarded FROM loyalty.record_event((SELECT ann FROM ids), 'survey', 'sv3', '2026-04-01 04:00:00+00')), true,
          '1 April 00:00 EDT: paid');
-- no limit
SELECT is((SELECT sum(points) FROM (SELECT (loyalty.record_event((SELECT ann FROM ids), 'app_install', 'ai' || i, '2026-03-05 10:00-05')).points
                                      FROM generate_series(1, 3) i) x), 12::numeric, 'app_install without a limit: 3 x 4');
-- the entry says what happened
SELECT is((SELECT detail ->> 'refused' FROM loyalty.statement((SELECT ann FROM ids)) WHERE idempotency_key = 'rv3'),
          'limit_reached', 'statement shows the refused call as limit_reached');
-- 10 + 10 + 10 (reviews) + 5 + 5 (shares) + 7 + 7 (surveys) + 12 + 50 (signup) = 116
SELECT is((SELECT available FROM loyalty.balance((SELECT ann FROM ids), '2026-05-01')), 116::bigint, 'balance: 116 points');

-- hostile input: each with its SQLSTATE, nothing written
CREATE TEMP TABLE before AS SELECT count(*) AS n FROM loyalty.entry;
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), 'nosuch', 'h1', '2026-03-05 10:00-05')$$, 'LY130', NULL, 'unknown event -> LY130');
SELECT throws_ok($$SELECT loyalty.record_event(-1, 'review', 'h2', '2026-03-05 10:00-05')$$, 'LY002', NULL, 'unknown member -> LY002');
SELECT throws_ok($$SELECT loyalty.record_event(NULL, 'review', 'h3')$$, 'LY034', NULL, 'NULL member -> LY034');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), NULL, 'h4')$$, 'LY034', NULL, 'NULL event -> LY034');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), 'review', NULL)$$, 'LY021', NULL, 'NULL key -> LY021');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), 'review', 'h5', 'infinity')$$, 'LY033', NULL, 'infinite at -> LY033');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), 'review', 'h6', '294276-12-01 00:00+00')$$, 'LY033', NULL, 'at at the end of the calendar -> LY033');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT ann FROM ids), repeat('x', 100000), 'h7')$$, 'LY037', NULL, '100 000-byte event -> LY037');
SELECT throws_ok($$SELECT loyalty.define_event('ev', 'bad', 10, '{"per": "fortnight"}')$$, 'LY131', NULL, 'unknown period -> LY131');
SELECT throws_ok($$SELECT loyalty.define_event('ev', 'bad', 10, '{"per": "day", "max": 0}')$$, 'LY131', NULL, 'max 0 -> LY131');
SELECT throws_ok($$SELECT loyalty.define_event('ev', 'bad', 10, '{"per": "day", "every": 2}')$$, 'LY131', NULL, 'unknown key -> LY131');
SELECT throws_ok($$SELECT loyalty.define_event('ev', 'bad', 10, '[1]')$$, 'LY035', NULL, 'frequency not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.define_event('ev', 'bad', 0)$$, 'LY032', NULL, '0 points -> LY032');
SELECT throws_ok($$SELECT loyalty.define_event('nosuch', 'bad', 1)$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.define_event('ev', '', 1)$$, 'LY037', NULL, 'empty event -> LY037');
SELECT is((SELECT count(*) FROM loyalty.entry) - (SELECT n FROM before), 0::bigint, 'hostile calls wrote nothing');

-- Birthdays: Europe/Berlin, 30 points once a year, paid by run_maintenance at 00:00 local.
SELECT loyalty.create_program('bd', 'Birthdays', '{"timezone": "Europe/Berlin"}');
SELECT loyalty.add_tier('bd', 'base', 'Base', 0);
SELECT loyalty.define_event('bd', 'birthday', 30, '{"per": "year"}');
INSERT INTO ids (ann) SELECT loyalty.enroll('bd', 'leap', '2027-01-01 10:00+01');
CREATE TEMP TABLE bd AS SELECT loyalty.member_id('bd', 'leap') AS leap, loyalty.enroll('bd', 'june', '2027-01-01 10:00+01') AS june;
SELECT lives_ok($$SELECT loyalty.set_birthday((SELECT leap FROM bd), '2000-02-29', '2027-01-10 12:00+01')$$, 'set a 29 February birthday');
SELECT lives_ok($$SELECT loyalty.set_birthday((SELECT june FROM bd), '1990-06-15', '2027-01-10 12:00+01')$$, 'set a 15 June birthday');
SELECT is((SELECT next_at FROM loyalty.member_birthday WHERE member_id = (SELECT leap FROM bd)),
          '2027-02-28 00:00+01'::timestamptz, 'in 2027 (not a leap year) 29 February is celebrated on 28 February, 00:00 Berlin');
SELECT is(loyalty.run_maintenance('2027-02-27 22:59:59+00') ->> 'birthdays', NULL, 'one second before: no birthday due');
SELECT is(loyalty.run_maintenance('2027-02-27 23:00:00+00') ->> 'birthdays', '1', 'at 00:00 Berlin: one birthday');
SELECT is((SELECT (points, at, idempotency_key) FROM loyalty.statement((SELECT leap FROM bd)) WHERE kind = 'award'),
          (30::bigint, '2027-02-27 23:00:00+00'::timestamptz, 'loyalty:birthday:2027'::text), '30 points dated at the birthday, keyed by the year');
SELECT is(loyalty.run_maintenance('2027-02-28 12:00:00+00') ->> 'birthdays', NULL, 'maintenance again: nothing more');
SELECT is((SELECT next_at FROM loyalty.member_birthday WHERE member_id = (SELECT leap FROM bd)),
          '2028-02-29 00:00+01'::timestamptz, 'next: 29 February 2028, a leap year');
-- moving the birth date to a later day of the same year cannot pay 2027 twice
SELECT lives_ok($$SELECT loyalty.set_birthday((SELECT leap FROM bd), '2000-03-05', '2027-03-01 12:00+01')$$, 'birth date corrected to 5 March');
SELECT is(loyalty.run_maintenance('2027-03-05 12:00+01') ->> 'birthdays', '1', 'the corrected birthday is handled...');
SELECT is((SELECT available FROM loyalty.member WHERE id = (SELECT leap FROM bd)), 30::bigint, '...but 2027 was paid already: still 30');
SELECT throws_ok($$SELECT loyalty.set_birthday((SELECT june FROM bd), '2030-01-01', '2027-01-10 12:00+01')$$, 'LY139', NULL, 'birth date in the future -> LY139');
SELECT throws_ok($$SELECT loyalty.set_birthday((SELECT june FROM bd), '1899-12-31', '2027-01-10 12:00+01')$$, 'LY139', NULL, 'birth date before 1900 -> LY139');
SELECT throws_ok($$SELECT loyalty.set_birthday((SELECT june FROM bd), NULL, '2027-01-10 12:00+01')$$, 'LY034', NULL, 'NULL birth date -> LY034');
SELECT throws_ok($$SELECT loyalty.set_birthday(-1, '1990-01-01', '2027-01-10 12:00+01')$$, 'LY002', NULL, 'unknown member -> LY002');
SELECT is(loyalty.anonymise_member((SELECT june FROM bd), 'erasure request'), true, 'anonymise a member with a birth date');
SELECT is((SELECT count(*) FROM loyalty.member_birthday WHERE member_id = (SELECT june FROM bd)), 0::bigint,
          'anonymising erases the birth date');
SELECT throws_ok($$SELECT loyalty.record_event((SELECT june FROM bd), 'review', 'x-prog', '2027-01-10 12:00+01')$$, 'LY130', NULL,
                 'an event of another program -> LY130');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
