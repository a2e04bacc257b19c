-- ---------------------------------------------------------------------------
-- Earning rules (src/rules.c): multipliers, bonuses, per-unit bonuses and
-- exclusions, evaluated by earn in C. Rules are never deleted: an entry's
-- detail names the rules that gave its points, so they must stay explainable.
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.rule_id_seq;
CREATE TABLE loyalty.rule (
    id          bigint PRIMARY KEY DEFAULT nextval('loyalty.rule_id_seq'),
    program_id  bigint NOT NULL REFERENCES loyalty.program,
    code        text NOT NULL CHECK (code <> ''),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('exclude', 'multiplier', 'bonus', 'per_unit')),
    definition  jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,            -- business time from which the rule no longer applies
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.rule_id_seq OWNED BY loyalty.rule.id;

-- Points each capped rule gave a member in one cap period (a local day, week,
-- month or year, or '-infinity' for "ever"). Written under the member's lock by
-- earn, given back by refunds.
CREATE TABLE loyalty.rule_usage (
    member_id    bigint NOT NULL,
    rule_id      bigint NOT NULL,
    period_start timestamptz NOT NULL,
    points       bigint NOT NULL,
    last_given   bigint NOT NULL,       -- what the last purchase got (read back by earn)
    PRIMARY KEY (member_id, rule_id, period_start)
) WITH (fillfactor = 80);   -- updated in place by every capped earn (HOT)

-- Backends cache parsed rules per program (src/rules.c); any change drops them.
CREATE TRIGGER rule_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.rule
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();

SELECT pg_catalog.pg_extension_config_dump('loyalty.rule', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.rule_usage', '');

CREATE FUNCTION loyalty.add_rule(program text, code text, definition jsonb)
    RETURNS bigint
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_add_rule'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.add_rule(text, text, jsonb) IS
    'add an earning rule (multiplier, bonus, per_unit, exclude) to a program; the definition is validated';

CREATE FUNCTION loyalty.end_rule(program text, code text, at timestamptz DEFAULT now())
    RETURNS timestamptz
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_end_rule'
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION loyalty.end_rule(text, text, timestamptz) IS
    'stop a rule for purchases dated at or after `at` (rules are never deleted)';

CREATE VIEW loyalty.rules AS
SELECT p.code AS program, r.id AS rule_id, r.code, r.name, r.kind,
       (r.definition ->> 'priority')::integer AS priority,
       r.definition ->> 'group' AS stacking_group,
       r.definition, r.created_at, r.ended_at,
       (r.ended_at IS NULL OR r.ended_at > now())
         AND (r.definition ->> 'valid_from' IS NULL OR (r.definition ->> 'valid_from')::timestamptz <= now())
         AND (r.definition ->> 'valid_to' IS NULL OR (r.definition ->> 'valid_to')::timestamptz > now())
         AS active_now
  FROM loyalty.rule r
  JOIN loyalty.program p ON p.id = r.program_id;
COMMENT ON VIEW loyalty.rules IS
    'every earning rule with its program, kind, stacking group, definition and whether it applies now';

-- A refund of specific lines of a basket purchase.
CREATE FUNCTION loyalty.reverse_lines(member bigint, original_key text, lines jsonb,
                                      idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_reverse_lines'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.reverse_lines(bigint, text, jsonb, text, timestamptz) IS
    'refund lines of a basket purchase: [{"line": N, "qty": Q}]; takes back exactly those lines'' points';

-- Per rule over a period: how often it applied, the points it gave and took back, the
-- spend it applied to and the members it reached (read from the entries' detail).
CREATE FUNCTION loyalty.rule_performance(program text, from_at timestamptz, to_at timestamptz)
    RETURNS TABLE (rule_id bigint, code text, name text, kind text, times_applied bigint,
                   points_given bigint, points_reversed bigint, net_points bigint,
                   spend numeric, members_reached bigint, points_per_spend numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF rule_performance.program IS NULL OR rule_performance.from_at IS NULL
       OR rule_performance.to_at IS NULL THEN
        RAISE EXCEPTION 'program, from_at and to_at must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = rule_performance.program;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', rule_performance.program USING ERRCODE = 'LY001';
    END IF;
    IF rule_performance.from_at >= rule_performance.to_at THEN
        RAISE EXCEPTION 'from_at must be before to_at' USING ERRCODE = 'LY038';
    END IF;
    RETURN QUERY
    WITH entries AS (
        SELECT e.id, e.kind, e.member_id, e.detail
          FROM loyalty.entry e
          JOIN loyalty.member m ON m.id = e.member_id AND m.program_id = pid
         WHERE e.kind IN ('earn', 'reverse') AND e.detail ? 'rules'
           AND e.at >= rule_performance.from_at AND e.at < rule_performance.to_at
    ), applied AS (
        SELECT (x ->> 'rule')::bigint AS rid, e.id, e.kind, e.member_id,
               (x ->> 'points')::bigint AS pts, (x ->> 'spend')::numeric AS spend
          FROM entries e CROSS JOIN LATERAL jsonb_array_elements(e.detail -> 'rules') x
        UNION ALL   -- exclusions: the lines (or purchases) they kept from earning
        SELECT (x ->> 'rule')::bigint, e.id, e.kind, e.member_id, 0, 0
          FROM entries e CROSS JOIN LATERAL jsonb_array_elements(e.detail -> 'excluded') x
         WHERE e.detail ? 'excluded'
    ), agg AS (
        SELECT a.rid,
               count(DISTINCT a.id) FILTER (WHERE a.kind = 'earn') AS n,
               coalesce(sum(a.pts) FILTER (WHERE a.kind = 'earn'), 0) AS given,
               coalesce(-sum(a.pts) FILTER (WHERE a.kind = 'reverse'), 0) AS reversed,
               coalesce(sum(a.spend) FILTER (WHERE a.kind = 'earn'), 0) AS spend,
               count(DISTINCT a.member_id) FILTER (WHERE a.kind = 'earn') AS members
          FROM applied a GROUP BY a.rid
    )
    SELECT r.id, r.code, r.name, r.kind, coalesce(g.n, 0)::bigint,
           coalesce(g.given, 0)::bigint, coalesce(g.reversed, 0)::bigint,
           (coalesce(g.given, 0) - coalesce(g.reversed, 0))::bigint,
           coalesce(g.spend, 0), coalesce(g.members, 0)::bigint,
           CASE WHEN coalesce(g.spend, 0) > 0 THEN round(g.given / g.spend, 4) END
      FROM loyalty.rule r
      LEFT JOIN agg g ON g.rid = r.id
     WHERE r.program_id = pid
     ORDER BY r.id;
END
$$;
COMMENT ON FUNCTION loyalty.rule_performance(text, timestamptz, timestamptz) IS
    'per earning rule over [from_at, to_at): times applied, points given and reversed, spend it applied to, members reached';
REVOKE EXECUTE ON FUNCTION loyalty.rule_performance(text, timestamptz, timestamptz) FROM PUBLIC;
