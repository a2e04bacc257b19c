\set m random(1, :members)
WITH e AS (INSERT INTO floor_entry (member_id, points, at, key)
           VALUES (:m, 12, now(), 'e' || :client_id || '-' || nextval('floor_entry_id_seq')) RETURNING id),
     l AS (INSERT INTO floor_lot (member_id, entry_id, points, remaining, expires_at)
           SELECT :m, id, 12, 12, now() + interval '12 months' FROM e)
UPDATE floor_member SET available = available + 12 WHERE id = :m;
