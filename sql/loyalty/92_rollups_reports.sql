-- loyalty: the reports that read the rollups (92_rollups.sql) below their high-water mark
-- and the ledger above it: liability, program_kpis(+_30d), cohort_retention, expiring_points.
-- In a file of their own because 1.1 changed them: the 1.0 -> 1.1 upgrade drops the 1.0
-- definitions (sql/upgrade/1.0--1.1/16_reports.sql) and runs this file (a symlink there).

-- How many points are outstanding, what would they cost, and how many expire soon?
--
-- At scale (issue 7) the balances come from the member rows, which are exact until the
-- member's next_transition_at: only members with a transition due (not yet swept) or a
-- debt are classified lot by lot, through member_summary. The expiring points of lots with
-- an expiry instant come from a range scan of lot_expiry_brin, a BRIN index on lot.expires_at
-- (92_rollups.sql); those of inactivity expiry (computed from the member's last activity)
-- from the open lots of the members whose next transition falls within 90 days (member_due
-- index, then lot_live): a lot that expires sooner than its member's next transition
-- cannot exist, since next_transition_at is the earliest release or expiry of its lots.
-- The rows of the view liability, in a function only so that the query can run with JIT
-- off: at 1M members compiling it took 14 s of 18 (a view cannot carry SET). Caller's
-- rights (SECURITY INVOKER, like the view): row-level security applies.
CREATE FUNCTION loyalty.liability_rows()
    RETURNS TABLE (program_code text, available_points bigint, pending_points bigint, outstanding_points bigint,
                   cost_per_point numeric, outstanding_value numeric, expiring_30d bigint, expiring_60d bigint,
                   expiring_90d bigint, debt_points bigint, available_value numeric, pending_value numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
AS $fn$
WITH owing AS (
    -- members whose row is not exact now, or who owe points (debt lots are few: lot_debt)
    SELECT m.id FROM loyalty.member m WHERE m.next_transition_at <= now()
    UNION
    SELECT d.member_id FROM loyalty.lot d WHERE d.points < 0 AND d.state <> 'x'
), balances AS (
    SELECT m.program_id,
           sum(m.available) AS a, sum(m.pending) AS p, 0::numeric AS debt
      FROM loyalty.member m
     WHERE NOT EXISTS (SELECT FROM owing o WHERE o.id = m.id)
     GROUP BY m.program_id
    UNION ALL
    SELECT m.program_id, sum(s.available), sum(s.pending), sum(s.debt)
      FROM loyalty.member_summary s
      JOIN loyalty.member m ON m.id = s.member_id
     WHERE s.member_id IN (SELECT o.id FROM owing o)
     GROUP BY m.program_id
), totals AS (
    SELECT b.program_id, sum(b.a) AS a, sum(b.p) AS p, sum(b.debt) AS debt
      FROM balances b GROUP BY b.program_id
), expiring AS (
    SELECT x.program_id, sum(x.exp30) AS exp30, sum(x.exp60) AS exp60, sum(x.exp90) AS exp90
      FROM (-- lots with an expiry instant of their own: a range of lot_expiry_brin
            SELECT m.program_id,
                   coalesce(sum(l.remaining) FILTER (WHERE l.expires_at <= now() + interval '30 days'), 0) AS exp30,
                   coalesce(sum(l.remaining) FILTER (WHERE l.expires_at <= now() + interval '60 days'), 0) AS exp60,
                   coalesce(sum(l.remaining), 0) AS exp90
              FROM loyalty.lot l
              JOIN loyalty.member m ON m.id = l.member_id
             WHERE l.expires_at > now() AND l.expires_at <= now() + interval '90 days'
               AND l.state <> 'x' AND l.remaining <> 0 AND l.points > 0
             GROUP BY m.program_id
            UNION ALL
            -- inactivity expiry (no expires_at: the member's last activity decides): the
            -- lots of the members whose next transition is within 90 days (member_due)
            SELECT m.program_id,
                   coalesce(sum(l.remaining) FILTER (WHERE x.expiry <= now() + interval '30 days'), 0),
                   coalesce(sum(l.remaining) FILTER (WHERE x.expiry <= now() + interval '60 days'), 0),
                   coalesce(sum(l.remaining), 0)
              FROM loyalty.member m
              JOIN loyalty.program pp ON pp.id = m.program_id
              JOIN loyalty.lot l ON l.member_id = m.id
             CROSS JOIN LATERAL (
                   SELECT loyalty.add_months_local(m.last_activity_at, pp.expiry_months, pp.timezone) AS expiry) x
             WHERE pp.expiry_policy = 'inactivity' AND l.expires_at IS NULL
               AND m.next_transition_at <= now() + interval '90 days'
               AND l.state <> 'x' AND l.remaining <> 0 AND l.points > 0
               AND x.expiry > now() AND x.expiry <= now() + interval '90 days'
             GROUP BY m.program_id) x
     GROUP BY x.program_id
)
SELECT p.code AS program,
       coalesce(t.a, 0)::bigint AS available_points,
       coalesce(t.p, 0)::bigint AS pending_points,
       (coalesce(t.a, 0) + coalesce(t.p, 0))::bigint AS outstanding_points,
       p.cost_per_point,
       (coalesce(t.a, 0) + coalesce(t.p, 0)) * p.cost_per_point AS outstanding_value,
       coalesce(x.exp30, 0)::bigint AS expiring_30d,
       coalesce(x.exp60, 0)::bigint AS expiring_60d,
       coalesce(x.exp90, 0)::bigint AS expiring_90d,
       coalesce(t.debt, 0)::bigint AS debt_points,
       coalesce(t.a, 0) * p.cost_per_point AS available_value,
       coalesce(t.p, 0) * p.cost_per_point AS pending_value
  FROM loyalty.program p
  LEFT JOIN totals t ON t.program_id = p.id
  LEFT JOIN expiring x ON x.program_id = p.id
$fn$;
COMMENT ON FUNCTION loyalty.liability_rows() IS 'the rows of the view loyalty.liability (a function for SET jit = off)';

CREATE VIEW loyalty.liability AS
SELECT l.program_code AS program, l.available_points, l.pending_points, l.outstanding_points, l.cost_per_point,
       l.outstanding_value, l.expiring_30d, l.expiring_60d, l.expiring_90d, l.debt_points,
       l.available_value, l.pending_value
  FROM loyalty.liability_rows() l;
COMMENT ON VIEW loyalty.liability IS
    'per program, now: available and pending points (the sum of the members'' balances as balance(m, now()) '
    'gives them: lots classified by now(), debts netted, expired points settling debts first), '
    'outstanding = available + pending, its value at program.cost_per_point, points of open lots '
    'expiring in (now(), now() + 30/60/90 days] (gross, before any debt they would settle), and the points '
    'members still owe (debt_points)';

CREATE FUNCTION loyalty.program_kpis(program text, from_at timestamptz, to_at timestamptz)
    RETURNS TABLE (members bigint, new_members bigint, active_members bigint,
                   points_issued bigint, points_redeemed bigint, points_expired bigint,
                   redemption_rate numeric, breakage_rate numeric, avg_points_per_member numeric,
                   repeat_purchase_rate numeric,
                   purchasers bigint, repeat_purchasers bigint, purchases bigint, spend numeric,
                   points_reversed bigint, points_adjusted_out bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off                 -- compiling the query costs about a second, more than it saves
    SET work_mem = '128MB'        -- the per-member counts: one hash entry per active member
AS $$
DECLARE
    p        loyalty.program;
    hwm      bigint;
    d1       date;
    d2       date;
    lo       timestamptz;
    hi       timestamptz;
    use_days boolean;
    y1       date;
    y2       date;
    ys       date[];
BEGIN
    p := loyalty.report_program(program_kpis.program);
    IF program_kpis.from_at IS NULL OR program_kpis.to_at IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN program_kpis.from_at IS NULL THEN 'from_at' ELSE 'to_at' END
            USING ERRCODE = 'LY034';
    END IF;
    IF program_kpis.from_at >= program_kpis.to_at THEN
        RAISE EXCEPTION 'from_at must be before to_at'
            USING ERRCODE = 'LY038',
                  DETAIL = format('The period is from_at <= at < to_at; got %s to %s.',
                                  program_kpis.from_at, program_kpis.to_at);
    END IF;

    -- Whole local days inside the period come from the rollups (92_rollups.sql); the
    -- partial days at its edges and the entries above the high-water mark (the tail) from
    -- the ledger, through its BRIN indexes on at and id. d1 <= day < d2 are the whole days,
    -- [lo, hi) the same as instants (NULL bounds and infinite instants: unbounded).
    hwm := loyalty.report_hwm();
    IF program_kpis.from_at = '-infinity' THEN
        lo := '-infinity';
    ELSE
        d1 := (program_kpis.from_at AT TIME ZONE p.timezone)::date;
        lo := d1::timestamp AT TIME ZONE p.timezone;
        IF lo < program_kpis.from_at THEN
            d1 := d1 + 1;
            lo := d1::timestamp AT TIME ZONE p.timezone;
        END IF;
    END IF;
    IF program_kpis.to_at = 'infinity' THEN
        hi := 'infinity';
    ELSE
        d2 := (program_kpis.to_at AT TIME ZONE p.timezone)::date;
        hi := d2::timestamp AT TIME ZONE p.timezone;
    END IF;
    use_days := hwm > 0 AND lo < hi;
    IF NOT use_days THEN
        -- no whole day, or no rollups: the whole period is read as one edge
        lo := program_kpis.to_at;
        hi := program_kpis.to_at;
    ELSE
        -- the rolled-up years the whole days touch
        SELECT min(r.year), max(r.year) INTO y1, y2 FROM loyalty.rollup_member_year r
         WHERE r.program_id = p.id
           AND (d1 IS NULL OR r.year >= date_trunc('year', d1::timestamp))
           AND (d2 IS NULL OR r.year < d2);
        ys := ARRAY(SELECT g::date FROM generate_series(y1::timestamp, y2::timestamp, interval '1 year') g);
    END IF;

    -- A member has one row per year: within one year (a month, the last 30 days) the
    -- rows need no grouping by member, which at a million members is most of the work.
    RETURN QUERY EXECUTE format($q$
    WITH ledger AS MATERIALIZED (
        -- the ledger part: [from, lo), [hi, to), and the tail within [lo, hi), per member
        SELECT x.member_id,
               coalesce(sum(x.points) FILTER (WHERE x.kind IN ('earn', 'award', 'subscribe', 'renew')
                                                OR (x.kind = 'adjust' AND x.points > 0)), 0) AS issued,
               coalesce(-sum(x.points) FILTER (WHERE x.kind IN ('redeem', 'reward_refund')), 0) AS redeemed,
               coalesce(-sum(x.points) FILTER (WHERE x.kind = 'expire'), 0) AS expired,
               coalesce(-sum(x.points) FILTER (WHERE x.kind = 'reverse'), 0) AS reversed,
               coalesce(-sum(x.points) FILTER (WHERE x.kind = 'adjust' AND x.points < 0), 0) AS adjusted_out,
               (count(*) FILTER (WHERE x.kind = 'earn'))::int AS purchases,
               coalesce(sum(x.amount) FILTER (WHERE x.kind = 'earn'), 0)
                 - coalesce(sum(x.amount) FILTER (WHERE x.kind = 'reverse'), 0) AS spend,
               bool_or(x.kind IN ('earn', 'redeem')) AS active
          FROM (SELECT e.member_id, e.kind, e.points, e.amount
                  FROM loyalty.entry e WHERE e.at >= $2 AND e.at < $4
                UNION ALL
                SELECT e.member_id, e.kind, e.points, e.amount
                  FROM loyalty.entry e WHERE e.at >= $5 AND e.at < $3
                UNION ALL
                SELECT e.member_id, e.kind, e.points, e.amount
                  FROM loyalty.entry e WHERE e.id > $6 AND e.at >= $4 AND e.at < $5) x
         GROUP BY x.member_id
    ), e AS (
        -- the program's members among them (grouped first: a lookup per member, not per entry)
        SELECT l.* FROM ledger l WHERE EXISTS (SELECT FROM loyalty.member m WHERE m.id = l.member_id AND m.program_id = $1)
    ), years AS MATERIALIZED (
        -- the years y1..y2 (ys), each with the mask of the whole days d1 <= day < d2 in it (bit i
        -- = day i of the year); materialized, or the planner computes the mask again for
        -- every member row
        SELECT g.year, (~B'0'::bit(366) >> b.lo) & ~(~B'0'::bit(366) >> b.hi) AS mask
          FROM unnest($10::date[]) g(year)      -- an array: the planner knows how many
         CROSS JOIN LATERAL (
               SELECT CASE WHEN $8::date IS NULL THEN 0 ELSE least(366, greatest(0, $8 - g.year)) END AS lo,
                      CASE WHEN $9::date IS NULL THEN 366 ELSE least(366, greatest(0, $9 - g.year)) END AS hi) b
    ), yr AS (
        -- the whole days: a row per member and year with activity in them;
        -- bit_count(buy1) + bit_count(buy2) is the sum over their days of min(purchases, 2)
        SELECT r.member_id, r.purchases
          FROM years y
         CROSS JOIN LATERAL (
               -- per year: the index range of that year's rows only (OFFSET 0: not
               -- flattened into a join that reads every year)
               SELECT r.member_id, (bit_count(r.buy1 & y.mask) + bit_count(r.buy2 & y.mask))::int AS purchases
                 FROM loyalty.rollup_member_year r
                WHERE r.program_id = $1 AND r.year = y.year
                  AND (r.active & y.mask) <> B'0'::bit(366)
               OFFSET 0) r
    ), ym AS (
        -- one row per member
        %s
    ), sums AS (
        SELECT sum(x.issued) AS issued, sum(x.redeemed) AS redeemed, sum(x.expired) AS expired,
               sum(x.reversed) AS reversed, sum(x.adjusted_out) AS adjusted_out,
               sum(x.purchases) AS purchases, sum(x.spend) AS spend
          FROM (SELECT e.issued, e.redeemed, e.expired, e.reversed, e.adjusted_out, e.purchases, e.spend
                  FROM e
                UNION ALL
                SELECT r.issued, r.redeemed, r.expired, r.reversed, r.adjusted_out, r.purchases, r.spend
                  FROM loyalty.rollup_day r
                 WHERE $7 AND r.program_id = $1
                   AND ($8::date IS NULL OR r.day >= $8) AND ($9::date IS NULL OR r.day < $9)) x
    ), unswept AS (
        -- lots past their expiry (within the period and by now()) whose expire entry
        -- has not been written: only members whose next transition is due can have them
        SELECT coalesce(sum(l.remaining), 0) AS points
          FROM loyalty.member m
          JOIN loyalty.program p ON p.id = m.program_id
          JOIN loyalty.lot l ON l.member_id = m.id
         CROSS JOIN LATERAL (
               SELECT coalesce(l.expires_at,
                               CASE WHEN p.expiry_policy = 'inactivity'
                                    THEN loyalty.add_months_local(m.last_activity_at, p.expiry_months, p.timezone)
                               END) AS expiry) x
         WHERE m.program_id = $1 AND m.next_transition_at <= now()
           AND m.next_transition_at < 'infinity'   -- the member_due index's predicate
           AND l.state <> 'x' AND l.remaining > 0 AND l.points > 0
           AND x.expiry <= now()
           AND x.expiry >= $2 AND x.expiry < $3
    ), mem AS (
        SELECT count(*) FILTER (WHERE m.enrolled_at < $3) AS members,
               count(*) FILTER (WHERE m.enrolled_at >= $2 AND m.enrolled_at < $3) AS new_members
          FROM loyalty.member m WHERE m.program_id = $1
    ), act AS (
        -- the members active on the whole days or at the edges: those of ym not in e as
        -- they are, those of e with their rows of the whole days found through the index
        -- (e is a few days' members: joining the other way would hash every member)
        SELECT count(*) FILTER (WHERE x.active) AS active,
               count(*) FILTER (WHERE x.purchases >= 1) AS purchasers,
               count(*) FILTER (WHERE x.purchases >= 2) AS repeaters
          FROM (SELECT true AS active, ym.purchases
                  FROM ym WHERE NOT EXISTS (SELECT FROM e WHERE e.member_id = ym.member_id)
                UNION ALL
                SELECT e.active OR d.n > 0, e.purchases + coalesce(d.purchases, 0)
                  FROM e
                 CROSS JOIN LATERAL (
                       SELECT count(*) AS n, sum(bit_count(r.buy1 & y.mask) + bit_count(r.buy2 & y.mask)) AS purchases
                         FROM years y
                         JOIN loyalty.rollup_member_year r
                           ON r.program_id = $1 AND r.year = y.year AND r.member_id = e.member_id
                        WHERE (r.active & y.mask) <> B'0'::bit(366)) d) x
    )
    SELECT mem.members, mem.new_members, act.active,
           s.issued::bigint, s.redeemed::bigint, (s.expired + u.points)::bigint,
           s.redeemed / nullif(s.issued, 0),
           (s.expired + u.points) / nullif(s.issued, 0),
           s.issued / nullif(act.active, 0)::numeric,
           act.repeaters / nullif(act.purchasers, 0)::numeric,
           act.purchasers, act.repeaters, s.purchases::bigint, s.spend,
           s.reversed::bigint, s.adjusted_out::bigint
      FROM sums s, unswept u, mem, act
    $q$, CASE WHEN y1 = y2 THEN 'SELECT yr.member_id, yr.purchases FROM yr'
              ELSE 'SELECT yr.member_id, sum(yr.purchases) AS purchases FROM yr GROUP BY yr.member_id' END)
    USING p.id, program_kpis.from_at, program_kpis.to_at, lo, hi, hwm, use_days, d1, d2, ys;
END
$$;
COMMENT ON FUNCTION loyalty.program_kpis(text, timestamptz, timestamptz) IS
    'a program''s figures for the period from_at <= at < to_at (business time): members (enrolled before to_at), '
    'new_members (enrolled in the period), active_members (an earn or redeem in the period), points_issued '
    '(earn, award, subscribe, renew, positive adjust), points_redeemed (redeem), points_expired (expire entries, '
    'plus lots past expiry not yet swept), redemption_rate = redeemed / issued, breakage_rate = expired / issued, '
    'avg_points_per_member = issued / active members, repeat_purchase_rate = members with 2+ purchases (earn '
    'entries) / members with 1+; then purchasers, repeat_purchasers, purchases, spend (earn amounts minus '
    'refunded amounts), points_reversed (refunds), points_adjusted_out (negative adjustments). Transfers count '
    'in none of them. Ratios are NULL when their denominator is 0';

-- The last 30 days, for dashboards.
CREATE VIEW loyalty.program_kpis_30d AS
SELECT p.code AS program, now() - interval '30 days' AS from_at, now() AS to_at, k.*
  FROM loyalty.program p
 CROSS JOIN LATERAL loyalty.program_kpis(p.code, now() - interval '30 days', now()) k;
COMMENT ON VIEW loyalty.program_kpis_30d IS
    'loyalty.program_kpis for every program over now() - 30 days <= at < now()';

CREATE FUNCTION loyalty.cohort_retention(program text, period text DEFAULT 'month')
    RETURNS TABLE (cohort date, period_offset integer, cohort_members bigint,
                   active_members bigint, retention numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET jit = off                 -- compiling the query costs about a second, more than it saves
AS $$
DECLARE
    p    loyalty.program;
    step interval;
    cur  timestamp;
    hwm  bigint;
BEGIN
    p := loyalty.report_program(cohort_retention.program);
    IF cohort_retention.period IS NULL THEN
        RAISE EXCEPTION 'period must not be null' USING ERRCODE = 'LY034';
    END IF;
    step := CASE cohort_retention.period
        WHEN 'week' THEN interval '1 week'
        WHEN 'month' THEN interval '1 month'
        WHEN 'quarter' THEN interval '3 months'
        WHEN 'year' THEN interval '1 year' END;
    IF step IS NULL THEN
        RAISE EXCEPTION 'invalid period "%"', cohort_retention.period
            USING ERRCODE = 'LY038', HINT = 'Use week, month, quarter or year.';
    END IF;
    cur := date_trunc(cohort_retention.period, now() AT TIME ZONE p.timezone);
    -- Activity comes from the rollups (92_rollups.sql) for the entries up to the high-water
    -- mark (rollup_cohort: every period kind, counted already) and from the ledger for the
    -- tail above it.
    hwm := loyalty.report_hwm();

    RETURN QUERY EXECUTE $q$
    WITH mem AS (
        SELECT m.id, date_trunc($2, m.enrolled_at AT TIME ZONE $3) AS c
          FROM loyalty.member m WHERE m.program_id = $1
    ), sizes AS (
        SELECT mem.c, count(*) AS n FROM mem GROUP BY mem.c
    ), tail AS (
        -- (member, period) pairs of the entries above the high-water mark
        SELECT DISTINCT e.member_id, date_trunc($2, e.at AT TIME ZONE $3) AS b
          FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
         WHERE m.program_id = $1 AND e.id > $4 AND e.kind IN ('earn', 'redeem')
    ), act AS (
        -- the counted triangle, plus the tail's pairs the rollups do not hold yet (the
        -- weeks/months bits of the member's row for the bucket's year; the same test as
        -- run_rollups')
        SELECT r.cohort::timestamp AS c, r.bucket::timestamp AS b, r.members AS n
          FROM loyalty.rollup_cohort r
         WHERE $4 > 0 AND r.program_id = $1 AND r.period = $2
        UNION ALL
        SELECT mem.c, t.b, count(*)
          FROM tail t JOIN mem ON mem.id = t.member_id
         WHERE NOT EXISTS (
               SELECT FROM loyalty.rollup_member_year o
                WHERE $4 > 0 AND o.program_id = $1 AND o.member_id = t.member_id
                  AND o.year = date_trunc('year', t.b)::date
                  AND CASE $2
                      WHEN 'week' THEN get_bit(o.weeks, (t.b::date - o.year) / 7) = 1
                      WHEN 'month' THEN get_bit(o.months, extract(month FROM t.b)::int - 1) = 1
                      WHEN 'quarter' THEN substring(o.months FROM extract(month FROM t.b)::int FOR 3) <> B'000'
                      ELSE o.months <> B'0'::bit(12) END)
         GROUP BY 1, 2
    ), act_sum AS (
        SELECT a.c, a.b, sum(a.n)::bigint AS n FROM act a GROUP BY a.c, a.b
    )
    SELECT s.c::date, (g.k - 1)::integer, s.n, coalesce(a.n, 0), coalesce(a.n, 0)::numeric / s.n
      FROM sizes s
     CROSS JOIN LATERAL generate_series(s.c, greatest($5, s.c), $6) WITH ORDINALITY g(b, k)
      LEFT JOIN act_sum a ON a.c = s.c AND a.b = g.b
     ORDER BY 1, 2
    $q$ USING p.id, cohort_retention.period, p.timezone, hwm, cur, step;
END
$$;
COMMENT ON FUNCTION loyalty.cohort_retention(text, text) IS
    'the retention triangle: members grouped by the period (week, month, quarter or year, in the program''s '
    'time zone) they enrolled in; for each following period up to the current one (period_offset 0 = the '
    'enrolment period), the members of the cohort active in it (an earn or redeem entry dated in it) and '
    'retention = active_members / cohort_members';

CREATE FUNCTION loyalty.expiring_points(within interval, program text DEFAULT NULL)
    RETURNS TABLE (member_id bigint, program_code text, external_ref text, expires_at timestamptz,
                   points bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF expiring_points.within IS NULL THEN
        RAISE EXCEPTION 'within must not be null' USING ERRCODE = 'LY034';
    END IF;
    -- compare the interval itself: now() + a huge interval would overflow
    IF expiring_points.within <= interval '0' OR expiring_points.within > interval '100 years' THEN
        RAISE EXCEPTION 'within must be a positive interval of at most 100 years' USING ERRCODE = 'LY038';
    END IF;
    IF expiring_points.program IS NOT NULL THEN
        pid := (loyalty.report_program(expiring_points.program)).id;
    END IF;
    -- Two sources, as in liability: lots with an expiry instant from a range of the BRIN
    -- index on lot.expires_at (the table is nearly in that order); lots that expire with
    -- their member's inactivity from the members whose next transition falls within the
    -- window (member_due index; no lot expires before its member's next transition).
    RETURN QUERY
    SELECT m.id, p.code, m.external_ref, x.expiry, sum(x.points)::bigint
      FROM (SELECT l.member_id, l.expires_at AS expiry, l.remaining AS points
              FROM loyalty.lot l
             WHERE l.expires_at > now() AND l.expires_at <= now() + expiring_points.within
               -- state::text: not lot_live's predicate, so the planner cannot pick a scan of
               -- that whole index (expires_at is its second column) over the BRIN range
               AND l.state::text <> 'x' AND l.remaining > 0 AND l.points > 0
            UNION ALL
            SELECT l.member_id, d.deadline, l.remaining
              FROM loyalty.program ip
              JOIN loyalty.member im ON im.program_id = ip.id
              JOIN loyalty.lot l ON l.member_id = im.id
             CROSS JOIN LATERAL (
                   SELECT loyalty.add_months_local(im.last_activity_at, ip.expiry_months, ip.timezone) AS deadline) d
             WHERE ip.expiry_policy = 'inactivity' AND (pid IS NULL OR ip.id = pid)
               AND im.next_transition_at <= now() + expiring_points.within
               AND im.next_transition_at < 'infinity'       -- the member_due index's predicate
               AND l.expires_at IS NULL AND l.state <> 'x' AND l.remaining > 0 AND l.points > 0
               AND d.deadline > now() AND d.deadline <= now() + expiring_points.within) x
      JOIN loyalty.member m ON m.id = x.member_id
      JOIN loyalty.program p ON p.id = m.program_id
     WHERE (pid IS NULL OR p.id = pid)
     GROUP BY m.id, p.code, m.external_ref, x.expiry
     ORDER BY x.expiry, m.id;
END
$$;
COMMENT ON FUNCTION loyalty.expiring_points(interval, text) IS
    'for reminders: one row per member and expiry instant in (now(), now() + within], with the points '
    '(available or pending) that expire then, for one program or all (program NULL); gross, before any '
    'debt the expiring points would settle';

REVOKE EXECUTE ON FUNCTION loyalty.liability_rows() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.program_kpis(text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.cohort_retention(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION loyalty.expiring_points(interval, text) FROM PUBLIC;
