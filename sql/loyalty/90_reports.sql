-- ---------------------------------------------------------------------------
-- Reports (issue 7): views and functions for reporting tools
-- ---------------------------------------------------------------------------
--
-- Shared definitions (also in the README):
--   * Balances "now" classify the lots by now(), exactly like loyalty.balance(m, now()):
--     a lot whose expiry instant (its expires_at, or the member's inactivity deadline)
--     is <= now() counts as expired even before maintenance has written its expire
--     entry, a pending lot whose available_at <= now() counts as available, and points
--     that expired while the member owed a debt settle the debt first.
--   * Periods are half-open: from_at <= at < to_at, on business time (entry.at).
--   * Active member: at least one earn or redeem entry in the period.
--   * Purchase: an earn entry.
--   * Points issued: points of earn, award, subscribe and renew entries and of positive
--     adjust entries. Transfers move existing points and are neither issued nor redeemed.
--   * Points redeemed: points of redeem entries (as a positive number).
--   * Points expired: points of expire entries, plus lots already past their expiry whose
--     expire entry maintenance has not written yet (classified by now()).
--   * Redemption rate = points redeemed / points issued; breakage rate = points expired /
--     points issued (both in the same period; NULL when nothing was issued).
--   * Repeat purchase rate = members with 2+ purchases / members with 1+ purchases.
--
-- Views run with the privileges of their owner; the functions are SECURITY DEFINER
-- (search_path pinned, read-only, EXECUTE revoked from PUBLIC). So a reporting role
-- needs only USAGE on the schema, SELECT on the views and EXECUTE on the functions:
-- it can read the reports and nothing else (see the README).

-- Debts (negative lots left by refunds under negative_balance = allow) are rare; the
-- liability view finds the members who owe through this index instead of scanning all
-- lots. It costs nothing on the write path: it is partial (only debt lots are in it) and
-- its columns (points, state) are already indexed by lot_live, so HOT updates are unchanged.
CREATE INDEX lot_debt ON loyalty.lot (member_id) WHERE points < 0 AND state <> 'x';

-- Who is this member and where do they stand?
CREATE VIEW loyalty.member_summary AS
SELECT m.id AS member_id,
       p.code AS program,
       m.external_ref,
       t.code AS tier,
       m.enrolled_at,
       (coalesce(b.a, 0) + least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS available,
       coalesce(b.p, 0)::bigint AS pending,
       m.lifetime_earned,
       m.redeemed,
       (m.expired + coalesce(b.x, 0) - least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS expired,
       m.last_activity_at,
       b.next_expiry,
       coalesce(b.next_expiry_points, 0)::bigint AS next_expiry_points,
       m.lifetime_spend,
       m.lifetime_visits,
       (coalesce(b.debt, 0) - least(coalesce(b.x, 0), coalesce(b.debt, 0)))::bigint AS debt,
       m.qualifying,
       m.tier_since
  FROM loyalty.member m
  JOIN loyalty.program p ON p.id = m.program_id
  JOIN loyalty.tier t ON t.id = m.tier_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN p.expiry_policy = 'inactivity'
                   THEN loyalty.add_months_local(m.last_activity_at, p.expiry_months, p.timezone)
              END AS deadline) dl
 CROSS JOIN LATERAL (
       -- the member's open lots classified by now(), summed per expiry instant
       SELECT sum(g.a) AS a, sum(g.p) AS p, sum(g.x) AS x, sum(g.debt) AS debt,
              min(g.expiry) FILTER (WHERE g.live > 0) AS next_expiry,
              (array_agg(g.live ORDER BY g.expiry) FILTER (WHERE g.live > 0 AND g.expiry IS NOT NULL))[1]
                  AS next_expiry_points
         FROM (SELECT c.expiry,
                      sum(c.rem) FILTER (WHERE c.st = 'a') AS a,
                      sum(c.rem) FILTER (WHERE c.st = 'p') AS p,
                      sum(c.rem) FILTER (WHERE c.st = 'x') AS x,
                      -sum(c.rem) FILTER (WHERE c.st = 'a' AND c.rem < 0) AS debt,
                      sum(c.rem) FILTER (WHERE c.st <> 'x' AND c.rem > 0) AS live
                 FROM (SELECT l.remaining AS rem,
                              CASE WHEN l.points < 0 THEN NULL
                                   ELSE coalesce(l.expires_at, dl.deadline) END AS expiry,
                              CASE WHEN l.points < 0 THEN 'a'
                                   WHEN coalesce(l.expires_at, dl.deadline) <= now() THEN 'x'
                                   WHEN l.available_at > now() THEN 'p'
                                   ELSE 'a' END AS st
                         FROM loyalty.lot l
                        WHERE l.member_id = m.id AND l.state <> 'x' AND l.remaining <> 0) c
                GROUP BY c.expiry) g) b;
COMMENT ON VIEW loyalty.member_summary IS
    'one row per member: program, external_ref, current tier, balances now (lots classified by now(), '
    'the same figures as loyalty.balance(member, now()) whether or not maintenance has run), last activity '
    '(earn, award, redeem, adjust, transfer, subscribe, renew), next expiry instant and its points, lifetime '
    'spend (money, net of refunds) and visits (purchases not fully refunded), debt (points owed after a '
    'refund of spent points), qualifying figure and tier_since';

-- How are members spread over the tiers?
CREATE VIEW loyalty.tier_distribution AS
SELECT p.code AS program,
       t.code AS tier,
       t.name AS tier_name,
       t.threshold,
       count(m.id) AS members,
       CASE WHEN sum(count(m.id)) OVER (PARTITION BY p.id) > 0
            THEN count(m.id)::numeric / sum(count(m.id)) OVER (PARTITION BY p.id) END AS share
  FROM loyalty.program p
  JOIN loyalty.tier t ON t.program_id = p.id
  LEFT JOIN loyalty.member m ON m.tier_id = t.id
 GROUP BY p.id, p.code, t.id, t.code, t.name, t.threshold;
COMMENT ON VIEW loyalty.tier_distribution IS
    'per program and tier (every tier, also empty ones): members holding it now (member.tier_id) '
    'and their share of the program''s members (NULL when the program has none)';

-- Look up a program by code, with the project's errors.
CREATE FUNCTION loyalty.report_program(program text) RETURNS loyalty.program
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p loyalty.program;
BEGIN
    IF report_program.program IS NULL THEN
        RAISE EXCEPTION 'program must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT * INTO p FROM loyalty.program x WHERE x.code = report_program.program;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', report_program.program USING ERRCODE = 'LY001';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION loyalty.report_program(text) IS
    'the program with this code (LY034 when NULL, LY001 when unknown); used by the report functions';

CREATE FUNCTION loyalty.member_value(program text, horizon_years numeric DEFAULT 3)
    RETURNS TABLE (member_id bigint, external_ref text, enrolled_at timestamptz, tenure_days numeric,
                   visits bigint, spend numeric, avg_order_value numeric, spend_per_year numeric,
                   points_earned bigint, points_cost numeric, clv_estimate numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p loyalty.program;
BEGIN
    p := loyalty.report_program(member_value.program);
    IF member_value.horizon_years IS NULL THEN
        RAISE EXCEPTION 'horizon_years must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF member_value.horizon_years = 'NaN' OR member_value.horizon_years <= 0
       OR member_value.horizon_years > 100 THEN
        RAISE EXCEPTION 'horizon_years must be above 0 and at most 100' USING ERRCODE = 'LY038';
    END IF;
    RETURN QUERY
    SELECT m.id, m.external_ref, m.enrolled_at, t.days, m.lifetime_visits, m.lifetime_spend,
           m.lifetime_spend / nullif(m.lifetime_visits, 0),
           m.lifetime_spend / (greatest(t.days, 30) / 365.25),
           m.lifetime_earned, m.lifetime_earned * p.cost_per_point,
           m.lifetime_spend / (greatest(t.days, 30) / 365.25) * member_value.horizon_years
      FROM loyalty.member m
     CROSS JOIN LATERAL (
           SELECT greatest(extract(epoch FROM now() - m.enrolled_at) / 86400, 0)::numeric AS days) t
     WHERE m.program_id = p.id
     ORDER BY m.id;
END
$$;
COMMENT ON FUNCTION loyalty.member_value(text, numeric) IS
    'per member of a program, now: tenure_days (since enrolment), visits (purchases not fully refunded), '
    'spend (money, net of refunds), avg_order_value = spend / visits, spend_per_year = spend / tenure in '
    'years (365.25 days; tenure counted as at least 30 days), points_earned (lifetime_earned) and '
    'points_cost = points_earned * cost_per_point, and the simple lifetime value estimate '
    'clv_estimate = spend_per_year * horizon_years (revenue, before margin and points cost)';

REVOKE EXECUTE ON FUNCTION loyalty.member_value(text, numeric) FROM PUBLIC;
