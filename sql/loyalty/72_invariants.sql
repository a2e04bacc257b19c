-- ---------------------------------------------------------------------------
-- check_invariants(): the ledger's rules, checked over every member (1.1: in a
-- file of its own, so that the 1.0 -> 1.1 upgrade replaces it through a symlink)
-- ---------------------------------------------------------------------------

-- Every rule the ledger must obey; no rows means all hold. It stands for the
-- foreign keys and CHECKs the ledger tables and the member's tier columns do not
-- carry (30_ledger.sql): no orphan entry, lot, draw or tier change, and every
-- tier a member row names is one of its program's (tier_id is NOT NULL; the
-- others may be NULL).
CREATE FUNCTION loyalty.check_invariants()
    RETURNS TABLE (member_id bigint, invariant text, detail text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH lots AS (
        SELECT l.member_id,
               coalesce(sum(l.remaining) FILTER (WHERE l.state = 'a'), 0) AS a,
               coalesce(sum(l.remaining) FILTER (WHERE l.state = 'p'), 0) AS p
          FROM loyalty.lot l GROUP BY l.member_id
    ), ledger AS (
        SELECT e.member_id,
               sum(e.points) AS total,
               coalesce(sum(e.points) FILTER (WHERE e.kind IN ('earn', 'award', 'transfer_in', 'reverse',
                                                                  'subscribe', 'renew')
                                                 OR (e.kind = 'adjust' AND e.points > 0)), 0) AS earned,
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out', 'reward_refund')
                                                  OR (e.kind = 'adjust' AND e.points < 0)), 0) AS spent,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0) AS gone
          FROM loyalty.entry e GROUP BY e.member_id
    ), draws AS (
        SELECT d.member_id, d.lot_id, sum(d.points) AS drawn
          FROM loyalty.lot_draw d GROUP BY d.member_id, d.lot_id
    ), members AS (
        SELECT m.id, m.available, m.pending, m.lifetime_earned, m.redeemed, m.expired,
               coalesce(lo.a, 0) AS lot_a, coalesce(lo.p, 0) AS lot_p,
               coalesce(le.total, 0) AS total, coalesce(le.earned, 0) AS earned,
               coalesce(le.spent, 0) AS spent, coalesce(le.gone, 0) AS gone
          FROM loyalty.member m
          LEFT JOIN lots lo ON lo.member_id = m.id
          LEFT JOIN ledger le ON le.member_id = m.id
    )
    SELECT id, 'available equals the available lots',
           format('available %s, lots %s', available, lot_a)
      FROM members WHERE available <> lot_a
    UNION ALL
    SELECT id, 'pending equals the pending lots', format('pending %s, lots %s', pending, lot_p)
      FROM members WHERE pending <> lot_p
    UNION ALL
    SELECT id, 'ledger sum equals available + pending',
           format('ledger %s, available %s, pending %s', total, available, pending)
      FROM members WHERE total <> available + pending
    UNION ALL
    SELECT id, 'lifetime_earned - redeemed - expired equals available + pending',
           format('%s - %s - %s vs %s + %s', lifetime_earned, redeemed, expired, available, pending)
      FROM members WHERE lifetime_earned - redeemed - expired <> available + pending
    UNION ALL
    SELECT id, 'counters equal the ledger',
           format('earned %s/%s, redeemed %s/%s, expired %s/%s',
                  lifetime_earned, earned, redeemed, spent, expired, gone)
      FROM members WHERE lifetime_earned <> earned OR redeemed <> spent OR expired <> gone
    UNION ALL
    SELECT id, 'pending is never negative', format('pending %s', pending)
      FROM members WHERE pending < 0
    UNION ALL
    SELECT l.member_id, 'lot remaining equals points minus draws',
           format('lot %s: points %s, drawn %s, remaining %s', l.id, l.points, coalesce(d.drawn, 0), l.remaining)
      FROM loyalty.lot l LEFT JOIN draws d ON d.member_id = l.member_id AND d.lot_id = l.id
     WHERE l.remaining <> l.points - coalesce(d.drawn, 0)
    UNION ALL
    SELECT l.member_id, 'lot remaining within its points',
           format('lot %s: points %s, remaining %s', l.id, l.points, l.remaining)
      FROM loyalty.lot l
     WHERE (l.points > 0 AND (l.remaining < 0 OR l.remaining > l.points))
        OR (l.points < 0 AND (l.remaining > 0 OR l.remaining < l.points))
    UNION ALL
    SELECT l.member_id, 'lot state is p, a or x, and closed lots are empty',
           format('lot %s: state %s, remaining %s', l.id, l.state, l.remaining)
      FROM loyalty.lot l
     WHERE l.state NOT IN ('p', 'a', 'x') OR (l.state = 'x' AND l.remaining <> 0) OR l.points = 0
    UNION ALL
    SELECT e.member_id, 'every entry belongs to a member', format('entry %s', e.id)
      FROM loyalty.entry e WHERE NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = e.member_id)
    UNION ALL
    SELECT l.member_id, 'every lot belongs to an entry of its member', format('lot %s, entry %s', l.id, l.entry_id)
      FROM loyalty.lot l
     WHERE NOT EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = l.member_id AND e.id = l.entry_id)
    UNION ALL
    SELECT d.member_id, 'every draw names an entry and a lot of its member',
           format('entry %s, lot %s', d.entry_id, d.lot_id)
      FROM loyalty.lot_draw d
     WHERE NOT EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = d.member_id AND e.id = d.entry_id)
        OR NOT EXISTS (SELECT FROM loyalty.lot l WHERE l.member_id = d.member_id AND l.id = d.lot_id)
    UNION ALL
    SELECT e.member_id, 'idempotency keys are unique per member', e.idempotency_key
      FROM loyalty.entry e WHERE e.idempotency_key IS NOT NULL
     GROUP BY e.member_id, e.idempotency_key HAVING count(*) > 1
    UNION ALL
    SELECT c.member_id, 'every tier change belongs to a member', format('tier change %s', c.id)
      FROM loyalty.tier_change c WHERE NOT EXISTS (SELECT FROM loyalty.member m WHERE m.id = c.member_id)
    UNION ALL
    SELECT m.id, 'every tier column names a tier of the member''s program',
           format('%s %s is not a tier of program %s', t.col, t.tier_id, m.program_id)
      FROM loyalty.member m
     CROSS JOIN LATERAL (VALUES ('tier_id', m.tier_id), ('earned_tier_id', m.earned_tier_id),
                                ('grace_tier_id', m.grace_tier_id), ('pinned_tier_id', m.pinned_tier_id),
                                ('granted_tier_id', m.granted_tier_id)) t(col, tier_id)
     WHERE t.tier_id IS NOT NULL
       AND NOT EXISTS (SELECT FROM loyalty.tier x WHERE x.id = t.tier_id AND x.program_id = m.program_id)
    ORDER BY 1, 2;
END;
COMMENT ON FUNCTION loyalty.check_invariants() IS
    'the ledger invariants that do not hold, one row per violation (none: all hold)';
