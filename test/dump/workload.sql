-- workload.sql: data for the dump test, on top of test/upgrade/workload_{1,2}.sql
-- (program, tiers, plan, reward, members, ledger, lots, subscription, vouchers): a second
-- signing key with a voucher signed by it, a cancelled voucher and a pinned tier.
\set ON_ERROR_STOP 1
SET timezone = 'UTC';
SELECT loyalty.rotate_voucher_key();
SELECT (loyalty.award(loyalty.member_id('up', 'm4'), 500, 'goodwill', 'a9', '2026-08-02 00:00:00+00')).available;
SELECT (loyalty.redeem_reward(loyalty.member_id('up', 'm4'), 'mug', 'v9', '2026-08-03 00:00:00+00')).voucher_id;
SELECT (loyalty.redeem_reward(loyalty.member_id('up', 'm4'), 'mug', 'v10', '2026-08-03 00:00:00+00')).voucher_id;
SELECT (loyalty.cancel_voucher(v.code, 'c10', '2026-08-04 00:00:00+00')).available
  FROM loyalty.voucher v JOIN loyalty.entry e ON e.member_id = v.member_id AND e.id = v.redeem_entry_id
 WHERE e.idempotency_key = 'v10';
SELECT loyalty.set_tier(loyalty.member_id('up', 'm5'), 'silver', '2027-01-01 00:00:00+00', 'status match',
                        '2026-08-05 00:00:00+00');
-- outbox: reminders sent, a consumer part-way through the events
SELECT loyalty.set_expiry_reminders('up', '{30,7}');
SELECT loyalty.run_maintenance('2026-08-20 00:00:00+00') -> 'reminders';
SELECT loyalty.ack_events('crm', (SELECT max(id) FROM loyalty.next_events('crm', 5)));
