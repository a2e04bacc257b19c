-- 01_programs: create_program settings (valid values, defaults, every kind of
-- bad input) and add_tier.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(89);

-- ---------------------------------------------------------------------------
-- Defaults: '{}' is normalised to a settings object with every key present.
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.create_program('tap01_def', 'Defaults') > 0,
          'create_program with default settings returns an id');

SELECT is((SELECT array_agg(k ORDER BY k)
             FROM loyalty.program p, jsonb_object_keys(p.settings) k
            WHERE p.code = 'tap01_def'),
          ARRAY['cost_per_point', 'downgrade', 'expiry', 'grace_days', 'negative_balance', 'pending_days',
                'points_per_unit', 'rounding', 'tier_basis', 'tier_retention_periods', 'tier_window',
                'timezone', 'voucher_refund_expiry'],
          'defaults: program.settings holds every key');

-- Defaults from the contract: 1, floor, UTC, 0, none, allow, points,
-- {"rolling_months": 12}, period_end, 0.
SELECT is((SELECT (settings->'points_per_unit' = '1'::jsonb,
                   settings->>'rounding',
                   settings->>'timezone',
                   settings->'pending_days' = '0'::jsonb,
                   settings->'expiry'->>'policy',
                   settings->>'negative_balance',
                   settings->>'tier_basis',
                   (settings->'tier_window'->'rolling_months') = '12'::jsonb,
                   settings->>'downgrade',
                   settings->'grace_days' = '0'::jsonb)::text
             FROM loyalty.program WHERE code = 'tap01_def'),
          '(t,floor,UTC,t,none,allow,points,t,period_end,t)',
          'defaults: settings values are the documented defaults');

SELECT is((SELECT (points_per_unit = 1, rounding, timezone, pending_days, expiry_policy,
                   negative_balance, tier_basis, tier_window, tier_window_months,
                   downgrade, grace_days)::text
             FROM loyalty.program WHERE code = 'tap01_def'),
          '(t,floor,UTC,0,none,allow,points,rolling,12,period_end,0)',
          'defaults: typed columns match');

SELECT is((SELECT name FROM loyalty.program WHERE code = 'tap01_def'), 'Defaults',
          'program name stored');

-- ---------------------------------------------------------------------------
-- Every setting given at once.
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.create_program('tap01_full', 'Full', '{
    "points_per_unit": 2.5, "rounding": "ceil", "timezone": "Europe/Berlin",
    "pending_days": 14,
    "expiry": {"policy": "end_of_period", "months": 12, "period": "quarter"},
    "negative_balance": "clamp", "tier_basis": "spend", "tier_window": "calendar_year",
    "downgrade": "one_step", "grace_days": 30}')$$,
    'create_program with every setting');

SELECT is((SELECT (points_per_unit = 2.5, rounding, timezone, pending_days, expiry_policy,
                   expiry_months, expiry_period, negative_balance, tier_basis, tier_window,
                   downgrade, grace_days)::text
             FROM loyalty.program WHERE code = 'tap01_full'),
          '(t,ceil,Europe/Berlin,14,end_of_period,12,quarter,clamp,spend,calendar_year,one_step,30)',
          'full: typed columns');

SELECT is((SELECT (settings->'points_per_unit' = '2.5'::jsonb,
                   settings->>'rounding', settings->>'timezone',
                   settings->'pending_days' = '14'::jsonb,
                   settings->'expiry'->>'policy',
                   settings->'expiry'->'months' = '12'::jsonb,
                   settings->'expiry'->>'period',
                   settings->>'negative_balance', settings->>'tier_basis',
                   settings->>'tier_window', settings->>'downgrade',
                   settings->'grace_days' = '30'::jsonb)::text
             FROM loyalty.program WHERE code = 'tap01_full'),
          '(t,ceil,Europe/Berlin,t,end_of_period,t,quarter,clamp,spend,calendar_year,one_step,t)',
          'full: program.settings echoes the given values');

-- ---------------------------------------------------------------------------
-- Each key, each valid value.
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.create_program('tap01_rnd_' || v, 'r', jsonb_build_object('rounding', v))
                    FROM unnest(ARRAY['floor', 'round', 'ceil']) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'rounding accepts floor, round, ceil');
SELECT results_eq($$SELECT rounding FROM loyalty.program WHERE code LIKE 'tap01\_rnd\_%' ORDER BY id$$,
                  ARRAY['floor', 'round', 'ceil'], 'rounding values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_neg_' || v, 'n', jsonb_build_object('negative_balance', v))
                    FROM unnest(ARRAY['deny', 'allow', 'clamp']) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'negative_balance accepts deny, allow, clamp');
SELECT results_eq($$SELECT negative_balance FROM loyalty.program WHERE code LIKE 'tap01\_neg\_%' ORDER BY id$$,
                  ARRAY['deny', 'allow', 'clamp'], 'negative_balance values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_bas_' || v, 'b', jsonb_build_object('tier_basis', v))
                    FROM unnest(ARRAY['points', 'spend', 'visits']) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'tier_basis accepts points, spend, visits');
SELECT results_eq($$SELECT tier_basis FROM loyalty.program WHERE code LIKE 'tap01\_bas\_%' ORDER BY id$$,
                  ARRAY['points', 'spend', 'visits'], 'tier_basis values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_dg_' || v, 'd', jsonb_build_object('downgrade', v))
                    FROM unnest(ARRAY['never', 'period_end', 'one_step']) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'downgrade accepts never, period_end, one_step');
SELECT results_eq($$SELECT downgrade FROM loyalty.program WHERE code LIKE 'tap01\_dg\_%' ORDER BY id$$,
                  ARRAY['never', 'period_end', 'one_step'], 'downgrade values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_tw_' || o, 't', jsonb_build_object('tier_window', v::jsonb))
                    FROM unnest(ARRAY['"lifetime"', '"calendar_year"', '{"rolling_months": 6}'])
                         WITH ORDINALITY u(v, o) ORDER BY o$$,
                'tier_window accepts lifetime, calendar_year, {"rolling_months": N}');
SELECT results_eq($$SELECT tier_window || ':' || CASE WHEN tier_window = 'rolling'
                                                     THEN tier_window_months::text ELSE '-' END
                      FROM loyalty.program WHERE code LIKE 'tap01\_tw\_%' ORDER BY id$$,
                  ARRAY['lifetime:-', 'calendar_year:-', 'rolling:6'], 'tier_window values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_tz_' || o, 'z', jsonb_build_object('timezone', v))
                    FROM unnest(ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'])
                         WITH ORDINALITY u(v, o) ORDER BY o$$,
                'timezone accepts IANA names');
SELECT results_eq($$SELECT timezone FROM loyalty.program WHERE code LIKE 'tap01\_tz\_%' ORDER BY id$$,
                  ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'], 'timezone values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_pd_' || o, 'p',
                         jsonb_build_object('pending_days', v, 'grace_days', v * 2))
                    FROM unnest(ARRAY[0, 30]) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'pending_days and grace_days accept 0 and positive integers');
SELECT results_eq($$SELECT pending_days || '/' || grace_days FROM loyalty.program
                     WHERE code LIKE 'tap01\_pd\_%' ORDER BY id$$,
                  ARRAY['0/0', '30/60'], 'pending_days and grace_days stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_ppu_' || o, 'u', jsonb_build_object('points_per_unit', v))
                    FROM unnest(ARRAY[0.01, 1, 10]) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'points_per_unit accepts positive numbers');
SELECT results_eq($$SELECT points_per_unit FROM loyalty.program WHERE code LIKE 'tap01\_ppu\_%' ORDER BY id$$,
                  ARRAY[0.01, 1, 10]::numeric[], 'points_per_unit values stored');

SELECT lives_ok($$SELECT loyalty.create_program('tap01_exp_' || o, 'e', jsonb_build_object('expiry', v::jsonb))
                    FROM unnest(ARRAY[
                        '{"policy": "none"}',
                        '{"policy": "rolling", "months": 12}',
                        '{"policy": "end_of_period", "months": 1, "period": "month"}',
                        '{"policy": "end_of_period", "months": 3, "period": "quarter"}',
                        '{"policy": "end_of_period", "months": 12, "period": "year"}',
                        '{"policy": "inactivity", "months": 18}']) WITH ORDINALITY u(v, o) ORDER BY o$$,
                'expiry accepts none, rolling, end_of_period (month, quarter, year), inactivity');
SELECT results_eq($$SELECT expiry_policy
                           || CASE WHEN expiry_policy <> 'none' THEN ':' || expiry_months ELSE '' END
                           || CASE WHEN expiry_policy = 'end_of_period' THEN ':' || expiry_period ELSE '' END
                      FROM loyalty.program WHERE code LIKE 'tap01\_exp\_%' ORDER BY id$$,
                  ARRAY['none', 'rolling:12', 'end_of_period:1:month', 'end_of_period:3:quarter',
                        'end_of_period:12:year', 'inactivity:18'],
                  'expiry values stored');
SELECT is((SELECT settings->'expiry'->>'policy' || ':' || (settings->'expiry'->>'months')
             FROM loyalty.program WHERE code = 'tap01_exp_2'),
          'rolling:12', 'expiry object kept in program.settings');

-- ---------------------------------------------------------------------------
-- Invalid settings: LY030, nothing created.
-- ---------------------------------------------------------------------------
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"foo": 1}')$$,
                 'LY030', NULL, 'unknown key -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"points_per_unit": "2"}')$$,
                 'LY030', NULL, 'points_per_unit as a string -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"points_per_unit": 0}')$$,
                 'LY030', NULL, 'points_per_unit 0 -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"points_per_unit": -1}')$$,
                 'LY030', NULL, 'points_per_unit negative -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"rounding": "up"}')$$,
                 'LY030', NULL, 'rounding unknown value -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"rounding": 1}')$$,
                 'LY030', NULL, 'rounding as a number -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"timezone": "Mars/Olympus_Mons"}')$$,
                 'LY030', NULL, 'unknown time zone -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"timezone": 1}')$$,
                 'LY030', NULL, 'timezone as a number -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"pending_days": -1}')$$,
                 'LY030', NULL, 'pending_days negative -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"pending_days": 1.5}')$$,
                 'LY030', NULL, 'pending_days not an integer -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"pending_days": "3"}')$$,
                 'LY030', NULL, 'pending_days as a string -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"pending_days": 10000000000}')$$,
                 'LY030', NULL, 'pending_days beyond int range -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"grace_days": -1}')$$,
                 'LY030', NULL, 'grace_days negative -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"grace_days": true}')$$,
                 'LY030', NULL, 'grace_days as a boolean -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "rolling"}}')$$,
                 'LY030', NULL, 'expiry rolling without months -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "inactivity"}}')$$,
                 'LY030', NULL, 'expiry inactivity without months -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "forever", "months": 3}}')$$,
                 'LY030', NULL, 'expiry unknown policy -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"months": 12}}')$$,
                 'LY030', NULL, 'expiry without policy -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "rolling", "months": 12, "grace": 1}}')$$,
                 'LY030', NULL, 'expiry unknown nested key -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "rolling", "months": -1}}')$$,
                 'LY030', NULL, 'expiry negative months -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "rolling", "months": "12"}}')$$,
                 'LY030', NULL, 'expiry months as a string -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "end_of_period", "months": 1, "period": "week"}}')$$,
                 'LY030', NULL, 'expiry unknown period -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": 12}')$$,
                 'LY030', NULL, 'expiry as a number -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"negative_balance": "maybe"}')$$,
                 'LY030', NULL, 'negative_balance unknown value -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_basis": "age"}')$$,
                 'LY030', NULL, 'tier_basis unknown value -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_window": "weekly"}')$$,
                 'LY030', NULL, 'tier_window unknown value -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_window": {"rolling_months": -1}}')$$,
                 'LY030', NULL, 'tier_window negative rolling_months -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_window": {"rolling_months": "12"}}')$$,
                 'LY030', NULL, 'tier_window rolling_months as a string -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_window": {"months": 12}}')$$,
                 'LY030', NULL, 'tier_window unknown nested key -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"tier_window": 12}')$$,
                 'LY030', NULL, 'tier_window as a number -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"downgrade": "always"}')$$,
                 'LY030', NULL, 'downgrade unknown value -> LY030');

SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '{"expiry": {"policy": "end_of_period", "months": 1}}')$$,
                 'LY030', NULL, 'expiry end_of_period without period -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', '[]')$$,
                 'LY030', NULL, 'settings not an object -> LY030');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', 'x', NULL)$$,
                 'LY034', NULL, 'NULL settings -> LY034');
SELECT throws_ok($$SELECT loyalty.create_program(NULL, 'x', '{}')$$,
                 'LY034', NULL, 'NULL code -> LY034');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', NULL, '{}')$$,
                 'LY034', NULL, 'NULL name -> LY034');
SELECT throws_ok($$SELECT loyalty.create_program('', 'x', '{}')$$,
                 'LY037', NULL, 'empty code -> LY037');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_bad', '', '{}')$$,
                 'LY037', NULL, 'empty name -> LY037');
SELECT throws_ok($$SELECT loyalty.create_program('tap01_def', 'Again', '{}')$$,
                 'LY041', NULL, 'duplicate program code -> LY041');

SELECT is((SELECT count(*) FROM loyalty.program WHERE code = 'tap01_bad' OR name = 'Again'), 0::bigint,
          'no failed create_program left a row behind');

-- ---------------------------------------------------------------------------
-- add_tier
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.create_program('tap01_t', 'Tiers')$$, 'program for tiers');
SELECT ok(loyalty.add_tier('tap01_t', 'base', 'Base', 0) > 0, 'add_tier base (threshold 0) returns an id');
SELECT ok(loyalty.add_tier('tap01_t', 'silver', 'Silver', 100, 1.5, '{"lounge": false}') > 0,
          'add_tier silver with multiplier and benefits');

SELECT is((SELECT (t.name, threshold = 0, earn_multiplier = 1, benefits = '{}'::jsonb)::text
             FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
            WHERE p.code = 'tap01_t' AND t.code = 'base'),
          '(Base,t,t,t)', 'base tier: defaults multiplier 1 and benefits {}');
SELECT is((SELECT (t.name, threshold = 100, earn_multiplier = 1.5, benefits = '{"lounge": false}'::jsonb)::text
             FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
            WHERE p.code = 'tap01_t' AND t.code = 'silver'),
          '(Silver,t,t,t)', 'silver tier stored as given');

SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'silver', 'Silver again', 200)$$,
                 'LY041', NULL, 'duplicate tier code -> LY041');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 100.0)$$,
                 'LY041', NULL, 'duplicate threshold (100.0 = 100) -> LY041');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', -1)$$,
                 'LY042', NULL, 'negative threshold -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 'NaN')$$,
                 'LY042', NULL, 'NaN threshold -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 'Infinity')$$,
                 'LY042', NULL, 'infinite threshold -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, 0)$$,
                 'LY042', NULL, 'multiplier 0 -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, -2)$$,
                 'LY042', NULL, 'negative multiplier -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, 'NaN')$$,
                 'LY042', NULL, 'NaN multiplier -> LY042');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, 2, '[1, 2]')$$,
                 'LY035', NULL, 'benefits an array -> LY035');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, 2, '"lounge"')$$,
                 'LY035', NULL, 'benefits a string -> LY035');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_nope', 'gold', 'Gold', 500)$$,
                 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', 'gold', 'Gold', NULL)$$,
                 'LY034', NULL, 'NULL threshold -> LY034');
SELECT throws_ok($$SELECT loyalty.add_tier('tap01_t', '', 'Gold', 500)$$,
                 'LY037', NULL, 'empty tier code -> LY037');

SELECT is((SELECT string_agg(t.code, ',' ORDER BY t.threshold)
             FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
            WHERE p.code = 'tap01_t'),
          'base,silver', 'failed add_tier calls added nothing');

SELECT ok(loyalty.add_tier('tap01_t', 'gold', 'Gold', 500, 2, '{"lounge": true}') > 0,
          'add_tier gold after the failures');
SELECT lives_ok($$SELECT loyalty.add_tier('tap01_def', 'silver', 'Silver', 100)$$,
                'the same tier code in another program is allowed');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
