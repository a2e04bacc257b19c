-- loyalty: statement(), a member's ledger entries. In a file of its own because 1.1
-- changed it (an earn's detail is stored without what its row says; statement() puts it
-- back): the 1.0 -> 1.1 upgrade drops the 1.0 definition (sql/upgrade/1.0--1.1/17_storage.sql)
-- and runs this file (a symlink there).

CREATE FUNCTION loyalty.statement(member bigint, from_at timestamptz DEFAULT '-infinity',
                                  to_at timestamptz DEFAULT 'infinity')
    RETURNS TABLE (entry_id bigint, at timestamptz, recorded_at timestamptz, kind text,
                   points bigint, idempotency_key text, detail jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off
AS $$
BEGIN
    IF statement.member IS NULL THEN
        RAISE EXCEPTION 'member must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF NOT EXISTS (SELECT FROM loyalty.member mm WHERE mm.id = statement.member) THEN
        RAISE EXCEPTION 'member % does not exist', statement.member USING ERRCODE = 'LY002';
    END IF;
    -- MATERIALIZED: each aggregate is computed once, whatever join the plan picks
    RETURN QUERY
    WITH lots AS MATERIALIZED (
        SELECT l.entry_id,
               jsonb_agg(jsonb_build_object('lot', l.id, 'points', l.points,
                                            'available_at', l.available_at, 'expires_at', l.expires_at)
                         ORDER BY l.id) AS lots
          FROM loyalty.lot l
         WHERE l.member_id = statement.member
         GROUP BY l.entry_id
    ), draws AS MATERIALIZED (
        SELECT d.entry_id,
               jsonb_agg(jsonb_build_object('lot', d.lot_id, 'points', d.points) ORDER BY d.lot_id) AS drawn
          FROM loyalty.lot_draw d
         WHERE d.member_id = statement.member
         GROUP BY d.entry_id
    )
    -- an earn stores only what its tier_after and the defaults do not say, and no
    -- detail is NULL (1.1: earn_detail in src/operations.c); here it is whole, as in 1.0
    SELECT e.id, e.at, e.recorded_at, e.kind::text, e.points, e.idempotency_key,
           CASE WHEN e.kind = 'earn'
                THEN jsonb_build_object('tier', e.tier_after, 'multiplier', 1, 'points_per_unit', 1)
                ELSE '{}' END
           || coalesce(e.detail, '{}')
           || jsonb_strip_nulls(jsonb_build_object(
               'amount', e.amount,
               'reason', e.reason,
               'counterparty', e.counterparty_id,
               'drawn', dr.drawn,
               'lots', lo.lots))
      FROM loyalty.entry e
      LEFT JOIN lots lo ON lo.entry_id = e.id
      LEFT JOIN draws dr ON dr.entry_id = e.id
     WHERE e.member_id = statement.member
       AND e.at >= coalesce(from_at, '-infinity') AND e.at < coalesce(to_at, 'infinity')
     ORDER BY e.at, e.id;
END
$$;
COMMENT ON FUNCTION loyalty.statement(bigint, timestamptz, timestamptz) IS
    'a member''s ledger entries with from_at <= at < to_at, in business-time order';
