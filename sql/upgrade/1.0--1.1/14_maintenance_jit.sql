-- 1.0 -> 1.1: run_maintenance runs without JIT (see 62_maintenance_api.sql): with its
-- enable_seqscan = off, a sequential scan of a small table was JIT-compiled on every batch.
ALTER FUNCTION loyalty.run_maintenance(timestamptz, integer) SET jit = off;
