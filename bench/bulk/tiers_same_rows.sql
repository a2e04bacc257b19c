-- Same-rows floor of tier re-evaluation: what run_maintenance writes for the bench's tier
-- reviews, in plain SQL on the fl_ tables (ledger_floor_setup.sql) and in the same batching
-- as bench/bulk/maintain.sql: :batch due members per transaction, locked in due order
-- (next_transition_at, id) with SKIP LOCKED; for each, the qualifying figure of the calendar
-- year that ended at the last review instant (entry_qualifying's range, as the extension
-- reads it), the tier that figure reaches, and for each member whose tier changes a
-- tier_change row and a tier_changed outbox event (the extension's payload); every locked
-- member row is updated (tier, review state, next transition), and one NOTIFY per program
-- and transaction, as the extension's outbox sends. The bench's program (calendar year,
-- downgrade at period end) is assumed rather than read from settings; the extension's
-- intermediate review (2026-01-01: silver kept, nothing written) is not computed.
-- Prints batches, the longest batch in ms, and members swept (as maintain.sql).
SELECT set_config('bench.now', :'now', false), set_config('bench.batch', :'batch', false);
DO $$
DECLARE
    now_ timestamptz := current_setting('bench.now')::timestamptz;
    batch int := current_setting('bench.batch')::int;
    rv timestamptz := date_trunc('year', current_setting('bench.now')::timestamptz);  -- the review instant
    ids bigint[]; progs bigint[];
    t0 timestamptz; ms float8; mx float8 := 0; nb int := 0; tot bigint := 0;
BEGIN
    LOOP
        t0 := clock_timestamp();
        SELECT array_agg(id) INTO ids FROM (
            SELECT id FROM fl_member
             WHERE next_transition_at <= now_ AND next_transition_at < 'infinity'
             ORDER BY next_transition_at, id LIMIT batch FOR UPDATE SKIP LOCKED) s;
        EXIT WHEN ids IS NULL;
        WITH mem AS MATERIALIZED (   -- each figure read once
            SELECT m.id, m.program_id, m.tier_id, ft.code AS from_tier, ft.threshold AS from_threshold,
                   (SELECT coalesce(sum(e.qualifying), 0) FROM fl_entry e
                     WHERE e.member_id = m.id AND e.qualifying <> 0
                       AND e.qualifying_at >= rv - interval '1 year' AND e.qualifying_at < rv) AS q
              FROM fl_member m JOIN fl_tier ft ON ft.id = m.tier_id
             WHERE m.id = ANY (ids)),
        rev AS (
            SELECT mem.*, nt.id AS to_id, nt.code AS to_tier,
                   CASE WHEN nt.threshold < mem.from_threshold THEN 'downgrade' ELSE 'promotion' END AS reason,
                   nt.threshold = (SELECT min(t.threshold) FROM fl_tier t
                                    WHERE t.program_id = mem.program_id) AS lowest
              FROM mem CROSS JOIN LATERAL (
                   SELECT t.id, t.code, t.threshold FROM fl_tier t
                    WHERE t.program_id = mem.program_id AND t.threshold <= mem.q
                    ORDER BY t.threshold DESC LIMIT 1) nt),
        chg AS (
            INSERT INTO fl_tier_change (member_id, at, from_tier, to_tier, reason, qualifying)
            SELECT id, rv, from_tier, to_tier, reason, q FROM rev WHERE to_id <> tier_id ORDER BY id),
        ev AS (
            INSERT INTO fl_outbox (program_id, member_id, kind, at, payload)
            SELECT program_id, id, 'tier_changed', rv,
                   jsonb_build_object('from', from_tier, 'to', to_tier, 'reason', reason)
              FROM rev WHERE to_id <> tier_id ORDER BY id
            RETURNING program_id),
        upd AS (
            UPDATE fl_member m
               SET tier_id = rev.to_id, earned_tier_id = rev.to_id,
                   tier_since = CASE WHEN rev.to_id <> rev.tier_id THEN rv ELSE m.tier_since END,
                   qualifying = rev.q, q_start = rv - interval '1 year', q_asof = now_,
                   tier_review_at = CASE WHEN rev.lowest THEN 'infinity' ELSE rv + interval '1 year' END,
                   -- the next review, or the next lot to become available or expire
                   next_transition_at = least(
                       CASE WHEN rev.lowest THEN 'infinity' ELSE rv + interval '1 year' END,
                       coalesce((SELECT min(least(CASE WHEN l.state = 'p' THEN l.available_at END, l.expires_at))
                                   FROM fl_lot l
                                  WHERE l.member_id = m.id AND l.state <> 'x'
                                    AND (l.expires_at > now_ OR l.available_at > now_)), 'infinity'))
              FROM rev WHERE m.id = rev.id)
        SELECT array_agg(DISTINCT program_id) INTO progs FROM ev;
        PERFORM pg_notify('fl_outbox', p::text) FROM unnest(progs) p;
        COMMIT;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        nb := nb + 1; mx := greatest(mx, ms); tot := tot + cardinality(ids);
    END LOOP;
    COMMIT;
    RAISE NOTICE 'batches=% max_batch_ms=% members=%', nb, round(mx::numeric, 1), tot;
END
$$;
