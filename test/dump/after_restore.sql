-- after_restore.sql: operations keep working on the restored database: new rows get
-- new ids (the sequences were restored), old vouchers verify with the restored keys,
-- idempotency keys still replay.
\set ON_ERROR_STOP 1
SET timezone = 'UTC';
SELECT loyalty.enroll('up', 'm8', '2026-08-10 00:00:00+00') > (SELECT max(id) FROM loyalty.member WHERE external_ref <> 'm8')
       AS new_member_id_is_fresh;
SELECT (loyalty.earn(loyalty.member_id('up', 'm8'), 200, 'e1', '2026-08-10 00:00:00+00')).entry_id;
SELECT (loyalty.earn(loyalty.member_id('up', 'm4'), 30, 'e9', '2026-08-11 00:00:00+00')).entry_id;
SELECT (loyalty.award(loyalty.member_id('up', 'm8'), 100, 'welcome', 'a1', '2026-08-11 00:00:00+00')).available;
SELECT (loyalty.redeem_reward(loyalty.member_id('up', 'm8'), 'mug', 'v1', '2026-08-12 00:00:00+00')).voucher_id;
SELECT loyalty.add_tier('up', 'gold', 'Gold', 5000, 2);
SELECT loyalty.create_program('up2', 'After restore');
SELECT loyalty.add_plan('up', 'club2', 'Club 2', 20, 12);
SELECT loyalty.add_reward('up', 'cap', 'Cap', 10);
SELECT loyalty.rotate_voucher_key();
-- a voucher issued before the dump, signed with the first key: still valid, usable once
SELECT (loyalty.use_voucher(v.code, 'u9', '2026-08-13 00:00:00+00')).replayed
  FROM loyalty.voucher v JOIN loyalty.entry e ON e.member_id = v.member_id AND e.id = v.redeem_entry_id
 WHERE e.idempotency_key = 'v9';
SELECT (loyalty.earn(loyalty.member_id('up', 'm1'), 100, 'e1', '2026-01-05 00:00:00+00')).replayed AS replay;
SELECT loyalty.run_maintenance('2027-06-01 00:00:00+00');
-- the outbox carries on: positions and cursors were restored
SELECT e.id, e.kind, e.member_id FROM loyalty.next_events('crm', 1000) e;
SELECT loyalty.ack_events('crm', (SELECT max(id) FROM loyalty.outbox));
SELECT loyalty.run_maintenance('2027-07-01 00:00:00+00') -> 'reminders';
