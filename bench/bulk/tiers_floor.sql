-- Floor of tier re-evaluation: one UPDATE setting every member's tier from the
-- spend of the window that just ended (2026: none, so all drop to base).
UPDATE fb_tmember m
   SET tier = CASE WHEN coalesce((SELECT sum(e.amount) FROM fb_tentry e
                                   WHERE e.member_id = m.id
                                     AND e.at >= '2026-01-01' AND e.at < '2027-01-01'), 0) >= 100
                   THEN 1 ELSE 0 END;
