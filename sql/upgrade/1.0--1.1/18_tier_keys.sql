-- 1.0 -> 1.1: no foreign keys from tier_change to member nor from the member's tier
-- columns to tier (30_ledger.sql, 20_members.sql): three key checks per reviewed member
-- were a quarter of a tier review, and every promotion took a key-share lock on the same
-- tier row. Catalog only: dropping a constraint rewrites nothing. 52_tier_guard.sql (a
-- symlink) guards the tier side; check_invariants() gains the checks the keys made: its
-- 1.0 definition is dropped here and 72_invariants.sql (a symlink) creates the 1.1 one;
-- 98_security.sql grants both functions.
ALTER TABLE loyalty.tier_change DROP CONSTRAINT tier_change_member_id_fkey;
ALTER TABLE loyalty.member DROP CONSTRAINT member_tier_id_fkey,
                           DROP CONSTRAINT member_earned_tier_id_fkey,
                           DROP CONSTRAINT member_grace_tier_id_fkey,
                           DROP CONSTRAINT member_pinned_tier_id_fkey,
                           DROP CONSTRAINT member_granted_tier_id_fkey;
DROP FUNCTION loyalty.check_invariants();
