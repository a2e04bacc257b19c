-- test/load/verify.sql: the checks run after the load and after each crash (schema lt).
-- lt.verify(unjournaled_allowed) returns one row per check: name, number of offending
-- rows (0 = the check holds) and an example of what is wrong; bad = -1 marks a figure
-- reported for information, not a check.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE FUNCTION lt.verify(p_unjournaled_allowed integer)
RETURNS TABLE (name text, bad bigint, example text) LANGUAGE plpgsql AS $$
BEGIN
    -- the extension's own invariants
    RETURN QUERY SELECT 'check_invariants() is empty', count(*),
        min(format('member %s: %s (%s)', c.member_id, c.invariant, c.detail))
      FROM loyalty.check_invariants() c;

    -- every acknowledged original call is in the ledger once, as the receipt said
    RETURN QUERY SELECT 'every acknowledged operation is in the ledger, as its receipt said', count(*),
        min(format('journal %s: %s %s member %s entry %s points %s', j.id, j.op, j.key, j.member, j.entry_id, j.r_points))
      FROM lt.journal j
     WHERE j.sqlstate = '00000' AND j.op NOT IN ('replay', 'badreplay')
       AND NOT EXISTS (SELECT 1 FROM loyalty.entry e
                        WHERE e.member_id = j.member AND e.id = j.entry_id AND e.idempotency_key = j.key
                          AND e.points = j.r_points
                          AND e.kind::text = CASE j.op WHEN 'transfer' THEN 'transfer_out' ELSE j.op END);
    RETURN QUERY SELECT 'every acknowledged operation is in the ledger exactly once', count(*),
        min(format('member %s key %s: %s entries', x.member_id, x.idempotency_key, x.n))
      FROM (SELECT e.member_id, e.idempotency_key, count(*) AS n FROM loyalty.entry e
             WHERE e.idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) x;
    RETURN QUERY SELECT 'the external journal (written outside the server) is in the ledger', count(*),
        min(format('line %s: %s member %s entry %s points %s', x.line, x.key, x.member, x.entry_id, x.points))
      FROM lt.ext x
     WHERE x.sqlstate = '00000' AND x.op NOT IN ('replay', 'badreplay')
       AND NOT EXISTS (SELECT 1 FROM loyalty.entry e
                        WHERE e.member_id = x.member AND e.id = x.entry_id AND e.idempotency_key = x.key
                          AND e.points = x.points);

    -- replays return the original receipt; bad replays are refused; errors write nothing
    RETURN QUERY SELECT 'replays return the original receipt (replayed = true)', count(*),
        min(format('journal %s (replay of %s): entry %s/%s points %s/%s replayed %s', j.id, o.id,
                   j.entry_id, o.entry_id, j.r_points, o.r_points, j.replayed))
      FROM lt.journal j JOIN lt.journal o ON o.id = j.replay_of
     WHERE j.op = 'replay'
       AND (j.sqlstate <> '00000' OR j.replayed IS NOT TRUE OR j.entry_id IS DISTINCT FROM o.entry_id
            OR j.r_points IS DISTINCT FROM o.r_points);
    RETURN QUERY SELECT 'a key replayed with other arguments is refused with LY020', count(*),
        min(format('journal %s: %s', j.id, j.sqlstate))
      FROM lt.journal j WHERE j.op = 'badreplay' AND j.sqlstate <> 'LY020';
    RETURN QUERY SELECT 'a refused operation (LY010/LY011/LY051) wrote nothing', count(*),
        min(format('journal %s: %s %s', j.id, j.sqlstate, j.key))
      FROM lt.journal j
     WHERE j.sqlstate IN ('LY010', 'LY011', 'LY051')
       AND EXISTS (SELECT 1 FROM loyalty.entry e WHERE e.member_id = j.member AND e.idempotency_key = j.key);

    -- nothing in the ledger that no client asked for (system entries aside); after a crash,
    -- at most one call per client can have committed without its journal row
    RETURN QUERY SELECT format('ledger entries without a journal row (at most %s)', p_unjournaled_allowed),
        greatest(count(*) - p_unjournaled_allowed, 0),
        format('%s such entries; e.g. %s', count(*), min(format('member %s entry %s %s %s', e.member_id, e.id, e.kind, e.idempotency_key)))
      FROM loyalty.entry e
     WHERE e.kind NOT IN ('expire', 'transfer_in')
       AND e.idempotency_key !~ '^(seed|bulk)-'
       AND NOT EXISTS (SELECT 1 FROM lt.journal j WHERE j.key = e.idempotency_key AND j.member = e.member_id
                          AND j.sqlstate = '00000' AND j.op NOT IN ('replay', 'badreplay'));
    RETURN QUERY SELECT 'bulk earns: nothing of the killed transaction, all of the committed one', abs(count(e.id) - max(s.bulk_committed)),
        format('%s bulk entries, %s committed', count(e.id), max(s.bulk_committed))
      FROM lt.state s LEFT JOIN loyalty.entry e ON e.idempotency_key ~ '^bulk-';

    -- nothing half-done: every piece an operation writes is there with the others
    RETURN QUERY SELECT 'every earn with points has exactly one lot, without points none', count(*),
        min(format('member %s entry %s points %s lots %s', e.member_id, e.id, e.points, n))
      FROM (SELECT e.member_id, e.id, e.points,
                   (SELECT count(*) FROM loyalty.lot l WHERE l.member_id = e.member_id AND l.entry_id = e.id) AS n
              FROM loyalty.entry e WHERE e.kind = 'earn') e
     WHERE n <> CASE WHEN e.points > 0 THEN 1 ELSE 0 END;
    RETURN QUERY SELECT 'every lot belongs to an existing entry', count(*),
        min(format('member %s lot %s entry %s', l.member_id, l.id, l.entry_id))
      FROM loyalty.lot l
     WHERE NOT EXISTS (SELECT 1 FROM loyalty.entry e WHERE e.member_id = l.member_id AND e.id = l.entry_id);
    RETURN QUERY SELECT 'every lot_draw refers to an existing entry and lot', count(*),
        min(format('member %s entry %s lot %s', d.member_id, d.entry_id, d.lot_id))
      FROM loyalty.lot_draw d
     WHERE NOT EXISTS (SELECT 1 FROM loyalty.entry e WHERE e.member_id = d.member_id AND e.id = d.entry_id)
        OR NOT EXISTS (SELECT 1 FROM loyalty.lot l WHERE l.member_id = d.member_id AND l.id = d.lot_id);
    RETURN QUERY SELECT 'every debit (redeem, transfer_out, expire) drew lots for exactly its points', count(*),
        min(format('member %s entry %s %s points %s drawn %s', e.member_id, e.id, e.kind, e.points, d))
      FROM (SELECT e.member_id, e.id, e.kind, e.points,
                   (SELECT coalesce(sum(d.points), 0) FROM loyalty.lot_draw d
                     WHERE d.member_id = e.member_id AND d.entry_id = e.id) AS d
              FROM loyalty.entry e WHERE e.kind IN ('redeem', 'transfer_out')) e
     WHERE e.d <> -e.points;
    RETURN QUERY SELECT 'every transfer_out has its transfer_in (and the other way round)', count(*),
        min(format('out %s/%s in %s/%s', o.member_id, o.id, i.member_id, i.id))
      FROM (SELECT * FROM loyalty.entry WHERE kind = 'transfer_out') o
      FULL JOIN (SELECT * FROM loyalty.entry WHERE kind = 'transfer_in') i
        ON i.member_id = o.counterparty_id AND i.ref_entry_id = o.id
     WHERE o.id IS NULL OR i.id IS NULL OR i.points <> -o.points OR i.counterparty_id <> o.member_id;
    RETURN QUERY SELECT 'every refund refers to an earn of its member', count(*),
        min(format('member %s entry %s ref %s', r.member_id, r.id, r.ref_entry_id))
      FROM loyalty.entry r
     WHERE r.kind = 'reverse'
       AND NOT EXISTS (SELECT 1 FROM loyalty.entry e WHERE e.member_id = r.member_id AND e.id = r.ref_entry_id AND e.kind = 'earn');
    RETURN QUERY SELECT 'refunds never exceed their purchase', count(*),
        min(format('member %s earn %s amount %s refunded %s', e.member_id, e.id, e.amount, s))
      FROM (SELECT e.member_id, e.id, e.amount,
                   (SELECT sum(r.amount) FROM loyalty.entry r WHERE r.member_id = e.member_id AND r.kind = 'reverse'
                       AND r.ref_entry_id = e.id) AS s
              FROM loyalty.entry e WHERE e.kind = 'earn') e
     WHERE e.s > e.amount;

    -- expiry: once per lot, one expire entry per member and instant
    -- (a debt lot, with negative points, may be settled by several expiries: not counted)
    RETURN QUERY SELECT 'no lot is expired twice', count(*),
        min(format('member %s lot %s: %s expire draws', x.member_id, x.lot_id, x.n))
      FROM (SELECT d.member_id, d.lot_id, count(*) AS n
              FROM loyalty.lot_draw d JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
              JOIN loyalty.lot l ON l.member_id = d.member_id AND l.id = d.lot_id
             WHERE e.kind = 'expire' AND l.points > 0 GROUP BY 1, 2 HAVING count(*) > 1) x;
    -- One expire entry per member and instant, except that a lot created late (an operation
    -- dated before the member's latest sweep, e.g. after maintenance ran ahead) can be born
    -- past its expiry and is expired by a later sweep with a second entry at that instant.
    -- What must never happen: a second entry expiring a lot that existed when the first
    -- entry for that instant was written (the first sweep missed it).
    RETURN QUERY SELECT 'one expire entry per member and instant (a second only for lots created after the first)', count(*),
        min(format('member %s at %s: expire %s drew lot %s (entry %s) that existed at expire %s',
                   x.member_id, x.at, x.id, x.lot_id, x.lot_entry, x.first_id))
      FROM (SELECT e.member_id, e.at, e.id, d.lot_id, l.entry_id AS lot_entry,
                   (SELECT min(f.id) FROM loyalty.entry f WHERE f.member_id = e.member_id AND f.kind = 'expire'
                       AND f.at = e.at) AS first_id
              FROM loyalty.entry e
              JOIN loyalty.lot_draw d ON d.member_id = e.member_id AND d.entry_id = e.id
              JOIN loyalty.lot l ON l.member_id = d.member_id AND l.id = d.lot_id
             WHERE e.kind = 'expire') x
     WHERE x.id > x.first_id AND x.lot_entry < x.first_id;
    RETURN QUERY SELECT 'member-instants with more than one expire entry (lots born past their expiry)', -1::bigint,
        format('%s member-instants', count(*))
      FROM (SELECT 1 FROM loyalty.entry e WHERE e.kind = 'expire' GROUP BY e.member_id, e.at HAVING count(*) > 1) x;
    RETURN QUERY SELECT 'a member''s tier is the last tier_change', count(*),
        min(format('member %s', m.id))
      FROM loyalty.member m JOIN loyalty.tier t ON t.id = m.tier_id
     WHERE t.code IS DISTINCT FROM (SELECT c.to_tier FROM loyalty.tier_change c WHERE c.member_id = m.id
                                     ORDER BY c.id DESC LIMIT 1);
END
$$;

-- After maintenance ran to p_now: nothing is due any more.
CREATE FUNCTION lt.due(p_now timestamptz) RETURNS TABLE (name text, bad bigint, example text)
LANGUAGE sql AS $$
    SELECT 'after maintenance no live lot is past its expiry or its release', count(*),
           min(format('member %s lot %s state %s available_at %s expires_at %s', l.member_id, l.id, l.state,
                      l.available_at, l.expires_at))
      FROM loyalty.lot l
     WHERE l.remaining > 0 AND ((l.state IN ('a', 'p') AND l.expires_at <= p_now)
                                OR (l.state = 'p' AND l.available_at <= p_now))
$$;
