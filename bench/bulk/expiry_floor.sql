-- Floor of expiry: close every due lot in one UPDATE and take its points off
-- each member's balance in one grouped UPDATE.
WITH due AS (UPDATE fb_lot l SET remaining = 0
               FROM (SELECT member_id, id, remaining FROM fb_lot
                      WHERE expires_at <= '2026-03-01' AND remaining > 0 FOR UPDATE) d
              WHERE l.member_id = d.member_id AND l.id = d.id
             RETURNING d.member_id, d.remaining)
UPDATE fb_member m SET available = m.available - g.points
  FROM (SELECT member_id, sum(remaining) AS points FROM due GROUP BY member_id) g
 WHERE m.id = g.member_id;
