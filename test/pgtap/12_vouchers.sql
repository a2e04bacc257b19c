-- 12: rewards catalog and signed vouchers: catalog rules (stock, window, tier,
-- per-member limit, unlimited stock), redeem_reward replays, the code format
-- recomputed with pgcrypto, forged / truncated / mistyped / wrong-key /
-- revoked-key / expired / reused codes, cancel (original and fresh expiry),
-- key rotation, the offline bundle, the application role, 1M unique codes.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(123);

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap12%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.nentries(mid bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry WHERE member_id = mid $$;
CREATE FUNCTION pg_temp.stock(c text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(r.stock::text, 'unlimited') FROM loyalty.reward r JOIN loyalty.program p ON p.id = r.program_id
     WHERE p.code = 'tap12' AND r.code = c $$;
-- SQLSTATE raised by a statement, NULL if none
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- Every voucher receipt, by a label, so later tests can use its code.
CREATE TEMP TABLE vc (label text PRIMARY KEY, r loyalty.voucher_receipt);
CREATE FUNCTION pg_temp.rr(label text, mid bigint, reward text, k text, t timestamptz) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    x loyalty.voucher_receipt;
BEGIN
    x := loyalty.redeem_reward(mid, reward, k, t);
    INSERT INTO vc VALUES (label, x);
    RETURN format('%s/%s/%s/%s/%s', x.points, x.available, x.tier, x.replayed, x.expires_at);
END $$;
CREATE FUNCTION pg_temp.code(l text) RETURNS text LANGUAGE sql AS $$ SELECT (r).voucher_code FROM vc WHERE label = l $$;
CREATE FUNCTION pg_temp.vid(l text) RETURNS bigint LANGUAGE sql AS $$ SELECT (r).voucher_id FROM vc WHERE label = l $$;
CREATE FUNCTION pg_temp.st(c text, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT status || '/' || sqlstate FROM loyalty.check_voucher(c, t) $$;

-- The code format, recomputed in SQL: 17 base-31 digits of
-- MAC(40) | version(2) = 1 | key id(6) | voucher id(36), then a check
-- character c with sum over the 17 of (i + 2) * value(i) (i from 0) + c = 0 mod 31.
CREATE FUNCTION pg_temp.alpha() RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT '23456789ABCDEFGHJKMNPQRSTUVWXYZ' $$;
CREATE FUNCTION pg_temp.norm(c text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT upper(translate(c, '- ', '')) $$;
CREATE FUNCTION pg_temp.checkc(data text) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT substr(pg_temp.alpha(),
                  (31 - sum((i + 1) * (strpos(pg_temp.alpha(), substr(data, i, 1)) - 1)) % 31)::int % 31 + 1, 1)
      FROM generate_series(1, 17) i $$;
CREATE FUNCTION pg_temp.fmt(c text) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT substr(c, 1, 6) || '-' || substr(c, 7, 6) || '-' || substr(c, 13, 6) $$;
CREATE FUNCTION pg_temp.encode(v numeric) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT pg_temp.fmt(d || pg_temp.checkc(d))
      FROM (SELECT string_agg(substr(pg_temp.alpha(), mod(div(v, 31::numeric ^ (17 - i)), 31)::int + 1, 1), '' ORDER BY i) d
              FROM generate_series(1, 17) i) s $$;
CREATE FUNCTION pg_temp.decode(c text) RETURNS numeric IMMUTABLE LANGUAGE sql AS $$
    SELECT trunc(sum((strpos(pg_temp.alpha(), substr(pg_temp.norm(c), i, 1)) - 1) * 31::numeric ^ (17 - i)))
      FROM generate_series(1, 17) i $$;
CREATE FUNCTION pg_temp.key_of(c text) RETURNS int IMMUTABLE LANGUAGE sql AS $$
    SELECT mod(div(pg_temp.decode(c), 2::numeric ^ 36), 64)::int $$;
CREATE FUNCTION pg_temp.mac_of(c text) RETURNS bigint IMMUTABLE LANGUAGE sql AS $$
    SELECT div(pg_temp.decode(c), 2::numeric ^ 44)::bigint $$;
-- MAC = first 40 bits of HMAC-SHA256(key, 'loyalty-voucher' | version byte | key id byte | id as 8 bytes big-endian)
CREATE FUNCTION pg_temp.mac40(key_id int, vid bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT ('x' || encode(substr(hmac('loyalty-voucher'::bytea || '\x01'::bytea || set_byte('\x00'::bytea, 0, key_id)
                                      || int8send(vid), k.secret, 'sha256'), 1, 5), 'hex'))::bit(40)::bigint
      FROM loyalty.voucher_key k WHERE k.id = key_id $$;
CREATE FUNCTION pg_temp.code_of(mac bigint, key_id int, vid bigint) RETURNS text IMMUTABLE LANGUAGE sql AS $$
    SELECT pg_temp.encode(mac * 2::numeric ^ 44 + 2::numeric ^ 42 + key_id * 2::numeric ^ 36 + vid) $$;
-- every single-character substitution of a code (18 positions x 30 other characters)
CREATE FUNCTION pg_temp.substitutions(c text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT overlay(pg_temp.norm(c) PLACING substr(pg_temp.alpha(), a, 1) FROM p FOR 1)
      FROM generate_series(1, 18) p, generate_series(1, 31) a
     WHERE substr(pg_temp.alpha(), a, 1) <> substr(pg_temp.norm(c), p, 1) $$;
-- every swap of two neighbours that changes the code
CREATE FUNCTION pg_temp.swaps(c text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT overlay(pg_temp.norm(c) PLACING substr(pg_temp.norm(c), p + 1, 1) || substr(pg_temp.norm(c), p, 1) FROM p FOR 2)
      FROM generate_series(1, 17) p
     WHERE substr(pg_temp.norm(c), p, 1) <> substr(pg_temp.norm(c), p + 1, 1) $$;

-- ---------------------------------------------------------------------------
-- Program, members, catalog. UTC, rolling 12-month expiry, no pending.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap12', 'Rewards',
            '{"timezone": "UTC", "expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap12', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap12', 'gold', 'Gold', 1000);
    PERFORM loyalty.enroll('tap12', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['a', 'b', 'c', 'd', 'g']) r;
    PERFORM loyalty.award(pg_temp.m('a'), 1000, 'gift', 'aw-a', '2026-01-02 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('b'), 100, 'gift', 'aw-b', '2026-01-02 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('c'), 50, 'gift', 'aw-c', '2026-01-02 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('g'), 1000, 'e-g', '2026-01-02 00:00:00+00');
    -- d: 60 expiring 2027-01-05, then 100 expiring 2027-02-01
    PERFORM loyalty.award(pg_temp.m('d'), 60, 'gift', 'aw-d1', '2026-01-05 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('d'), 100, 'gift', 'aw-d2', '2026-02-01 00:00:00+00');
    PERFORM loyalty.add_reward('tap12', 'coffee', 'Free coffee', 100, stock => 2,
                               grants => '{"free_item": "coffee"}');
    PERFORM loyalty.add_reward('tap12', 'cap', 'Cap', 500, stock => 3);
    PERFORM loyalty.add_reward('tap12', 'spring', 'Spring sale', 50, grants => '{"percent_off": 10}',
                               valid_from => '2026-03-01 00:00:00+00', valid_until => '2026-06-01 00:00:00+00');
    PERFORM loyalty.add_reward('tap12', 'lounge', 'Lounge', 200, min_tier => 'gold');
    PERFORM loyalty.add_reward('tap12', 'mug', 'Mug', 10, per_member_limit => 2);
    PERFORM loyalty.add_reward('tap12', 'tshirt', 'T-shirt', 100);
    PERFORM loyalty.add_reward('tap12', 'gift', 'Gift box', 100, stock => 5, voucher_valid_days => 365);
END$$;

-- add_reward refuses bad input
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'coffee', 'Again', 10)$$, 'LY041', NULL, 'add_reward: duplicate code -> LY041');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 0)$$, 'LY032', NULL, 'add_reward: cost 0 -> LY032');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, stock => -1)$$, 'LY038', NULL, 'add_reward: stock -1 -> LY038');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, per_member_limit => 0)$$, 'LY038', NULL, 'add_reward: limit 0 -> LY038');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, voucher_valid_days => 0)$$, 'LY038', NULL, 'add_reward: 0 valid days -> LY038');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, valid_from => '2026-02-01 00:00:00+00',
                                             valid_until => '2026-02-01 00:00:00+00')$$, 'LY033', NULL, 'add_reward: empty window -> LY033');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, grants => '[]')$$, 'LY035', NULL, 'add_reward: grants not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.add_reward('nope', 'x', 'X', 10)$$, 'LY001', NULL, 'add_reward: unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', 'X', 10, min_tier => 'platinum')$$, 'LY003', NULL, 'add_reward: unknown tier -> LY003');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', 'x', NULL, 10)$$, 'LY034', NULL, 'add_reward: NULL name -> LY034');
SELECT throws_ok($$SELECT loyalty.add_reward('tap12', '', 'X', 10)$$, 'LY037', NULL, 'add_reward: empty code -> LY037');

-- ---------------------------------------------------------------------------
-- redeem_reward: debit, stock, voucher; replay; stock rules.
-- ---------------------------------------------------------------------------
-- a: 1000 - 100 = 900; the voucher is valid 30 days: until 2026-02-09 10:00.
SELECT is(pg_temp.rr('a1', pg_temp.m('a'), 'coffee', 'rw-a1', '2026-01-10 10:00:00+00'),
          '-100/900/base/f/2026-02-09 10:00:00+00', 'redeem coffee: 100 points, voucher valid 30 days');
SELECT is(pg_temp.stock('coffee'), '1', 'coffee stock 2 -> 1');
SELECT is((SELECT format('%s/%s/%s/%s', kind, points, reason, detail) FROM loyalty.entry
            WHERE member_id = pg_temp.m('a') AND idempotency_key = 'rw-a1'),
          format('redeem/-100/reward coffee/{"reward": "coffee", "voucher": %s}', pg_temp.vid('a1')),
          'the ledger entry is a redeem naming the reward and the voucher');
SELECT is(pg_temp.rr('a1r', pg_temp.m('a'), 'coffee', 'rw-a1', '2026-01-10 10:05:00+00'),
          '-100/900/base/t/2026-02-09 10:00:00+00', 'replay: same receipt, replayed');
SELECT ok((SELECT (x.r).voucher_id = (y.r).voucher_id AND (x.r).voucher_code = (y.r).voucher_code
                  AND (x.r).entry_id = (y.r).entry_id FROM vc x, vc y WHERE x.label = 'a1' AND y.label = 'a1r'),
          'replay returns the same voucher and entry');
SELECT is(format('%s/%s/%s', pg_temp.stock('coffee'), pg_temp.nentries(pg_temp.m('a')),
                 (SELECT count(*) FROM loyalty.voucher WHERE member_id = pg_temp.m('a'))),
          '1/2/1', 'replay took no stock, wrote no entry, issued no voucher');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'tshirt', 'rw-a1', '2026-01-10 10:00:00+00')$$,
                 'LY020', NULL, 'same key for another reward -> LY020');
-- b takes the last coffee; a cannot have one more
SELECT is(pg_temp.rr('b1', pg_temp.m('b'), 'coffee', 'rw-b1', '2026-01-11 00:00:00+00'),
          '-100/0/base/f/2026-02-10 00:00:00+00', 'b takes the last coffee');
SELECT is(pg_temp.stock('coffee'), '0', 'coffee stock 0');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'coffee', 'rw-a2', '2026-01-12 00:00:00+00')$$,
                 'LY083', NULL, 'out of stock -> LY083');
SELECT is(format('%s/%s/%s', pg_temp.stock('coffee'), pg_temp.nentries(pg_temp.m('a')),
                 (SELECT available FROM loyalty.balance(pg_temp.m('a'), '2026-01-12 00:00:00+00'))),
          '0/2/900', 'out of stock: stock stays 0, no entry, points unchanged');
-- c has 50 points
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('c'), 'cap', 'rw-c1', '2026-01-12 00:00:00+00')$$,
                 'LY010', NULL, 'cap for 500 with 50 points -> LY010');
SELECT is(format('%s/%s/%s/%s', pg_temp.stock('cap'), pg_temp.nentries(pg_temp.m('c')),
                 (SELECT count(*) FROM loyalty.voucher WHERE member_id = pg_temp.m('c')),
                 pg_temp.bal(pg_temp.m('c'), '2026-01-12 00:00:00+00')),
          '3/1/0/50/0/50/0/0/base', 'insufficient points: no entry, no voucher, stock unchanged, balance unchanged');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('c'), 'coffee', 'rw-c1', '2026-01-12 00:00:00+00')$$,
                 'LY010', NULL, 'points are checked before stock: LY010 on an out-of-stock reward');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'nope', 'rw-x', '2026-01-12 00:00:00+00')$$,
                 'LY007', NULL, 'unknown reward -> LY007');

-- validity window [2026-03-01, 2026-06-01)
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'spring', 'rw-sp0', '2026-02-28 23:59:59+00')$$,
                 'LY080', NULL, 'one second before the window -> LY080');
SELECT is(pg_temp.rr('sp1', pg_temp.m('a'), 'spring', 'rw-sp1', '2026-03-01 00:00:00+00'),
          '-50/850/base/f/2026-03-31 00:00:00+00', 'at the window''s start: redeemed');
SELECT is(pg_temp.rr('sp2', pg_temp.m('a'), 'spring', 'rw-sp2', '2026-05-31 23:59:59+00'),
          '-50/800/base/f/2026-06-30 23:59:59+00', 'one second before the window''s end: redeemed');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'spring', 'rw-sp3', '2026-06-01 00:00:00+00')$$,
                 'LY080', NULL, 'at the window''s end -> LY080');

-- minimum tier gold: a is base, g is gold (earned 1000)
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'lounge', 'rw-l1', '2026-01-15 00:00:00+00')$$,
                 'LY081', NULL, 'base member, gold reward -> LY081');
SELECT is(pg_temp.rr('g1', pg_temp.m('g'), 'lounge', 'rw-g1', '2026-01-15 00:00:00+00'),
          '-200/800/gold/f/2026-02-14 00:00:00+00', 'gold member redeems the gold reward');

-- per-member limit 2 (cancelled vouchers do not count)
SELECT is(pg_temp.rr('m1', pg_temp.m('g'), 'mug', 'rw-m1', '2026-01-16 00:00:00+00'), '-10/790/gold/f/2026-02-15 00:00:00+00', 'mug 1 of 2');
SELECT is(pg_temp.rr('m2', pg_temp.m('g'), 'mug', 'rw-m2', '2026-01-16 00:00:01+00'), '-10/780/gold/f/2026-02-15 00:00:01+00', 'mug 2 of 2');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('g'), 'mug', 'rw-m3', '2026-01-16 00:00:02+00')$$,
                 'LY082', NULL, 'mug 3 of 2 -> LY082');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('m1'), 'cx-m1', '2026-01-17 00:00:00+00')),
          '10/790/0/gold/f', 'cancel mug 1: 10 points back');
SELECT is(pg_temp.rr('m3', pg_temp.m('g'), 'mug', 'rw-m3', '2026-01-18 00:00:00+00'), '-10/780/gold/f/2026-02-17 00:00:00+00',
          'after a cancel the limit has room again');

-- unlimited stock
SELECT is(pg_temp.rr('t1', pg_temp.m('a'), 'tshirt', 'rw-t1', '2026-06-02 00:00:00+00') || ' ' ||
          pg_temp.rr('t2', pg_temp.m('a'), 'tshirt', 'rw-t2', '2026-06-02 00:00:01+00') || ' ' ||
          pg_temp.rr('t3', pg_temp.m('a'), 'tshirt', 'rw-t3', '2026-06-02 00:00:02+00'),
          '-100/700/base/f/2026-07-02 00:00:00+00 -100/600/base/f/2026-07-02 00:00:01+00 -100/500/base/f/2026-07-02 00:00:02+00',
          'unlimited reward: three in a row');
SELECT is(pg_temp.stock('tshirt'), 'unlimited', 'unlimited stock stays NULL');

-- ---------------------------------------------------------------------------
-- The code: format, check_voucher, malformed, truncated, mistyped, forged, expired.
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.code('a1'), pg_temp.code_of(pg_temp.mac40(1, pg_temp.vid('a1')), 1, pg_temp.vid('a1')),
          'the code recomputed from the key with pgcrypto matches (MAC | version | key 1 | id, check character)');
SELECT ok(pg_temp.code('a1') ~ '^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$',
          'code shown as XXXXXX-XXXXXX-XXXXXX in the 31-character alphabet');
SELECT is((SELECT code || '/' || key_id FROM loyalty.voucher WHERE id = pg_temp.vid('a1')),
          pg_temp.code('a1') || '/1', 'voucher row holds the code and key 1');
SELECT is((SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s/%s', status, sqlstate, voucher_id = pg_temp.vid('a1'),
                         member_id = pg_temp.m('a'), reward, reward_name, grants, issued_at, expires_at,
                         coalesce(used_at::text, '-') || coalesce(cancelled_at::text, '-'))
             FROM loyalty.check_voucher(pg_temp.code('a1'), '2026-01-20 00:00:00+00')),
          'valid/00000/t/t/coffee/Free coffee/{"free_item": "coffee"}/2026-01-10 10:00:00+00/2026-02-09 10:00:00+00/--',
          'check_voucher: valid, for what, until when');
SELECT is(pg_temp.st(lower(replace(pg_temp.code('a1'), '-', ' ')), '2026-01-20 00:00:00+00') || ' ' ||
          pg_temp.st(lower(pg_temp.norm(pg_temp.code('a1'))), '2026-01-20 00:00:00+00'),
          'valid/00000 valid/00000', 'lower case, spaces or no separators are accepted');
-- expiry: at expires_at it is expired
SELECT is(pg_temp.st(pg_temp.code('a1'), '2026-02-09 09:59:59+00') || ' ' || pg_temp.st(pg_temp.code('a1'), '2026-02-09 10:00:00+00'),
          'valid/00000 expired/LY094', 'valid one second before expires_at, expired at it');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', pg_temp.code('a1'), 'till-x', '2026-02-09 10:00:00+00'),
                 'LY094', NULL, 'use_voucher on an expired voucher -> LY094');
-- malformed and truncated
SELECT is((SELECT format('%s/%s/%s', status, sqlstate, coalesce(voucher_id::text, reward, 'nulls'))
             FROM loyalty.check_voucher(left(pg_temp.code('a1'), 19), '2026-01-20 00:00:00+00')),
          'malformed/LY090/nulls', 'truncated code (17 characters): malformed, nothing disclosed');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', left(pg_temp.code('a1'), 19), 'till-x', '2026-01-20 00:00:00+00'),
                 'LY090', NULL, 'use_voucher on a truncated code -> LY090');
SELECT is(pg_temp.st('', '2026-01-20 00:00:00+00') || ' ' || pg_temp.st(pg_temp.code('a1') || '2', '2026-01-20 00:00:00+00') || ' ' ||
          pg_temp.st(overlay(pg_temp.code('a1') PLACING 'O' FROM 3 FOR 1), '2026-01-20 00:00:00+00') || ' ' ||
          pg_temp.st(overlay(pg_temp.code('a1') PLACING '1' FROM 3 FOR 1), '2026-01-20 00:00:00+00'),
          'malformed/LY090 malformed/LY090 malformed/LY090 malformed/LY090', 'empty, too long, O and 1 (not in the alphabet): malformed');
SELECT throws_ok($$SELECT * FROM loyalty.use_voucher(NULL, 'till-x', '2026-01-20 00:00:00+00')$$, 'LY034', NULL, 'NULL code -> LY034');
-- mistyped: every single substitution (18 x 30 = 540) and every adjacent swap
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)',
                        (SELECT s FROM pg_temp.substitutions(pg_temp.code('a1')) s LIMIT 1), 'till-x', '2026-01-20 00:00:00+00'),
                 'LY091', NULL, 'use_voucher on a mistyped code -> LY091');
SELECT is((SELECT format('%s of %s', count(*) FILTER (WHERE (SELECT status FROM loyalty.check_voucher(s, '2026-01-20 00:00:00+00')) = 'mistyped'), count(*))
             FROM pg_temp.substitutions(pg_temp.code('a1')) s),
          '540 of 540', 'check_voucher: all 540 single-character substitutions are mistyped');
SELECT is((SELECT format('%s of %s', count(*) FILTER (WHERE pg_temp.err(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', s, 'till-x', '2026-01-20 00:00:00+00')) = 'LY091'), count(*))
             FROM pg_temp.substitutions(pg_temp.code('a1')) s),
          '540 of 540', 'use_voucher: all 540 substitutions refused with LY091');
SELECT is((SELECT count(*) FILTER (WHERE (SELECT status FROM loyalty.check_voucher(s, '2026-01-20 00:00:00+00')) <> 'mistyped')
             FROM pg_temp.swaps(pg_temp.code('a1')) s), 0::bigint, 'check_voucher: every adjacent swap is mistyped');
SELECT ok((SELECT count(*) > 0 AND bool_and(pg_temp.err(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', s, 'till-x', '2026-01-20 00:00:00+00')) = 'LY091')
             FROM pg_temp.swaps(pg_temp.code('a1')) s), 'use_voucher: every adjacent swap refused with LY091');
SELECT is((SELECT format('%s of %s', count(*) FILTER (WHERE (SELECT status FROM loyalty.check_voucher(s, '2026-01-20 00:00:00+00')) = 'mistyped'), count(*))
             FROM unnest(loyalty.voucher_codes(1000, 100, 1)) c, pg_temp.substitutions(c) s),
          '54000 of 54000', '100 more codes: all 100 x 540 substitutions are mistyped');
SELECT is((SELECT count(*) FILTER (WHERE (SELECT status FROM loyalty.check_voucher(s, '2026-01-20 00:00:00+00')) <> 'mistyped')
             FROM unnest(loyalty.voucher_codes(1000, 100, 1)) c, pg_temp.swaps(c) s),
          0::bigint, '100 more codes: every adjacent swap is mistyped');
-- forged: a correct check character around a wrong MAC for the real voucher
-- id and key: 100 near misses of the real MAC and 100 random MACs
SELECT is((SELECT format('%s of %s', count(*) FILTER (WHERE (SELECT status || '/' || sqlstate FROM loyalty.check_voucher(f, '2026-01-20 00:00:00+00')) = 'forged/LY092'), count(*))
             FROM (SELECT pg_temp.code_of((pg_temp.mac40(1, pg_temp.vid('a1')) # (i * 10000019)) & 1099511627775, 1, pg_temp.vid('a1')) f
                     FROM generate_series(1, 100) i
                   UNION ALL
                   SELECT pg_temp.code_of(('x' || encode(gen_random_bytes(5), 'hex'))::bit(40)::bigint, 1, pg_temp.vid('a1'))
                     FROM generate_series(1, 100) i) x),
          '200 of 200', 'check_voucher: 200 codes with a wrong MAC and a right check character are forged');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)',
                        pg_temp.code_of(pg_temp.mac40(1, pg_temp.vid('a1')) # 1, 1, pg_temp.vid('a1')), 'till-x', '2026-01-20 00:00:00+00'),
                 'LY092', NULL, 'use_voucher on a forged code -> LY092');
SELECT is(pg_temp.st(pg_temp.code_of(pg_temp.mac_of(pg_temp.code('a1')), 1, pg_temp.vid('a1')), '2026-01-20 00:00:00+00'),
          'valid/00000', '(control: the same construction with the real MAC is valid)');
SELECT is(pg_temp.st(loyalty.voucher_code(9999999, 1), '2026-01-20 00:00:00+00'), 'forged/LY092',
          'a genuine MAC for a voucher that was never issued: forged');
SELECT is(pg_temp.st(pg_temp.code_of(123456789, 40, pg_temp.vid('a1')), '2026-01-20 00:00:00+00'), 'forged/LY092',
          'an unknown key id: forged');
SELECT is(pg_temp.st(pg_temp.encode(pg_temp.decode(pg_temp.code('a1')) + 2::numeric ^ 42), '2026-01-20 00:00:00+00'), 'forged/LY092',
          'another format version: forged');

-- ---------------------------------------------------------------------------
-- use_voucher: once; replay with the same key; LY095 with another.
-- ---------------------------------------------------------------------------
SELECT is((SELECT format('%s/%s/%s/%s/%s/%s', voucher_id = pg_temp.vid('a1'), member_id = pg_temp.m('a'), reward, grants, used_at, replayed)
             FROM loyalty.use_voucher(pg_temp.code('a1'), 'till-1', '2026-01-20 12:00:00+00')),
          't/t/coffee/{"free_item": "coffee"}/2026-01-20 12:00:00+00/f', 'use_voucher: spent');
SELECT is((SELECT format('%s/%s', used_at, replayed) FROM loyalty.use_voucher(lower(pg_temp.code('a1')), 'till-1', '2026-01-20 12:05:00+00')),
          '2026-01-20 12:00:00+00/t', 'same key again: replay with the first used_at');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', pg_temp.code('a1'), 'till-2', '2026-01-20 12:10:00+00'),
                 'LY095', 'voucher was already used at 2026-01-20 12:00:00+00', 'another key: LY095 naming when it was used');
SELECT is((SELECT format('%s/%s/%s', status, sqlstate, used_at) FROM loyalty.check_voucher(pg_temp.code('a1'), '2026-01-21 00:00:00+00')),
          'used/LY095/2026-01-20 12:00:00+00', 'check_voucher: used, and when');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', pg_temp.code('a1'), '', '2026-01-20 12:10:00+00'),
                 'LY021', NULL, 'use_voucher without a key -> LY021');
SELECT throws_ok(format('SELECT loyalty.cancel_voucher(%L, %L, %L)', pg_temp.code('a1'), 'cx-a1', '2026-01-22 00:00:00+00'),
                 'LY095', NULL, 'cancel after use -> LY095');

-- ---------------------------------------------------------------------------
-- cancel_voucher: points back with the drawn lots' expiry, stock back.
-- ---------------------------------------------------------------------------
-- d redeems the gift box (100) from 60 (exp 2027-01-05) + 40 of 100 (exp 2027-02-01).
SELECT is(pg_temp.rr('d1', pg_temp.m('d'), 'gift', 'rw-d1', '2026-03-01 00:00:00+00'),
          '-100/60/base/f/2027-03-01 00:00:00+00', 'd redeems the gift box: voucher valid 365 days');
SELECT is(pg_temp.stock('gift'), '4', 'gift stock 5 -> 4');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('d1'), 'cx-d1', '2026-03-05 00:00:00+00', 'changed her mind')),
          '100/160/0/base/f', 'cancel: 100 points back');
SELECT is((SELECT string_agg(l.points || '@' || l.expires_at || '/' || l.available_at, ',' ORDER BY l.expires_at)
             FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = pg_temp.m('d') AND e.idempotency_key = 'cx-d1'),
          '60@2027-01-05 00:00:00+00/2026-03-05 00:00:00+00,40@2027-02-01 00:00:00+00/2026-03-05 00:00:00+00',
          'new lots: 60 and 40, available at once, with the original expiry dates');
SELECT is((SELECT string_agg(l.points || '@' || l.expires_at, ',' ORDER BY l.expires_at)
             FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = pg_temp.m('d') AND e.idempotency_key = 'cx-d1'),
          (SELECT string_agg(d.points || '@' || l.expires_at, ',' ORDER BY l.expires_at)
             FROM loyalty.lot_draw d JOIN loyalty.lot l ON l.member_id = d.member_id AND l.id = d.lot_id
             JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
            WHERE e.member_id = pg_temp.m('d') AND e.idempotency_key = 'rw-d1'),
          'the new lots mirror the lots the redeem drew from');
SELECT is((SELECT format('%s/%s/%s/%s/%s', kind, points, reason, ref_entry_id = (SELECT id FROM loyalty.entry x WHERE x.member_id = e.member_id AND x.idempotency_key = 'rw-d1'),
                         detail->>'expired_before_cancel')
             FROM loyalty.entry e WHERE member_id = pg_temp.m('d') AND idempotency_key = 'cx-d1'),
          'reward_refund/100/changed her mind/t/0', 'the entry: reward_refund +100, refers to the redeem');
SELECT is(pg_temp.stock('gift') || ' ' || pg_temp.bal(pg_temp.m('d'), '2026-03-05 00:00:00+00'),
          '5 160/0/160/0/0/base', 'stock back to 5; redeemed back to 0');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('d1'), 'cx-d1', '2026-03-06 00:00:00+00', 'changed her mind')),
          '100/160/0/base/t', 'cancel again with the same key: replay');
SELECT throws_ok(format('SELECT loyalty.cancel_voucher(%L, %L, %L)', pg_temp.code('d1'), 'cx-d1b', '2026-03-06 00:00:00+00'),
                 'LY096', NULL, 'cancel again with another key -> LY096');
SELECT is(pg_temp.stock('gift') || ' ' || pg_temp.nentries(pg_temp.m('d')), '5 4', 'replay and refusal gave no more stock and wrote nothing');
SELECT is((SELECT format('%s/%s/%s', status, sqlstate, cancelled_at) FROM loyalty.check_voucher(pg_temp.code('d1'), '2026-03-06 00:00:00+00')),
          'cancelled/LY096/2026-03-05 00:00:00+00', 'check_voucher: cancelled');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', pg_temp.code('d1'), 'till-1', '2026-03-06 00:00:00+00'),
                 'LY096', NULL, 'use_voucher on a cancelled voucher -> LY096');
-- Redeem again on 2026-12-20: 60 from the 2027-01-05 lot, then 40 from the
-- oldest 2027-02-01 lot. Cancelled on 2027-01-10 the 60 would have expired:
-- only 40 come back. Available: 20 + 40 left, + 40 = 100.
SELECT is(pg_temp.rr('d2', pg_temp.m('d'), 'gift', 'rw-d2', '2026-12-20 00:00:00+00'),
          '-100/60/base/f/2027-12-20 00:00:00+00', 'd redeems a gift box again');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('d2'), 'cx-d2', '2027-01-10 00:00:00+00')),
          '40/100/0/base/f', 'cancel after part of the drawn points expired: 40 back');
SELECT is((SELECT format('%s/%s', detail->>'expired_before_cancel',
                         (SELECT string_agg(l.points || '@' || l.expires_at, ',') FROM loyalty.lot l
                           WHERE l.member_id = e.member_id AND l.entry_id = e.id))
             FROM loyalty.entry e WHERE member_id = pg_temp.m('d') AND idempotency_key = 'cx-d2'),
          '60/40@2027-02-01 00:00:00+00', 'detail says 60 expired before the cancel; one lot of 40');
SELECT is(pg_temp.bal(pg_temp.m('d'), '2027-01-10 00:00:00+00'), '100/0/160/60/0/base',
          'balance: 100 = 160 earned - 60 redeemed');

-- 'fresh': one new lot with a fresh expiry
DO $$BEGIN
    PERFORM loyalty.create_program('tap12_fresh', 'Fresh',
            '{"timezone": "UTC", "expiry": {"policy": "rolling", "months": 12}, "voucher_refund_expiry": "fresh"}');
    PERFORM loyalty.add_tier('tap12_fresh', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap12_fresh', 'f', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('f'), 60, 'gift', 'aw-f1', '2026-01-05 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('f'), 40, 'gift', 'aw-f2', '2026-02-01 00:00:00+00');
    PERFORM loyalty.add_reward('tap12_fresh', 'gift', 'Gift box', 100, stock => 1);
END$$;
SELECT is(pg_temp.rr('f1', pg_temp.m('f'), 'gift', 'rw-f1', '2026-03-01 00:00:00+00'),
          '-100/0/base/f/2026-03-31 00:00:00+00', 'fresh: f redeems the last gift box');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('f1'), 'cx-f1', '2026-03-10 00:00:00+00')), '100/100/0/base/f',
          'fresh: cancel gives 100 back');
SELECT is((SELECT string_agg(l.points || '@' || l.expires_at, ',') FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = pg_temp.m('f') AND e.idempotency_key = 'cx-f1'),
          '100@2027-03-10 00:00:00+00', 'fresh: one lot expiring 12 months after the cancel');
SELECT is((SELECT stock FROM loyalty.reward r JOIN loyalty.program p ON p.id = r.program_id WHERE p.code = 'tap12_fresh'),
          1::bigint, 'fresh: the stock is back');

-- ---------------------------------------------------------------------------
-- Rotation: new codes use the new key, old codes stay valid; wrong key.
-- ---------------------------------------------------------------------------
SELECT is(loyalty.rotate_voucher_key(), 2, 'rotate: key 2');
SELECT is((SELECT string_agg(key_id || ':' || current || ':' || (revoked_at IS NULL), ',' ORDER BY key_id) FROM loyalty.voucher_keys()),
          '1:false:true,2:true:true', 'voucher_keys: 2 is current, neither revoked');
SELECT is(pg_temp.rr('t4', pg_temp.m('a'), 'tshirt', 'rw-t4', '2026-06-03 00:00:00+00'), '-100/400/base/f/2026-07-03 00:00:00+00',
          'a voucher after the rotation');
SELECT is((SELECT key_id || '/' || pg_temp.key_of(code) FROM loyalty.voucher WHERE id = pg_temp.vid('t4')), '2/2',
          'it is signed with key 2 (voucher.key_id and the key id in the code)');
SELECT is(pg_temp.code('t4'), pg_temp.code_of(pg_temp.mac40(2, pg_temp.vid('t4')), 2, pg_temp.vid('t4')),
          'its code recomputed with key 2 matches');
SELECT is(pg_temp.st(pg_temp.code('sp1'), '2026-03-10 00:00:00+00') || ' ' || pg_temp.key_of(pg_temp.code('sp1')),
          'valid/00000 1', 'a key-1 code stays valid after the rotation');
-- b's coffee was issued under key 1: its id signed with key 2 is not its code
SELECT is(pg_temp.st(loyalty.voucher_code(pg_temp.vid('b1'), 2), '2026-01-20 00:00:00+00'), 'forged/LY092',
          'wrong key: the voucher''s id signed with another key is forged');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', loyalty.voucher_code(pg_temp.vid('b1'), 2), 'till-w', '2026-01-20 00:00:00+00'),
                 'LY092', NULL, 'use_voucher with a wrong-key code -> LY092');
SELECT throws_ok(format('SELECT loyalty.cancel_voucher(%L, %L, %L)', loyalty.voucher_code(pg_temp.vid('b1'), 2), 'cx-w', '2026-01-20 00:00:00+00'),
                 'LY092', NULL, 'cancel_voucher with a wrong-key code -> LY092');

-- ---------------------------------------------------------------------------
-- Offline bundle: a derived store key and a tag per outstanding voucher.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap12_b', 'Bundle', '{"timezone": "UTC"}');
    PERFORM loyalty.add_tier('tap12_b', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap12_b', 'h', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('h'), 100, 'gift', 'aw-h', '2026-01-01 00:00:00+00');
    PERFORM loyalty.add_reward('tap12_b', 'pass', 'Day pass', 10, grants => '{"amount_off": 5}');
    PERFORM loyalty.add_reward('tap12_b', 'flash', 'Flash deal', 10, voucher_valid_days => 1);
END$$;
SELECT is(pg_temp.rr('h1', pg_temp.m('h'), 'pass', 'rw-h1', '2026-01-02 00:00:00+00') || ' ' ||
          pg_temp.rr('h2', pg_temp.m('h'), 'pass', 'rw-h2', '2026-01-02 00:00:01+00') || ' ' ||
          pg_temp.rr('h3', pg_temp.m('h'), 'pass', 'rw-h3', '2026-01-02 00:00:02+00') || ' ' ||
          pg_temp.rr('h4', pg_temp.m('h'), 'flash', 'rw-h4', '2026-01-02 00:00:03+00') || ' ' ||
          pg_temp.rr('h5', pg_temp.m('h'), 'pass', 'rw-h5', '2026-01-02 00:00:04+00'),
          '-10/90/base/f/2026-02-01 00:00:00+00 -10/80/base/f/2026-02-01 00:00:01+00 -10/70/base/f/2026-02-01 00:00:02+00 '
          '-10/60/base/f/2026-01-03 00:00:03+00 -10/50/base/f/2026-02-01 00:00:04+00', 'five vouchers for the bundle');
SELECT is((SELECT replayed FROM loyalty.use_voucher(pg_temp.code('h2'), 'till-h', '2026-01-03 00:00:00+00')), false, 'h2 used');
SELECT is(pg_temp.rc(loyalty.cancel_voucher(pg_temp.code('h3'), 'cx-h3', '2026-01-03 00:00:00+00')), '10/60/0/base/f', 'h3 cancelled');
CREATE TEMP TABLE bundle AS SELECT loyalty.voucher_bundle('tap12_b', 'store-7', '2026-01-05 00:00:00+00') b;
SELECT is((SELECT format('%s/%s/%s/%s/%s', b->'format', b->>'program', b->>'store', b->'key_id', b->>'generated_at') FROM bundle),
          '1/tap12_b/store-7/2/2026-01-05 00:00:00+00', 'bundle header: format 1, the current key id');
SELECT is((SELECT b->>'store_key' FROM bundle),
          (SELECT encode(hmac('store:tap12_b:store-7'::bytea, secret, 'sha256'), 'hex') FROM loyalty.voucher_key WHERE id = 2),
          'store_key = HMAC-SHA256(current key, ''store:tap12_b:store-7''), recomputed with pgcrypto');
SELECT is((SELECT array_agg((v->>'voucher_id')::bigint ORDER BY ord) FROM bundle, jsonb_array_elements(b->'vouchers') WITH ORDINALITY x(v, ord)),
          ARRAY[pg_temp.vid('h1'), pg_temp.vid('h5')], 'only the outstanding vouchers: used, cancelled and expired are absent');
SELECT is((SELECT count(*) FILTER (WHERE v->>'tag' = left(encode(hmac(convert_to(pg_temp.norm(pg_temp.code(l)), 'UTF8'), decode(b->>'store_key', 'hex'), 'sha256'), 'hex'), 32))
             FROM bundle, jsonb_array_elements(b->'vouchers') v, (VALUES ('h1'), ('h5')) c(l)
            WHERE pg_temp.vid(l) = (v->>'voucher_id')::bigint),
          2::bigint, 'each tag = first 16 bytes of HMAC-SHA256(store_key, code without dashes)');
SELECT is((SELECT format('%s/%s/%s', v->>'reward', v->'grants', v->>'expires_at') FROM bundle, jsonb_array_elements(b->'vouchers') v
            WHERE (v->>'voucher_id')::bigint = pg_temp.vid('h1')),
          'pass/{"amount_off": 5}/2026-02-01 00:00:00+00', 'bundle entry: reward, grants, expiry');
SELECT ok((SELECT b::text !~* (SELECT string_agg(encode(secret, 'hex'), '|') FROM loyalty.voucher_key) FROM bundle),
          'the bundle holds no signing key');

-- ---------------------------------------------------------------------------
-- The application role cannot read keys but can redeem and use.
-- ---------------------------------------------------------------------------
SELECT pg_temp.m('a') AS mid_a \gset
CREATE ROLE tap12_app NOLOGIN;
GRANT USAGE ON SCHEMA loyalty TO tap12_app;
GRANT EXECUTE ON FUNCTION loyalty.redeem_reward(bigint, text, text, timestamptz),
                          loyalty.use_voucher(text, text, timestamptz) TO tap12_app;
SET LOCAL ROLE tap12_app;
SELECT throws_ok('SELECT * FROM loyalty.voucher_key', '42501', NULL, 'app role: SELECT on voucher_key -> 42501');
SELECT throws_ok('SELECT loyalty.voucher_code(1, 1)', '42501', NULL, 'app role: voucher_code -> 42501');
SELECT throws_ok('SELECT * FROM loyalty.voucher', '42501', NULL, 'app role: SELECT on voucher -> 42501');
SELECT lives_ok(format($$SELECT loyalty.redeem_reward(%s, 'tshirt', 'rw-app', '2026-06-04 00:00:00+00')$$, :mid_a),
                'app role: redeem_reward works');
RESET ROLE;
SELECT is((SELECT v.key_id || '/' || r.code FROM loyalty.voucher v JOIN loyalty.entry e ON e.member_id = v.member_id AND e.id = v.redeem_entry_id
             JOIN loyalty.reward r ON r.id = v.reward_id WHERE e.member_id = pg_temp.m('a') AND e.idempotency_key = 'rw-app'),
          '2/tshirt', 'the app role''s voucher was issued with key 2');

-- ---------------------------------------------------------------------------
-- Revocation: codes of a revoked key are refused (LY093); no key left: LY097.
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.revoke_voucher_key(1)$$, 'revoke key 1');
SELECT is((SELECT format('%s/%s/%s', status, sqlstate, coalesce(voucher_id::text, 'null')) FROM loyalty.check_voucher(pg_temp.code('sp1'), '2026-03-10 00:00:00+00')),
          'revoked/LY093/null', 'check_voucher: a key-1 code is revoked');
SELECT throws_ok(format('SELECT * FROM loyalty.use_voucher(%L, %L, %L)', pg_temp.code('sp1'), 'till-r', '2026-03-10 00:00:00+00'),
                 'LY093', NULL, 'use_voucher on a revoked-key code -> LY093');
SELECT is(pg_temp.st(pg_temp.code('t4'), '2026-06-10 00:00:00+00'), 'valid/00000', 'a key-2 code is still valid');
SELECT is((SELECT string_agg(key_id || ':' || current || ':' || (revoked_at IS NOT NULL), ',' ORDER BY key_id) FROM loyalty.voucher_keys()),
          '1:false:true,2:true:false', 'voucher_keys: 1 revoked, 2 current');
SELECT lives_ok($$SELECT loyalty.revoke_voucher_key(2)$$, 'revoke key 2');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.m('a'), 'tshirt', 'rw-nokey', '2026-06-05 00:00:00+00')$$,
                 'LY097', NULL, 'no active key: redeem_reward -> LY097');
SELECT is(pg_temp.nentries(pg_temp.m('a')), 9::bigint, 'the refused redeem wrote nothing');
SELECT is(pg_temp.st(pg_temp.code('t4'), '2026-06-10 00:00:00+00'), 'revoked/LY093', 'key-2 codes now revoked too');

-- ---------------------------------------------------------------------------
-- Codes of 1M voucher ids are unique.
-- ---------------------------------------------------------------------------
SELECT is((SELECT count(DISTINCT c) FROM unnest(loyalty.voucher_codes(1, 1000000, 1)) c), 1000000::bigint,
          '1,000,000 voucher ids: 1,000,000 distinct codes');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
