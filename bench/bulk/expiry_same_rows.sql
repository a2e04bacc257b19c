-- Same-rows floor of expiry: what run_maintenance writes for the bench's expiry, in plain
-- SQL on the fl_ tables (ledger_floor_setup.sql) and in the same batching as
-- bench/bulk/maintain.sql: :batch due members per transaction, locked in due order
-- (next_transition_at, id) with SKIP LOCKED; for each, one expire entry per expiry instant
-- (its due lots' points, the balance after it), one draw per lot, the lots closed (state
-- 'x'), and the member row (available, expired, last entry, next transition). No
-- validation, settings, tiers or other due work: the least that writes these rows.
-- Prints batches, the longest batch in ms, and members swept (as maintain.sql).
SELECT set_config('bench.now', :'now', false), set_config('bench.batch', :'batch', false);
DO $$
DECLARE
    now_ timestamptz := current_setting('bench.now')::timestamptz;
    batch int := current_setting('bench.batch')::int;
    ids bigint[]; t0 timestamptz; ms float8; mx float8 := 0; nb int := 0; tot bigint := 0;
BEGIN
    LOOP
        t0 := clock_timestamp();
        SELECT array_agg(id) INTO ids FROM (
            SELECT id FROM fl_member
             WHERE next_transition_at <= now_ AND next_transition_at < 'infinity'
             ORDER BY next_transition_at, id LIMIT batch FOR UPDATE SKIP LOCKED) s;
        EXIT WHEN ids IS NULL;
        WITH due AS (
            SELECT l.member_id, l.id, l.remaining, l.expires_at FROM fl_lot l
             WHERE l.member_id = ANY (ids) AND l.state <> 'x' AND l.expires_at <= now_),
        inst AS (   -- one entry per member and expiry instant
            SELECT member_id, expires_at, sum(remaining) AS points FROM due GROUP BY member_id, expires_at),
        ent AS (
            INSERT INTO fl_entry (member_id, id, kind, points, at, available_after, pending_after, tier_after)
            SELECT i.member_id, nextval('fl_entry_id_seq'), 'expire', -i.points, i.expires_at,
                   m.available - sum(i.points) OVER (PARTITION BY i.member_id ORDER BY i.expires_at),
                   m.pending, t.code
              FROM inst i JOIN fl_member m ON m.id = i.member_id JOIN fl_tier t ON t.id = m.tier_id
             ORDER BY i.member_id, i.expires_at
            RETURNING member_id, id, at),
        drw AS (
            INSERT INTO fl_lot_draw (member_id, entry_id, lot_id, at, points)
            SELECT d.member_id, e.id, d.id, d.expires_at, d.remaining
              FROM due d JOIN ent e ON e.member_id = d.member_id AND e.at = d.expires_at),
        cls AS (
            UPDATE fl_lot l SET remaining = 0, state = 'x'
              FROM due d WHERE l.member_id = d.member_id AND l.id = d.id)
        UPDATE fl_member m
           SET available = m.available - s.points, expired = m.expired + s.points,
               last_entry_at = coalesce(s.last_at, m.last_entry_at),
               -- the next lot to expire after now (this statement's snapshot still shows the
               -- lots it closes as open: they are all at or before now)
               next_transition_at = coalesce((SELECT min(l.expires_at) FROM fl_lot l
                                               WHERE l.member_id = m.id AND l.state <> 'x'
                                                 AND l.expires_at > now_), 'infinity'),
               earned_tier_id = coalesce(m.earned_tier_id, m.tier_id)
          FROM (SELECT u.id, coalesce(g.points, 0) AS points, g.last_at   -- every member locked
                  FROM unnest(ids) u(id)
                  LEFT JOIN (SELECT member_id, sum(points) AS points, max(expires_at) AS last_at
                               FROM inst GROUP BY member_id) g ON g.member_id = u.id) s
         WHERE m.id = s.id;
        COMMIT;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        nb := nb + 1; mx := greatest(mx, ms); tot := tot + cardinality(ids);
    END LOOP;
    COMMIT;
    RAISE NOTICE 'batches=% max_batch_ms=% members=%', nb, round(mx::numeric, 1), tot;
END
$$;
