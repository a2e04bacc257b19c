-- bench/bulk/ledger_floor_load.sql: copies program :program's members and all their rows
-- (entries, lots, draws, tier changes, outbox events) from the extension's tables into the
-- same-rows floor's (ledger_floor_setup.sql), as they are just before the case runs: the
-- floor finds the same members due, the same lots and figures, and indexes of the same size
-- to insert into. Reads the extension's tables only. Untimed; run before the issue's floor.
SELECT set_config('bench.program', :'program', false);
CREATE TEMP TABLE fl_load_member AS
SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
 WHERE p.code = current_setting('bench.program');
INSERT INTO fl_member SELECT m.* FROM loyalty.member m JOIN fl_load_member s USING (id) ORDER BY m.id;
INSERT INTO fl_entry SELECT e.* FROM loyalty.entry e JOIN fl_load_member s ON s.id = e.member_id ORDER BY e.id;
INSERT INTO fl_lot SELECT l.* FROM loyalty.lot l JOIN fl_load_member s ON s.id = l.member_id ORDER BY l.id;
INSERT INTO fl_lot_draw SELECT d.* FROM loyalty.lot_draw d JOIN fl_load_member s ON s.id = d.member_id;
INSERT INTO fl_tier_change SELECT c.* FROM loyalty.tier_change c JOIN fl_load_member s ON s.id = c.member_id ORDER BY c.id;
INSERT INTO fl_outbox SELECT o.* FROM loyalty.outbox o JOIN fl_load_member s ON s.id = o.member_id ORDER BY o.id;
DROP TABLE fl_load_member;
-- new ids follow the copied ones, as the extension's follow its own
SELECT setval('fl_entry_id_seq', coalesce((SELECT max(id) FROM fl_entry), 0) + 1, false),
       setval('fl_tier_change_id_seq', coalesce((SELECT max(id) FROM fl_tier_change), 0) + 1, false),
       setval('fl_outbox_id_seq', coalesce((SELECT max(id) FROM fl_outbox), 0) + 1, false);
VACUUM ANALYZE fl_member, fl_entry, fl_lot, fl_lot_draw, fl_tier_change, fl_outbox;
CHECKPOINT;
