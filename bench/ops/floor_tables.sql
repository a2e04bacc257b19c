-- bench/ops/floor_tables.sql: the plain-SQL floor's tables: the least any correct
-- implementation must write for the same operations (a ledger row, a lot, a balance),
-- without validation, idempotency checks, tiers or expiry bookkeeping. Included by
-- setup.sql (the pgbench cases) and storage_setup.sql (the storage case's fresh database).
CREATE TABLE floor_member (id bigint PRIMARY KEY, available bigint NOT NULL DEFAULT 0) WITH (fillfactor = 80);
CREATE TABLE floor_entry (member_id bigint, id bigserial, points bigint, at timestamptz, key text,
                          PRIMARY KEY (member_id, id), UNIQUE (member_id, key));
CREATE TABLE floor_lot (member_id bigint, id bigserial, entry_id bigint, points bigint, remaining bigint,
                        expires_at timestamptz, PRIMARY KEY (member_id, id)) WITH (fillfactor = 90);
