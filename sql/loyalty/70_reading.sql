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

