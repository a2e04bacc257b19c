-- ---------------------------------------------------------------------------
-- Programs and tiers
-- ---------------------------------------------------------------------------

-- One row per loyalty program. `settings` is the normalised settings object
-- (every key present); the typed columns beside it are what the C code reads.
CREATE SEQUENCE loyalty.program_id_seq;
CREATE TABLE loyalty.program (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.program_id_seq'),
    code               text NOT NULL UNIQUE CHECK (code <> ''),
    name               text NOT NULL,
    settings           jsonb NOT NULL,
    points_per_unit    numeric NOT NULL CHECK (points_per_unit > 0),
    rounding           text NOT NULL CHECK (rounding IN ('floor', 'round', 'ceil')),
    timezone           text NOT NULL,
    pending_days       integer NOT NULL CHECK (pending_days >= 0),
    expiry_policy      text NOT NULL CHECK (expiry_policy IN ('none', 'rolling', 'end_of_period', 'inactivity')),
    expiry_months      integer NOT NULL CHECK (expiry_months >= 0),
    expiry_period      text CHECK (expiry_period IN ('month', 'quarter', 'year')),
    negative_balance   text NOT NULL CHECK (negative_balance IN ('deny', 'allow', 'clamp')),
    tier_basis         text NOT NULL CHECK (tier_basis IN ('points', 'spend', 'visits')),
    tier_window        text NOT NULL CHECK (tier_window IN ('lifetime', 'calendar_year', 'rolling')),
    tier_window_months integer NOT NULL CHECK (tier_window_months >= 0),
    downgrade          text NOT NULL CHECK (downgrade IN ('never', 'period_end', 'one_step')),
    grace_days         integer NOT NULL CHECK (grace_days >= 0),
    tier_retention_periods integer NOT NULL DEFAULT 0 CHECK (tier_retention_periods >= 0),
    cost_per_point     numeric NOT NULL DEFAULT 0 CHECK (cost_per_point >= 0),
    voucher_refund_expiry text NOT NULL DEFAULT 'original' CHECK (voucher_refund_expiry IN ('original', 'fresh')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE loyalty.tier_id_seq;
CREATE TABLE loyalty.tier (
    id              bigint PRIMARY KEY DEFAULT nextval('loyalty.tier_id_seq'),
    program_id      bigint NOT NULL REFERENCES loyalty.program,
    code            text NOT NULL CHECK (code <> ''),
    name            text NOT NULL,
    threshold       numeric NOT NULL CHECK (threshold >= 0 AND threshold < 'Infinity'),
    earn_multiplier numeric NOT NULL CHECK (earn_multiplier > 0 AND earn_multiplier < 'Infinity'),
    benefits        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(benefits) = 'object'),
    UNIQUE (program_id, code),
    UNIQUE (program_id, threshold)
);

