-- bench/ops/storage_setup.sql: the storage case's own database: the program and
-- :members members (members.sql), with no lots or entries yet, and the floor's tables
-- empty. The case compares what the same earns add on both sides to freshly created
-- relations: sizes measured on tables that earlier cases had filled moved with the
-- free space those left behind.
\ir members.sql
\ir floor_tables.sql
INSERT INTO floor_member SELECT g, 0 FROM generate_series(1, :members) g;
VACUUM ANALYZE;
