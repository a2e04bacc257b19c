-- Floor of bulk earn: one statement writing every ledger row, every lot and each
-- member's balance once.
WITH e AS (INSERT INTO fb_entry (member_id, points, at, key)
           SELECT member, floor(amount)::bigint, at, idempotency_key FROM bench_staging
           RETURNING member_id, id, points, at),
     l AS (INSERT INTO fb_lot (member_id, entry_id, points, remaining, expires_at)
           SELECT member_id, id, points, points, at + interval '12 months' FROM e
           RETURNING member_id, points)
UPDATE fb_member m SET available = m.available + g.points
  FROM (SELECT member_id, sum(points) AS points FROM l GROUP BY member_id) g
 WHERE m.id = g.member_id;
