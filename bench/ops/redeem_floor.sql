\set m random(1, :members)
WITH e AS (INSERT INTO floor_entry (member_id, points, at, key)
           VALUES (:m, 150, now(), 'f' || :client_id || '-' || nextval('floor_entry_id_seq')) RETURNING id),
     l AS (INSERT INTO floor_lot (member_id, entry_id, points, remaining, expires_at)
           SELECT :m, id, 150, 150, now() + interval '12 months' FROM e)
UPDATE floor_member SET available = available + 150 WHERE id = :m;
BEGIN;
SELECT available FROM floor_member WHERE id = :m FOR UPDATE;
INSERT INTO floor_entry (member_id, points, at, key) VALUES (:m, -120, now(), 'r' || :client_id || '-' || nextval('floor_entry_id_seq'));
UPDATE floor_lot SET remaining = remaining - 50 WHERE member_id = :m AND id = (SELECT id FROM floor_lot WHERE member_id = :m AND remaining > 0 ORDER BY expires_at, id LIMIT 1);
UPDATE floor_lot SET remaining = remaining - 50 WHERE member_id = :m AND id = (SELECT id FROM floor_lot WHERE member_id = :m AND remaining > 0 ORDER BY expires_at, id LIMIT 1);
UPDATE floor_lot SET remaining = remaining - 20 WHERE member_id = :m AND id = (SELECT id FROM floor_lot WHERE member_id = :m AND remaining > 0 ORDER BY expires_at, id LIMIT 1);
UPDATE floor_member SET available = available - 120 WHERE id = :m;
COMMIT;
