-- ---------------------------------------------------------------------------
-- Paid memberships: plans and subscriptions
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.plan_id_seq;
-- A membership plan: what a period costs, how long it lasts, the tier it
-- grants for that time, and the points it gives (on signup, on each renewal).
CREATE TABLE loyalty.plan (
    id                   bigint PRIMARY KEY DEFAULT nextval('loyalty.plan_id_seq'),
    program_id           bigint NOT NULL REFERENCES loyalty.program,
    code                 text NOT NULL CHECK (code <> ''),
    name                 text NOT NULL,
    price                numeric NOT NULL CHECK (price >= 0 AND price < 'Infinity'),
    period_months        integer NOT NULL CHECK (period_months BETWEEN 1 AND 120),
    tier_id              bigint REFERENCES loyalty.tier,
    benefits             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(benefits) = 'object'),
    renews               boolean NOT NULL DEFAULT true,
    signup_bonus_points  bigint NOT NULL DEFAULT 0 CHECK (signup_bonus_points >= 0),
    renewal_bonus_points bigint NOT NULL DEFAULT 0 CHECK (renewal_bonus_points >= 0),
    UNIQUE (program_id, code)
);
ALTER SEQUENCE loyalty.plan_id_seq OWNED BY loyalty.plan.id;

CREATE SEQUENCE loyalty.subscription_id_seq;
-- A member's subscriptions; at most one has not lapsed.
CREATE TABLE loyalty.subscription (
    member_id    bigint NOT NULL REFERENCES loyalty.member,
    id           bigint NOT NULL DEFAULT nextval('loyalty.subscription_id_seq'),
    plan_id      bigint NOT NULL REFERENCES loyalty.plan,
    started_at   timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    auto_renew   boolean NOT NULL,
    cancelled_at timestamptz,
    lapsed_at    timestamptz,
    periods      integer NOT NULL DEFAULT 1,
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.subscription_id_seq OWNED BY loyalty.subscription.id;
CREATE UNIQUE INDEX subscription_current ON loyalty.subscription (member_id) WHERE lapsed_at IS NULL;

