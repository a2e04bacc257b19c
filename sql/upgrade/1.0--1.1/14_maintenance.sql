-- 1.0 -> 1.1: run_maintenance runs without JIT (see 62_maintenance_api.sql): with its
-- enable_seqscan = off, a sequential scan of a small table was JIT-compiled on every batch.
ALTER FUNCTION loyalty.run_maintenance(timestamptz, integer) SET jit = off;

-- member_due gains id: maintenance's batches come in (next_transition_at, id) order straight
-- from the index, with no sort of every due member (a plan stale statistics chose per batch).
DROP INDEX loyalty.member_due;
CREATE INDEX member_due ON loyalty.member (next_transition_at, id) WHERE next_transition_at < 'infinity';
