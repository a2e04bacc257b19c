-- bench/ops/rules_setup.sql: 20 active rules on the bench program (one per
-- category c1..c20, multiplier 2), for the earn_rules case; and the floor's
-- rule table. Run only when loyalty.add_rule exists.
SELECT count(loyalty.add_rule('bench', 'r' || g,
         jsonb_build_object('kind', 'multiplier', 'multiplier', 2, 'match', jsonb_build_object('category', 'c' || g))))
  FROM generate_series(1, 20) g;
CREATE TABLE floor_rule (category text PRIMARY KEY, multiplier numeric NOT NULL);
INSERT INTO floor_rule SELECT 'c' || g, 2 FROM generate_series(1, 20) g;
ANALYZE floor_rule;
