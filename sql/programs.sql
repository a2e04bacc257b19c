-- programs: create_program validates its settings; add_tier its tiers.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- Defaults: every setting is filled in.
SELECT loyalty.create_program('prg_default', 'Defaults') IS NOT NULL AS created;
SELECT jsonb_pretty(settings) FROM loyalty.program WHERE code = 'prg_default';

-- Every setting given.
SELECT loyalty.create_program('prg_full', 'Everything set', '{
  "points_per_unit": 2.5, "rounding": "round", "timezone": "Europe/Paris",
  "pending_days": 14,
  "expiry": {"policy": "end_of_period", "months": 12, "period": "quarter"},
  "negative_balance": "deny", "tier_basis": "spend",
  "tier_window": "calendar_year", "downgrade": "one_step", "grace_days": 30}') IS NOT NULL AS created;
SELECT points_per_unit, rounding, timezone, pending_days, expiry_policy, expiry_months,
       expiry_period, negative_balance, tier_basis, tier_window, tier_window_months,
       downgrade, grace_days
  FROM loyalty.program WHERE code = 'prg_full';
SELECT loyalty.create_program('prg_rolling', 'Rolling window',
       '{"tier_window": {"rolling_months": 6}, "expiry": {"policy": "inactivity", "months": 18}}') IS NOT NULL AS created;
SELECT tier_window, tier_window_months, expiry_policy, expiry_months
  FROM loyalty.program WHERE code = 'prg_rolling';

-- Errors: duplicate code (LY041), bad settings (LY030), NULL settings (LY034),
-- empty code (LY037).
SELECT loyalty.create_program('prg_default', 'Again');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"points_per_unit": 1, "colour": "red"}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"points_per_unit": "ten"}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"points_per_unit": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"pending_days": -1}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"rounding": "bankers"}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"timezone": "Mars/Olympus_Mons"}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"expiry": {"policy": "rolling"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', '{"tier_window": {"rolling_months": 0}}');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('prg_bad', 'Bad', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.create_program('', 'Empty code');
\echo :LAST_ERROR_SQLSTATE
-- Nothing was written by the failed calls.
SELECT code FROM loyalty.program ORDER BY code;

-- Tiers: base (threshold 0), silver, gold.
SELECT loyalty.add_tier('prg_default', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.add_tier('prg_default', 'silver', 'Silver', 1000, 1.25) IS NOT NULL AS added;
SELECT loyalty.add_tier('prg_default', 'gold', 'Gold', 5000, 1.5, '{"lounge": true}') IS NOT NULL AS added;
SELECT t.code, t.name, t.threshold, t.earn_multiplier, t.benefits
  FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
 WHERE p.code = 'prg_default' ORDER BY t.threshold;

-- Errors: unknown program (LY001), duplicate code or threshold (LY041),
-- bad threshold or multiplier (LY042), benefits not an object (LY035).
SELECT loyalty.add_tier('nope', 'base', 'Base', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'gold', 'Gold again', 7000);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'platinum', 'Platinum', 5000);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'platinum', 'Platinum', -1);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'platinum', 'Platinum', 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'platinum', 'Platinum', 9000, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.add_tier('prg_default', 'platinum', 'Platinum', 9000, 2, '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS tiers FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
 WHERE p.code = 'prg_default';
