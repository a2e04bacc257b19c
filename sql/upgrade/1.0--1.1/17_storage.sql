-- 1.0 -> 1.1: storage per earn (issue 8). An earn's detail keeps only what its entry
-- and the defaults do not say (src/operations.c earn_detail); statement() puts the rest
-- back, for entries written before and after the upgrade alike: its 1.0 definition is
-- dropped here and 71_statement.sql (a symlink) creates the 1.1 one; 98_security.sql grants it.
-- No request or detail is NULL instead of {} (catalog only: no rewrite; rows written
-- before keep their {}, which replays, refunds and statement() read as they read NULL).
ALTER TABLE loyalty.entry ALTER COLUMN request DROP NOT NULL, ALTER COLUMN request DROP DEFAULT,
                          ALTER COLUMN detail DROP NOT NULL, ALTER COLUMN detail DROP DEFAULT;
-- lot_live without id in its key (30_ledger.sql): rebuilt, from the open lots only.
DROP INDEX loyalty.lot_live;
CREATE INDEX lot_live ON loyalty.lot (member_id, expires_at) WHERE state <> 'x';
DROP FUNCTION loyalty.statement(bigint, timestamptz, timestamptz);
