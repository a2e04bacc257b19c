-- 1.0 -> 1.1, maintenance (src/expiry_batch.c).
-- member_due gains id: maintenance's batches come in (next_transition_at, id) order straight
-- from the index, with no sort of every due member (a plan stale statistics chose per batch).
DROP INDEX loyalty.member_due;
CREATE INDEX member_due ON loyalty.member (next_transition_at, id) WHERE next_transition_at < 'infinity';
