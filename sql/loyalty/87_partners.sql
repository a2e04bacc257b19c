-- ---------------------------------------------------------------------------
-- Partners (coalition programs): a partner funds the points it issues at its
-- price per point, and is owed for the points redeemed with it. Earns name the
-- partner in attrs ("partner": code), redemptions through partner_redeem; the
-- entry's detail records the partner and the price at that moment.
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.partner_id_seq;
CREATE TABLE loyalty.partner (
    id              bigint PRIMARY KEY DEFAULT nextval('loyalty.partner_id_seq'),
    program_id      bigint NOT NULL REFERENCES loyalty.program,
    code            text NOT NULL CHECK (code <> ''),
    name            text NOT NULL,
    price_per_point numeric NOT NULL CHECK (price_per_point >= 0 AND price_per_point < 'Infinity'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.partner_id_seq OWNED BY loyalty.partner.id;
SELECT pg_catalog.pg_extension_config_dump('loyalty.partner', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.partner_id_seq', '');

CREATE FUNCTION loyalty.add_partner(program text, code text, name text, price_per_point numeric)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    id  bigint;
BEGIN
    IF add_partner.program IS NULL OR add_partner.code IS NULL OR add_partner.name IS NULL
       OR add_partner.price_per_point IS NULL THEN
        RAISE EXCEPTION 'program, code, name and price_per_point must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF octet_length(add_partner.code) NOT BETWEEN 1 AND 512 OR octet_length(add_partner.name) NOT BETWEEN 1 AND 512 THEN
        RAISE EXCEPTION 'code and name must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF add_partner.price_per_point = 'NaN' OR add_partner.price_per_point < 0
       OR add_partner.price_per_point = 'Infinity' THEN
        RAISE EXCEPTION 'price_per_point must be a finite number of 0 or more'
            USING ERRCODE = 'LY104', DETAIL = format('The value given was %s.', add_partner.price_per_point);
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p
     WHERE p.code = add_partner.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', add_partner.program USING ERRCODE = 'LY001';
    END IF;
    INSERT INTO loyalty.partner (program_id, code, name, price_per_point)
    VALUES (pid, add_partner.code, add_partner.name, add_partner.price_per_point)
    ON CONFLICT DO NOTHING RETURNING partner.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a partner "%"', add_partner.program, add_partner.code
            USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_partner(text, text, text, numeric) IS
    'add a coalition partner that funds the points it issues at price_per_point';

CREATE FUNCTION loyalty.partner_redeem(member bigint, points bigint, partner text, idempotency_key text,
                                       at timestamptz DEFAULT now(), reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_partner_redeem'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.partner_redeem(bigint, bigint, text, text, timestamptz, text) IS
    'spend points at a partner (a redeem entry the partner is owed for)';

-- What each partner owes the program (points it issued, at its price) and is owed
-- (points redeemed with it), for entries dated in [from_at, to_at); refunds of a
-- partner's purchases reduce what it issued. The last row (partner NULL) is the total.
CREATE FUNCTION loyalty.partner_settlement(program text, from_at timestamptz, to_at timestamptz)
    RETURNS TABLE (partner text, name text, price_per_point numeric, points_issued bigint,
                   points_redeemed bigint, issued_value numeric, redeemed_value numeric,
                   balance numeric)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
BEGIN
    IF partner_settlement.program IS NULL OR partner_settlement.from_at IS NULL
       OR partner_settlement.to_at IS NULL THEN
        RAISE EXCEPTION 'program, from_at and to_at must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p WHERE p.code = partner_settlement.program;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', partner_settlement.program USING ERRCODE = 'LY001';
    END IF;
    IF partner_settlement.from_at >= partner_settlement.to_at THEN
        RAISE EXCEPTION 'from_at must be before to_at' USING ERRCODE = 'LY038';
    END IF;
    RETURN QUERY
    WITH moves AS (
        SELECT e.detail ->> 'partner' AS code, e.kind, e.points,
               (e.detail ->> 'partner_price')::numeric AS price
          FROM loyalty.entry e
          JOIN loyalty.member m ON m.id = e.member_id AND m.program_id = pid
         WHERE e.kind IN ('earn', 'reverse', 'redeem') AND e.detail ? 'partner'
           AND e.at >= partner_settlement.from_at AND e.at < partner_settlement.to_at
    ), per AS (
        SELECT pa.code, pa.name, pa.price_per_point,
               coalesce(sum(mv.points) FILTER (WHERE mv.kind IN ('earn', 'reverse')), 0)::bigint AS issued,
               coalesce(-sum(mv.points) FILTER (WHERE mv.kind = 'redeem'), 0)::bigint AS redeemed,
               coalesce(sum(mv.points * mv.price) FILTER (WHERE mv.kind IN ('earn', 'reverse')), 0) AS issued_value,
               coalesce(-sum(mv.points * mv.price) FILTER (WHERE mv.kind = 'redeem'), 0) AS redeemed_value
          FROM loyalty.partner pa
          LEFT JOIN moves mv ON mv.code = pa.code
         WHERE pa.program_id = pid
         GROUP BY pa.id, pa.code, pa.name, pa.price_per_point
    )
    SELECT * FROM (
        SELECT per.code, per.name, per.price_per_point, per.issued, per.redeemed,
               per.issued_value, per.redeemed_value, per.issued_value - per.redeemed_value
          FROM per ORDER BY per.code) x
    UNION ALL
    SELECT NULL, 'total', NULL, coalesce(sum(per.issued), 0)::bigint, coalesce(sum(per.redeemed), 0)::bigint,
           coalesce(sum(per.issued_value), 0), coalesce(sum(per.redeemed_value), 0),
           coalesce(sum(per.issued_value - per.redeemed_value), 0)
      FROM per;
END
$$;
COMMENT ON FUNCTION loyalty.partner_settlement(text, timestamptz, timestamptz) IS
    'per partner over [from_at, to_at): points issued (net of refunds) and redeemed, their value at the '
    'price recorded on each entry, and the balance (positive: the partner owes the program); last row: total';
REVOKE EXECUTE ON FUNCTION loyalty.partner_settlement(text, timestamptz, timestamptz) FROM PUBLIC;

-- Points a partner issued that are still outstanding: what is left of the lots its
-- earns created (open, not past their expiry now), valued at its current price. Points
-- that moved by transfer count for nobody. A liability, not a settlement: it says what
-- redemptions of the partner's points could still cost.
CREATE VIEW loyalty.partner_liability AS
SELECT p.code AS program, pa.code AS partner, pa.name, pa.price_per_point,
       coalesce(sum(l.remaining), 0)::bigint AS outstanding_points,
       coalesce(sum(l.remaining), 0) * pa.price_per_point AS outstanding_value
  FROM loyalty.partner pa
  JOIN loyalty.program p ON p.id = pa.program_id
  LEFT JOIN (loyalty.entry e
             JOIN loyalty.lot l ON l.member_id = e.member_id AND l.entry_id = e.id
                               AND l.state <> 'x' AND l.remaining > 0
                               AND (l.expires_at IS NULL OR l.expires_at > now()))
         ON e.kind = 'earn' AND e.detail ->> 'partner' = pa.code
        AND e.member_id IN (SELECT m.id FROM loyalty.member m WHERE m.program_id = pa.program_id)
 GROUP BY p.code, pa.id, pa.code, pa.name, pa.price_per_point;
COMMENT ON VIEW loyalty.partner_liability IS
    'per partner: points its earns issued that are still outstanding now, and their value at its price';
