-- run_maintenance takes its due members ORDER BY next_transition_at, id LIMIT n: keyed on the
-- time alone, the index made every batch sort all the members due at the same instant (a
-- million at a period end's tier reviews).
DROP INDEX loyalty.member_due;
CREATE INDEX member_due ON loyalty.member (next_transition_at, id) WHERE next_transition_at < 'infinity';
