WITH e AS (INSERT INTO floor_entry (member_id, points, at, key)
           VALUES (1, 12, now(), 'h' || :client_id || '-' || nextval('floor_entry_id_seq')) RETURNING id),
     l AS (INSERT INTO floor_lot (member_id, entry_id, points, remaining, expires_at)
           SELECT 1, id, 12, 12, now() + interval '12 months' FROM e)
UPDATE floor_member SET available = available + 12 WHERE id = 1;
