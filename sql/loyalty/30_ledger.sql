-- ---------------------------------------------------------------------------
-- The ledger: one row per movement, never updated or deleted
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.entry_id_seq;

-- What a ledger entry records. An enum rather than a CHECK on text: validated on
-- input, four bytes on disk, and no constraint expression to evaluate per insert.
CREATE TYPE loyalty.entry_kind AS ENUM (
    'earn', 'award', 'redeem', 'reverse', 'adjust', 'transfer_in', 'transfer_out', 'expire',
    'subscribe', 'renew', 'reward_refund');

-- Every key includes member_id so that the ledger can be sharded by member.
-- The receipt columns (available_after, pending_after, tier_after) make a
-- replay return exactly what the first call returned.
--
-- Storage per earn (issue 8, README Performance): an earn's request and detail
-- hold only what the other columns and the defaults do not say, and nothing is
-- NULL rather than {} (5 bytes, 8 with the alignment of the next column).
-- statement() shows an earn's detail in full (src/operations.c earn_detail).
--
-- The ledger tables (entry, lot, lot_draw, tier_change) carry no foreign keys
-- or CHECK constraints, nor do the member's tier columns (20_members.sql): only
-- the C core writes them, under the member's lock, and a per-row constraint
-- check would cost more than the write it guards (see the README's performance
-- section). loyalty.check_invariants() verifies the same rules (no orphans, lots
-- within bounds, tiers of the member's program) over the whole ledger, and every
-- test ends by calling it.
CREATE TABLE loyalty.entry (
    member_id        bigint NOT NULL,
    id               bigint NOT NULL DEFAULT nextval('loyalty.entry_id_seq'),
    kind             loyalty.entry_kind NOT NULL,
    points           bigint NOT NULL,
    at               timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    idempotency_key  text,
    request          jsonb,                -- NULL: none (since 1.1; {} before)
    amount           numeric,
    reason           text,
    ref_entry_id     bigint,
    counterparty_id  bigint,
    qualifying       numeric NOT NULL DEFAULT 0,
    qualifying_at    timestamptz,
    detail           jsonb,                -- NULL: none (since 1.1; {} before)
    available_after  bigint NOT NULL,
    pending_after    bigint NOT NULL,
    tier_after       text NOT NULL,
    PRIMARY KEY (member_id, id),
    UNIQUE (member_id, idempotency_key)
);
ALTER SEQUENCE loyalty.entry_id_seq OWNED BY loyalty.entry.id;
-- A member's entries are found through the primary key (member_id, id); the
-- only other indexes serve the qualifying window and refunds. Every index here
-- is written on each earn, so each must earn its place.
CREATE INDEX entry_qualifying ON loyalty.entry (member_id, qualifying_at) WHERE qualifying <> 0;
CREATE INDEX entry_refunds ON loyalty.entry (member_id, ref_entry_id) WHERE kind = 'reverse';

-- ---------------------------------------------------------------------------
-- Lots: what is left of each credit, when it becomes available and expires
-- ---------------------------------------------------------------------------

CREATE SEQUENCE loyalty.lot_id_seq;

-- state: 'p' counted in member.pending, 'a' counted in member.available,
-- 'x' closed (expired or drawn to zero). A lot with negative points is a debt
-- left by a reversal under negative_balance = allow; it is always available.
CREATE TABLE loyalty.lot (
    member_id    bigint NOT NULL,
    id           bigint NOT NULL DEFAULT nextval('loyalty.lot_id_seq'),
    entry_id     bigint NOT NULL,
    at           timestamptz NOT NULL,
    points       bigint NOT NULL,
    remaining    bigint NOT NULL,
    available_at timestamptz NOT NULL,
    expires_at   timestamptz,
    source_lot   bigint,
    state        "char" NOT NULL,
    PRIMARY KEY (member_id, id)
) WITH (fillfactor = 90);   -- draws update remaining in place (HOT)
ALTER SEQUENCE loyalty.lot_id_seq OWNED BY loyalty.lot.id;
-- A member's open lots, by expiry: draws, expiry, the next transition, tier
-- reviews and reminders read them. No id in the key (issue 8: 8 bytes less per
-- entry): the readers order the few lots of one expiry instant by id themselves,
-- and lots of a member that expire together (end_of_period) share one posting
-- list (B-tree deduplication).
CREATE INDEX lot_live ON loyalty.lot (member_id, expires_at) WHERE state <> 'x';

-- Which lots each debit (redeem, transfer_out, reverse, adjust, expire) drew
-- from. A negative draw on a debt lot is a settlement of that debt.
CREATE TABLE loyalty.lot_draw (
    member_id bigint NOT NULL,
    entry_id  bigint NOT NULL,
    lot_id    bigint NOT NULL,
    at        timestamptz NOT NULL,
    points    bigint NOT NULL,
    PRIMARY KEY (member_id, entry_id, lot_id)
);
CREATE INDEX lot_draw_lot ON loyalty.lot_draw (member_id, lot_id);

-- Every tier a member has held, from enrolment on. No foreign key to member
-- (see above): a review or promotion writes one row per changed member.
CREATE SEQUENCE loyalty.tier_change_id_seq;
CREATE TABLE loyalty.tier_change (
    member_id  bigint NOT NULL,
    id         bigint NOT NULL DEFAULT nextval('loyalty.tier_change_id_seq'),
    at         timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_tier  text,
    to_tier    text NOT NULL,
    reason     text NOT NULL,
    qualifying numeric,
    detail     jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (member_id, id)
);
ALTER SEQUENCE loyalty.tier_change_id_seq OWNED BY loyalty.tier_change.id;
CREATE INDEX tier_change_member_at ON loyalty.tier_change (member_id, at);

