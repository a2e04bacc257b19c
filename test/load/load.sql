-- One client step of the concurrent load (pgbench -M prepared): a random operation, then,
-- once it has returned, its outcome written to the journal in a separate transaction.
SELECT res, line FROM lt.step(:client_id, :phase, :hot) \gset
SELECT lt.record(:res)
