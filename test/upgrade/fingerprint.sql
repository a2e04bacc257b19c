-- fingerprint.sql: what the workload left behind, independent of when it was written
-- (ids are included: the same operations in the same order give the same ids).
\set ON_ERROR_STOP 1
SET timezone = 'UTC';
SELECT 'member ' || m.external_ref, m.id, m.available, m.pending, m.lifetime_earned, m.redeemed, m.expired,
       t.code AS tier, m.qualifying, m.next_transition_at
  FROM loyalty.member m JOIN loyalty.tier t ON t.id = m.tier_id ORDER BY m.external_ref;
SELECT 'balance ' || m.external_ref, b.*
  FROM loyalty.member m, loyalty.balance(m.id, '2026-09-01 00:00:00+00') b ORDER BY m.external_ref;
SELECT 'entry ' || m.external_ref, e.id, e.kind, e.points, e.at, e.idempotency_key, e.amount,
       e.available_after, e.pending_after, e.tier_after
  FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id ORDER BY m.external_ref, e.id;
-- what statement() shows: an earn written by 1.0 (its detail in full) and one written since
-- (only what the entry and the defaults do not say) must read the same
SELECT 'statement ' || m.external_ref, s.entry_id, s.kind, s.detail
  FROM loyalty.member m, loyalty.statement(m.id) s ORDER BY m.external_ref, s.at, s.entry_id;
SELECT 'lot ' || m.external_ref, l.id, l.entry_id, l.points, l.remaining, l.available_at, l.expires_at, l.state
  FROM loyalty.lot l JOIN loyalty.member m ON m.id = l.member_id ORDER BY m.external_ref, l.id;
SELECT 'tier change ' || m.external_ref, c.at, c.from_tier, c.to_tier, c.reason
  FROM loyalty.tier_change c JOIN loyalty.member m ON m.id = c.member_id ORDER BY m.external_ref, c.id;
SELECT 'voucher ' || v.id, v.member_id, v.reward_id, v.expires_at, v.used_at, v.cancelled_at
  FROM loyalty.voucher v ORDER BY v.id;
SELECT 'invariant violated', * FROM loyalty.check_invariants();
