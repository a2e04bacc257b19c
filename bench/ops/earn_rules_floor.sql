\set m random(1, :members)
\set k random(1, 20)
WITH lines (category, amount) AS (
       VALUES ('c' || :k, 2.50), ('c' || (:k % 20 + 1), 2.50), ('c' || ((:k + 5) % 20 + 1), 2.50),
              ('other', 2.50), ('other', 2.50)),
     p AS (SELECT sum(floor(l.amount * coalesce(r.multiplier, 1)))::bigint AS points
             FROM lines l LEFT JOIN floor_rule r ON r.category = l.category),
     e AS (INSERT INTO floor_entry (member_id, points, at, key)
           SELECT :m, points, now(), 'q' || :client_id || '-' || nextval('floor_entry_id_seq') FROM p
           RETURNING id, points),
     l AS (INSERT INTO floor_lot (member_id, entry_id, points, remaining, expires_at)
           SELECT :m, id, points, points, now() + interval '12 months' FROM e)
UPDATE floor_member SET available = available + (SELECT points FROM e) WHERE id = :m;
