-- ---------------------------------------------------------------------------
-- Members and their balances
-- ---------------------------------------------------------------------------

-- The balance columns are maintained by the C core in the same transaction as
-- the ledger entry that changes them; they are correct as of the member's last
-- operation or sweep, and stay correct until `next_transition_at` (the earliest
-- moment a pending lot becomes available or a lot expires).
--
-- The tier columns (tier_id, earned_tier_id, grace_tier_id, pinned_tier_id,
-- granted_tier_id) carry no foreign keys, by the ledger's rule (30_ledger.sql):
-- only the C core writes them, under the member's lock, and every promotion or
-- review would otherwise run a key check per changed column and take a key-share
-- lock on the same few tier rows. The tier side is guarded instead (a tier a
-- member holds cannot be deleted: 52_tier_guard.sql), and check_invariants()
-- verifies that each names a tier of the member's program.
CREATE SEQUENCE loyalty.member_id_seq;
CREATE TABLE loyalty.member (
    id                 bigint PRIMARY KEY DEFAULT nextval('loyalty.member_id_seq'),
    program_id         bigint NOT NULL REFERENCES loyalty.program,
    external_ref       text NOT NULL,
    enrolled_at        timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    referral_code      text NOT NULL,
    referred_by        bigint REFERENCES loyalty.member,
    tier_id            bigint NOT NULL,
    tier_since         timestamptz NOT NULL,
    earned_tier_id     bigint,   -- NULL: the same as tier_id
    available          bigint NOT NULL DEFAULT 0,
    pending            bigint NOT NULL DEFAULT 0,
    lifetime_earned    bigint NOT NULL DEFAULT 0,
    redeemed           bigint NOT NULL DEFAULT 0,
    expired            bigint NOT NULL DEFAULT 0,
    qualifying         numeric NOT NULL DEFAULT 0,
    lifetime_spend     numeric NOT NULL DEFAULT 0,
    lifetime_visits    bigint NOT NULL DEFAULT 0,
    last_activity_at   timestamptz,
    last_entry_at      timestamptz,
    next_transition_at timestamptz NOT NULL DEFAULT 'infinity',
    -- tier state (src/tiers.c): the qualifying window kept incrementally,
    -- the next review of the tier, a grace period, and granted floors
    q_start            timestamptz,
    q_oldest           timestamptz,
    q_asof             timestamptz,
    tier_review_at     timestamptz NOT NULL DEFAULT 'infinity',
    grace_until        timestamptz,
    grace_tier_id      bigint,
    pinned_tier_id     bigint,
    pinned_until       timestamptz,
    granted_tier_id    bigint,
    granted_until      timestamptz,
    UNIQUE (program_id, external_ref),
    -- referral_code first: an index that shared program_id as its prefix could serve, with a
    -- filter, the lookup by external_ref, and a generic plan made on a young table did just that
    UNIQUE (referral_code, program_id)
) WITH (fillfactor = 80);   -- room for HOT updates: every operation updates its member row
ALTER SEQUENCE loyalty.program_id_seq OWNED BY loyalty.program.id;
ALTER SEQUENCE loyalty.tier_id_seq OWNED BY loyalty.tier.id;
ALTER SEQUENCE loyalty.member_id_seq OWNED BY loyalty.member.id;
-- maintenance takes due members in (next_transition_at, id) order, a batch at a time: with id
-- in the index that order needs no sort, whatever the statistics say
CREATE INDEX member_due ON loyalty.member (next_transition_at, id) WHERE next_transition_at < 'infinity';
CREATE INDEX member_referred_by ON loyalty.member (referred_by) WHERE referred_by IS NOT NULL;

