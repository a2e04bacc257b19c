-- workload_2.sql: the part of the upgrade workload that runs AFTER the upgrade (on the
-- upgraded database, and on the fresh one that ran workload_1.sql on 1.1).
\set ON_ERROR_STOP 1
SET timezone = 'UTC';
-- releases the March batch, then expires the January lots (2026-07-09 onwards)
SELECT loyalty.run_maintenance('2026-03-10 00:00:00+00');
SELECT (loyalty.redeem(loyalty.member_id('up', 'm6'), 100, 'r2', '2026-04-01 00:00:00+00')).available;
SELECT (loyalty.redeem_reward(loyalty.member_id('up', 'm5'), 'mug', 'v2', '2026-04-02 00:00:00+00')).available;
SELECT (loyalty.earn(loyalty.member_id('up', 'm2'), 20, 'e3', '2026-04-03 00:00:00+00')).pending;
SELECT loyalty.enroll('up', 'm7', '2026-04-04 00:00:00+00');
SELECT (loyalty.earn(loyalty.member_id('up', 'm7'), 400, 'e1', '2026-04-04 00:00:00+00')).tier;
SELECT (loyalty.renew(loyalty.member_id('up', 'm1'), 'rn1', '2026-04-05 00:00:00+00')).tier;
SELECT loyalty.run_maintenance('2026-08-01 00:00:00+00');
-- replays after the upgrade return the original receipts
SELECT (loyalty.earn(loyalty.member_id('up', 'm1'), 100, 'e1', '2026-01-05 00:00:00+00')).replayed;
SELECT (loyalty.redeem(loyalty.member_id('up', 'm2'), 50, 'r1', '2026-01-10 00:00:00+00')).replayed;
-- a voucher issued on 1.0, used after the upgrade
SELECT (loyalty.use_voucher(v.code, 'u1', '2026-02-01 00:00:00+00')).replayed
  FROM loyalty.voucher v JOIN loyalty.member m ON m.id = v.member_id WHERE m.external_ref = 'm3';
