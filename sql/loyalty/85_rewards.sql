-- ---------------------------------------------------------------------------
-- Rewards catalog and signed vouchers (src/vouchers.c)
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.reward_id_seq;
-- What members can spend points on, and what it grants (a discount, a free
-- item, free shipping, cashback, or anything the app understands).
CREATE TABLE loyalty.reward (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.reward_id_seq'),
    program_id         bigint NOT NULL REFERENCES loyalty.program,
    code               text NOT NULL CHECK (code <> ''),
    name               text NOT NULL,
    cost_points        bigint NOT NULL CHECK (cost_points > 0),
    stock              bigint CHECK (stock >= 0),            -- NULL: unlimited
    valid_from         timestamptz,
    valid_until        timestamptz,
    min_tier_id        bigint REFERENCES loyalty.tier,
    per_member_limit   integer CHECK (per_member_limit > 0), -- NULL: no limit
    grants             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(grants) = 'object'),
    voucher_valid_days integer NOT NULL DEFAULT 30 CHECK (voucher_valid_days BETWEEN 1 AND 3650),
    active             boolean NOT NULL DEFAULT true,
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.reward_id_seq OWNED BY loyalty.reward.id;

-- Signing keys. Only the extension's owner can read them: every function that
-- uses a key is SECURITY DEFINER, and the application never sees a secret.
CREATE TABLE loyalty.voucher_key (
    id         integer PRIMARY KEY CHECK (id BETWEEN 1 AND 63),
    secret     bytea NOT NULL CHECK (length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
REVOKE ALL ON loyalty.voucher_key FROM PUBLIC;

CREATE SEQUENCE loyalty.voucher_id_seq MAXVALUE 68719476735;   -- 36 bits: see the code format
CREATE TABLE loyalty.voucher (
    member_id        bigint NOT NULL REFERENCES loyalty.member,
    id               bigint NOT NULL DEFAULT nextval('loyalty.voucher_id_seq'),
    reward_id        bigint NOT NULL REFERENCES loyalty.reward,
    code             text NOT NULL UNIQUE,
    key_id           integer NOT NULL REFERENCES loyalty.voucher_key,
    issued_at        timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    redeem_entry_id  bigint NOT NULL,
    used_at          timestamptz,
    used_key         text,
    used_recorded_at timestamptz,
    cancelled_at     timestamptz,
    cancel_entry_id  bigint,
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.voucher_id_seq OWNED BY loyalty.voucher.id;
-- A code carries the voucher id, not the member: look it up by id.
CREATE UNIQUE INDEX voucher_id ON loyalty.voucher (id);
CREATE INDEX voucher_redeem_entry ON loyalty.voucher (member_id, redeem_entry_id);
CREATE INDEX voucher_reward ON loyalty.voucher (member_id, reward_id) WHERE cancelled_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('loyalty.reward', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.reward_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher_key', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.voucher_id_seq', '');

CREATE TYPE loyalty.voucher_receipt AS (
    entry_id     bigint,
    member_id    bigint,
    points       bigint,
    available    bigint,
    pending      bigint,
    tier         text,
    replayed     boolean,
    voucher_id   bigint,
    voucher_code text,
    expires_at   timestamptz
);

CREATE FUNCTION loyalty.add_reward(program text, code text, name text, cost_points bigint,
                                   stock bigint DEFAULT NULL, grants jsonb DEFAULT '{}',
                                   valid_from timestamptz DEFAULT NULL, valid_until timestamptz DEFAULT NULL,
                                   min_tier text DEFAULT NULL, per_member_limit integer DEFAULT NULL,
                                   voucher_valid_days integer DEFAULT 30)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pid bigint;
    tid bigint;
    id  bigint;
BEGIN
    IF program IS NULL OR code IS NULL OR name IS NULL OR cost_points IS NULL OR grants IS NULL
       OR voucher_valid_days IS NULL THEN
        RAISE EXCEPTION 'program, code, name, cost_points, grants and voucher_valid_days must not be null'
            USING ERRCODE = 'LY034';
    END IF;
    IF code = '' OR name = '' OR octet_length(code) > 512 OR octet_length(name) > 512 THEN
        RAISE EXCEPTION 'reward code and name must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF cost_points <= 0 THEN
        RAISE EXCEPTION 'cost_points must be positive' USING ERRCODE = 'LY032';
    END IF;
    IF stock < 0 OR per_member_limit < 1 OR voucher_valid_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'stock must be 0 or more, per_member_limit 1 or more, voucher_valid_days 1 to 3650'
            USING ERRCODE = 'LY038';
    END IF;
    IF NOT isfinite(coalesce(valid_from, now())) OR NOT isfinite(coalesce(valid_until, now()))
       OR valid_until <= valid_from THEN
        RAISE EXCEPTION 'the validity window must be finite and end after it starts' USING ERRCODE = 'LY033';
    END IF;
    IF jsonb_typeof(grants) <> 'object' THEN
        RAISE EXCEPTION 'grants must be a JSON object' USING ERRCODE = 'LY035';
    END IF;
    SELECT p.id INTO pid FROM loyalty.program p
     WHERE p.code = add_reward.program AND loyalty.caller_may_use(p.tenant);   -- a foreign program is unknown
    IF pid IS NULL THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    IF min_tier IS NOT NULL THEN
        SELECT t.id INTO tid FROM loyalty.tier t WHERE t.program_id = pid AND t.code = min_tier;
        IF tid IS NULL THEN
            RAISE EXCEPTION 'tier "%" does not exist in program "%"', min_tier, program USING ERRCODE = 'LY003';
        END IF;
    END IF;
    INSERT INTO loyalty.reward (program_id, code, name, cost_points, stock, valid_from, valid_until,
                                min_tier_id, per_member_limit, grants, voucher_valid_days)
    VALUES (pid, add_reward.code, add_reward.name, add_reward.cost_points, add_reward.stock,
            add_reward.valid_from, add_reward.valid_until, tid, add_reward.per_member_limit,
            add_reward.grants, add_reward.voucher_valid_days)
    ON CONFLICT ON CONSTRAINT reward_program_id_code_key DO NOTHING
    RETURNING reward.id INTO id;
    IF id IS NULL THEN
        RAISE EXCEPTION 'program "%" already has a reward "%"', program, code USING ERRCODE = 'LY041';
    END IF;
    RETURN id;
END
$$;
COMMENT ON FUNCTION loyalty.add_reward(text, text, text, bigint, bigint, jsonb, timestamptz, timestamptz, text, integer, integer) IS
    'add a reward to the catalog: cost, stock (NULL unlimited), grants, validity, tier, per-member limit';

CREATE FUNCTION loyalty.redeem_reward(member bigint, reward_code text, idempotency_key text,
                                      at timestamptz DEFAULT now())
    RETURNS loyalty.voucher_receipt
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_redeem_reward'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.redeem_reward(bigint, text, text, timestamptz) IS
    'spend points on a reward: debit, take one from stock and issue a signed voucher, atomically';

CREATE FUNCTION loyalty.check_voucher(code text, at timestamptz DEFAULT now())
    RETURNS TABLE (status text, sqlstate text, voucher_id bigint, member_id bigint, reward text,
                   reward_name text, grants jsonb, issued_at timestamptz, expires_at timestamptz,
                   used_at timestamptz, cancelled_at timestamptz)
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_check_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.check_voucher(text, timestamptz) IS
    'is a code valid, for what, expired, used? status valid/used/expired/cancelled/malformed/mistyped/forged/revoked';

CREATE FUNCTION loyalty.use_voucher(code text, idempotency_key text, at timestamptz DEFAULT now())
    RETURNS TABLE (voucher_id bigint, member_id bigint, reward text, grants jsonb, used_at timestamptz,
                   replayed boolean)
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_use_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.use_voucher(text, text, timestamptz) IS
    'spend a voucher exactly once (a retry with the same key replays; another use is LY095)';

CREATE FUNCTION loyalty.cancel_voucher(code text, idempotency_key text, at timestamptz DEFAULT now(),
                                       reason text DEFAULT NULL)
    RETURNS loyalty.receipt
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_cancel_voucher'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.cancel_voucher(text, text, timestamptz, text) IS
    'cancel an unused voucher: the points come back (entry reward_refund) and the stock';

CREATE FUNCTION loyalty.rotate_voucher_key() RETURNS integer
    LANGUAGE c VOLATILE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_rotate_voucher_key'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.rotate_voucher_key() IS
    'new signing key for new vouchers; codes signed with older keys stay valid until they expire';

CREATE FUNCTION loyalty.revoke_voucher_key(key_id integer) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE loyalty.voucher_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = key_id;
END;
COMMENT ON FUNCTION loyalty.revoke_voucher_key(integer) IS
    'refuse every code signed with this key from now on (LY093)';

CREATE FUNCTION loyalty.voucher_keys()
    RETURNS TABLE (key_id integer, created_at timestamptz, revoked_at timestamptz, current boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT k.id, k.created_at, k.revoked_at,
           k.id = (SELECT max(c.id) FROM loyalty.voucher_key c WHERE c.revoked_at IS NULL)
      FROM loyalty.voucher_key k ORDER BY k.id;
END;
COMMENT ON FUNCTION loyalty.voucher_keys() IS 'the signing keys, without their secrets';

CREATE FUNCTION loyalty.voucher_bundle(program text, store text, at timestamptz DEFAULT now())
    RETURNS jsonb
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_bundle'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.voucher_bundle(text, text, timestamptz) IS
    'offline verification for one store: a derived store key and a tag per outstanding voucher';

CREATE FUNCTION loyalty.voucher_code(voucher_id bigint, key_id integer DEFAULT NULL) RETURNS text
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_code'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.voucher_code(bigint, integer) IS
    'the code of a voucher id under a key (owner only: support and tests)';

CREATE FUNCTION loyalty.voucher_codes(first_id bigint, n integer, key_id integer) RETURNS text[]
    LANGUAGE c STABLE SECURITY DEFINER AS 'MODULE_PATHNAME', 'loyalty_voucher_codes'
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off
    SET jit = off;
COMMENT ON FUNCTION loyalty.voucher_codes(bigint, integer, integer) IS
    'the codes of n consecutive voucher ids under a key (owner only: tests of the code space)';

-- SECURITY DEFINER functions are not for everyone: grant them to the roles that need them.
REVOKE EXECUTE ON FUNCTION loyalty.redeem_reward(bigint, text, text, timestamptz),
                           loyalty.check_voucher(text, timestamptz),
                           loyalty.use_voucher(text, text, timestamptz),
                           loyalty.cancel_voucher(text, text, timestamptz, text),
                           loyalty.rotate_voucher_key(),
                           loyalty.revoke_voucher_key(integer),
                           loyalty.voucher_keys(),
                           loyalty.voucher_bundle(text, text, timestamptz),
                           loyalty.voucher_code(bigint, integer),
                           loyalty.voucher_codes(bigint, integer, integer)
    FROM PUBLIC;

-- No signing key here: the first redeem_reward makes one (src/vouchers.c), so that
-- pg_restore's CREATE EXTENSION leaves voucher_key empty for the dumped keys.

