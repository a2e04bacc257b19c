-- ---------------------------------------------------------------------------
-- Money-like operations (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.earn(member bigint, amount numeric, idempotency_key text,
                             at timestamptz DEFAULT now(), attrs jsonb DEFAULT '{}')
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_earn'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.earn(bigint, numeric, text, timestamptz, jsonb) IS
    'credit points for a purchase of `amount`';

CREATE FUNCTION loyalty.award(member bigint, points bigint, reason text, idempotency_key text,
                              at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_award'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.award(bigint, bigint, text, text, timestamptz) IS
    'credit bonus points that are not tied to a purchase';

CREATE FUNCTION loyalty.redeem(member bigint, points bigint, idempotency_key text,
                               at timestamptz DEFAULT now(), reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_redeem'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.redeem(bigint, bigint, text, timestamptz, text) IS
    'spend available points, soonest-expiring lots first';

CREATE FUNCTION loyalty.reverse(member bigint, original_key text, amount numeric,
                                idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_reverse'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.reverse(bigint, text, numeric, text, timestamptz) IS
    'take back the points of a refunded (part of a) purchase';

CREATE FUNCTION loyalty.adjust(member bigint, points bigint, reason text, idempotency_key text,
                               at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_adjust'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.adjust(bigint, bigint, text, text, timestamptz) IS
    'manual correction by staff (positive or negative); reason required';

CREATE FUNCTION loyalty.transfer(from_member bigint, to_member bigint, points bigint,
                                 idempotency_key text, at timestamptz DEFAULT now())
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'loyalty_transfer'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.transfer(bigint, bigint, bigint, text, timestamptz) IS
    'move available points between members of one program; lots keep their expiry';

