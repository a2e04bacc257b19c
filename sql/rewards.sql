-- rewards: a catalog, a voucher from redeem to till, and what a till is told
-- about codes that are not right. Worked through on a small coffee shop.
--
-- Voucher codes are signed with a key made at CREATE EXTENSION, so they differ
-- on every run: this file shows their shape and what is done with them, never
-- the codes themselves.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- The shop: 1 point per euro, points expire 12 months after they are earned.
SELECT loyalty.create_program('rw_cafe', 'Corner Cafe',
       '{"timezone": "UTC", "expiry": {"policy": "rolling", "months": 12}}') IS NOT NULL AS created;
SELECT loyalty.add_tier('rw_cafe', 'regular', 'Regular', 0) IS NOT NULL AS added;
SELECT loyalty.enroll('rw_cafe', 'ana', '2026-01-05 08:00+00') AS ana \gset

-- The catalog: a free coffee (150 points, unlimited, the voucher valid 30
-- days), a tote bag (500 points, only 2 in stock) and a summer deal valid
-- in July only.
SELECT loyalty.add_reward('rw_cafe', 'coffee', 'Free coffee', 150,
                          grants => '{"free_item": "coffee"}') IS NOT NULL AS added;
SELECT loyalty.add_reward('rw_cafe', 'tote', 'Tote bag', 500, stock => 2,
                          grants => '{"free_item": "tote bag"}') IS NOT NULL AS added;
SELECT loyalty.add_reward('rw_cafe', 'summer', 'Summer 10% off', 100, grants => '{"percent_off": 10}',
                          valid_from => '2026-07-01 00:00+00', valid_until => '2026-08-01 00:00+00') IS NOT NULL AS added;
SELECT code, name, cost_points, stock, valid_from, valid_until, grants, voucher_valid_days
  FROM loyalty.reward WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'rw_cafe') ORDER BY id;

-- Ana buys for 800 euros over January: 800 points.
SELECT points, available FROM loyalty.earn(:ana, 800, 'sale-1', '2026-01-20 09:00+00');

-- She takes a free coffee: 150 points are debited (soonest-expiring first)
-- and a voucher is issued in the same transaction, valid 30 days.
SELECT points, available, replayed, expires_at,
       voucher_code ~ '^[2-9A-HJKMNP-Z]{6}-[2-9A-HJKMNP-Z]{6}-[2-9A-HJKMNP-Z]{6}$' AS code_looks_right
  FROM loyalty.redeem_reward(:ana, 'coffee', 'app-7f3a', '2026-02-01 08:30+00');
SELECT voucher_code AS code FROM loyalty.redeem_reward(:ana, 'coffee', 'app-7f3a', '2026-02-01 08:30+00') \gset
-- The app retries the request (same key): the same voucher, nothing new.
SELECT points, available, replayed, voucher_code = :'code' AS same_code
  FROM loyalty.redeem_reward(:ana, 'coffee', 'app-7f3a', '2026-02-01 08:31+00');
SELECT kind, points, reason, detail ? 'voucher' AS names_voucher
  FROM loyalty.entry WHERE member_id = :ana ORDER BY id;

-- The till checks the code: valid, for a coffee, until March 3rd. Typed in
-- lower case without dashes it is the same code.
SELECT status, sqlstate, reward, reward_name, grants, issued_at, expires_at, used_at
  FROM loyalty.check_voucher(:'code', '2026-02-10 12:00+00');
SELECT status FROM loyalty.check_voucher(lower(replace(:'code', '-', '')), '2026-02-10 12:00+00');

-- Codes that are not right get their own status and SQLSTATE, and disclose
-- nothing about any voucher: a character outside the alphabet (O, 0, 1, I, L
-- are never used), a wrong length, a typo (caught by the check character
-- before any lookup), and a correctly signed code for a voucher that was
-- never issued (voucher_code is an owner-only helper).
SELECT status, sqlstate, voucher_id, reward FROM loyalty.check_voucher('NOT-A-CODE', '2026-02-10 12:00+00');
SELECT status, sqlstate FROM loyalty.check_voucher(left(:'code', 19), '2026-02-10 12:00+00');
SELECT status, sqlstate
  FROM loyalty.check_voucher(overlay(:'code' PLACING CASE WHEN substr(:'code', 8, 1) = 'K' THEN 'X' ELSE 'K' END
                                     FROM 8 FOR 1), '2026-02-10 12:00+00');
SELECT status, sqlstate FROM loyalty.check_voucher(loyalty.voucher_code(123456), '2026-02-10 12:00+00');

-- The till spends it. A retry of the same sale (same key) replays; another
-- till (another key) is refused with the time it was used.
SELECT reward, grants, used_at, replayed FROM loyalty.use_voucher(:'code', 'till-1/sale-88', '2026-02-10 12:00+00');
SELECT reward, used_at, replayed FROM loyalty.use_voucher(:'code', 'till-1/sale-88', '2026-02-10 12:01+00');
SELECT * FROM loyalty.use_voucher(:'code', 'till-2/sale-12', '2026-02-10 12:05+00');
\echo :LAST_ERROR_SQLSTATE
SELECT status, sqlstate, used_at FROM loyalty.check_voucher(:'code', '2026-02-11 00:00+00');

-- A voucher not used in time expires (at expires_at exactly).
SELECT voucher_code AS code2, expires_at FROM loyalty.redeem_reward(:ana, 'coffee', 'app-8c01', '2026-02-15 10:00+00') \gset
SELECT :'expires_at'::timestamptz AS expires_at;
SELECT status FROM loyalty.check_voucher(:'code2', '2026-03-17 09:59:59+00');
SELECT status, sqlstate FROM loyalty.check_voucher(:'code2', '2026-03-17 10:00+00');
SELECT * FROM loyalty.use_voucher(:'code2', 'till-1/sale-99', '2026-03-17 10:00+00');
\echo :LAST_ERROR_SQLSTATE

-- The tote bag: 800 - 150 - 150 = 500 points left, exactly one bag.
-- Cancelling it gives back the 500 points (with the expiry date they had)
-- and puts the bag back in stock.
SELECT points, available FROM loyalty.redeem_reward(:ana, 'tote', 'app-9d12', '2026-03-01 10:00+00');
SELECT voucher_code AS tote FROM loyalty.redeem_reward(:ana, 'tote', 'app-9d12', '2026-03-01 10:00+00') \gset
SELECT stock FROM loyalty.reward WHERE code = 'tote';
SELECT points, available, replayed FROM loyalty.cancel_voucher(:'tote', 'support-1', '2026-03-02 10:00+00', 'wrong colour');
SELECT stock FROM loyalty.reward WHERE code = 'tote';
SELECT l.points, l.available_at, l.expires_at
  FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
 WHERE e.member_id = :ana AND e.kind = 'reward_refund';
SELECT status, sqlstate FROM loyalty.check_voucher(:'tote', '2026-03-02 11:00+00');
SELECT available, lifetime_earned, redeemed, expired FROM loyalty.balance(:ana, '2026-03-02 11:00+00');

-- Catalog rules: the summer deal is not on yet (LY080). With her 500 points
-- back Ana buys the bag again; a second one is refused (LY010, nothing
-- written, the last bag stays in stock).
SELECT * FROM loyalty.redeem_reward(:ana, 'summer', 'app-a001', '2026-03-02 12:00+00');
\echo :LAST_ERROR_SQLSTATE
SELECT points FROM loyalty.redeem_reward(:ana, 'tote', 'app-a002', '2026-03-02 12:00+00');
SELECT * FROM loyalty.redeem_reward(:ana, 'tote', 'app-a003', '2026-03-02 12:01+00');
\echo :LAST_ERROR_SQLSTATE
SELECT stock FROM loyalty.reward WHERE code = 'tote';

-- Offline: a till that may lose its connection downloads a bundle for its
-- store: a store key derived from the signing key (it cannot make codes) and
-- one tag per outstanding voucher; the till hashes a typed code with the
-- store key and looks the tag up. Used, cancelled and expired vouchers are
-- not in it: here only the tote bag bought at noon.
SELECT b->'format' AS format, b->>'store' AS store, length(b->>'store_key') AS store_key_hex_chars,
       jsonb_array_length(b->'vouchers') AS vouchers
  FROM loyalty.voucher_bundle('rw_cafe', 'corner-1', '2026-03-20 00:00+00') b;
SELECT v->>'reward' AS reward, v->'grants' AS grants, v->>'expires_at' AS expires_at, length(v->>'tag') AS tag_hex_chars
  FROM loyalty.voucher_bundle('rw_cafe', 'corner-1', '2026-03-20 00:00+00') b, jsonb_array_elements(b->'vouchers') v;

SELECT count(*) AS violations FROM loyalty.check_invariants();
