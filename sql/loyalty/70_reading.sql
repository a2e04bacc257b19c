-- ---------------------------------------------------------------------------
-- Reading (SQL): balances as of any business time, statements, invariants
-- ---------------------------------------------------------------------------

-- Entries that count as member activity for the inactivity expiry policy.
CREATE FUNCTION loyalty.is_activity(kind loyalty.entry_kind) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN kind IN ('earn', 'award', 'redeem', 'adjust', 'transfer_in', 'transfer_out', 'subscribe', 'renew');

CREATE FUNCTION loyalty.balance(member bigint, at timestamptz DEFAULT now())
    RETURNS TABLE (available bigint, pending bigint, lifetime_earned bigint, redeemed bigint,
                   expired bigint, tier text, qualifying numeric, next_expiry timestamptz,
                   next_expiry_points bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off
AS $$
DECLARE
    m        loyalty.member;
    p        loyalty.program;
    deadline timestamptz;
    wstart   timestamptz;
BEGIN
    IF balance.member IS NULL OR balance.at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN balance.member IS NULL THEN 'member' ELSE 'at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF NOT isfinite(balance.at) THEN
        RAISE EXCEPTION 'business time must be finite' USING ERRCODE = 'LY033';
    END IF;
    SELECT * INTO m FROM loyalty.member mm WHERE mm.id = balance.member;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'member % does not exist', balance.member USING ERRCODE = 'LY002';
    END IF;
    SELECT * INTO p FROM loyalty.program pp WHERE pp.id = m.program_id;

    IF p.expiry_policy = 'inactivity' THEN
        SELECT loyalty.add_months_local(max(e.at), p.expiry_months, p.timezone) INTO deadline
          FROM loyalty.entry e
         WHERE e.member_id = m.id AND e.at <= balance.at AND loyalty.is_activity(e.kind);
    END IF;
    wstart := CASE p.tier_window
        WHEN 'lifetime' THEN '-infinity'::timestamptz
        WHEN 'calendar_year' THEN (date_trunc('year', balance.at AT TIME ZONE p.timezone)) AT TIME ZONE p.timezone
        ELSE loyalty.add_months_local(balance.at, -p.tier_window_months, p.timezone) + interval '1 microsecond'
    END;

    RETURN QUERY
    WITH lots AS (
        SELECT l.points, l.available_at, l.expires_at,
               l.points - coalesce((SELECT sum(d.points) FROM loyalty.lot_draw d
                                     WHERE d.member_id = l.member_id AND d.lot_id = l.id
                                       AND d.at <= balance.at), 0) AS rem
          FROM loyalty.lot l
         WHERE l.member_id = m.id AND l.at <= balance.at
    ), classified AS (
        SELECT l.rem,
               CASE WHEN l.points < 0 THEN NULL ELSE coalesce(l.expires_at, deadline) END AS expiry,
               CASE WHEN l.points < 0 THEN 'a'
                    WHEN coalesce(l.expires_at, deadline) <= balance.at THEN 'x'
                    WHEN l.available_at > balance.at THEN 'p'
                    ELSE 'a' END AS st
          FROM lots l
    ), sums AS (
        SELECT coalesce(sum(c.rem) FILTER (WHERE c.st = 'a'), 0)::bigint AS avail,
               coalesce(sum(c.rem) FILTER (WHERE c.st = 'p'), 0)::bigint AS pend,
               coalesce(sum(c.rem) FILTER (WHERE c.st = 'x'), 0)::bigint AS unswept,
               coalesce(-sum(c.rem) FILTER (WHERE c.st = 'a' AND c.rem < 0), 0)::bigint AS debt,
               min(c.expiry) FILTER (WHERE c.st <> 'x' AND c.rem > 0) AS next_exp
          FROM classified c
    ), ledger AS (
        SELECT coalesce(sum(e.points) FILTER (WHERE e.kind IN ('earn', 'award', 'transfer_in', 'reverse',
                                                                  'subscribe', 'renew')
                                                 OR (e.kind = 'adjust' AND e.points > 0)), 0)::bigint AS earned,
               coalesce(-sum(e.points) FILTER (WHERE e.kind IN ('redeem', 'transfer_out', 'reward_refund')
                                                  OR (e.kind = 'adjust' AND e.points < 0)), 0)::bigint AS spent,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0)::bigint AS gone,
               coalesce(sum(e.qualifying) FILTER (WHERE e.qualifying_at >= wstart
                                                     AND e.qualifying_at <= balance.at), 0) AS q
          FROM loyalty.entry e
         WHERE e.member_id = m.id AND e.at <= balance.at
    )
    -- points that expired while a debt was owed settle the debt first
    SELECT s.avail + least(s.unswept, s.debt),
           s.pend,
           l.earned,
           l.spent,
           l.gone + s.unswept - least(s.unswept, s.debt),
           coalesce((SELECT tc.to_tier FROM loyalty.tier_change tc
                      WHERE tc.member_id = m.id AND tc.at <= balance.at
                      ORDER BY tc.at DESC, tc.id DESC LIMIT 1),
                    (SELECT t.code FROM loyalty.tier t
                      WHERE t.program_id = m.program_id AND t.threshold = 0)),
           l.q,
           s.next_exp,
           (SELECT coalesce(sum(c.rem), 0)::bigint FROM classified c
             WHERE c.st <> 'x' AND c.rem > 0 AND c.expiry = s.next_exp)
      FROM sums s, ledger l;
END
$$;
COMMENT ON FUNCTION loyalty.balance(bigint, timestamptz) IS
    'a member''s balances as of business time `at`, computed from the ledger and lots';

-- Every rule the ledger must obey; no rows means all hold.
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
    ORDER BY 1, 2;
END;
COMMENT ON FUNCTION loyalty.check_invariants() IS
    'the ledger invariants that do not hold, one row per violation (none: all hold)';

