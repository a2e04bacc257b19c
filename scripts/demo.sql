-- A year in the life of a coffee shop's loyalty program, run by scripts/demo.sh:
--   psql -X -q -v ON_ERROR_STOP=1 -d DB -f scripts/demo.sql   (after CREATE EXTENSION loyalty)
--
-- "Brew Club": 1 point per dollar (rounded down), points pending for 2 days, each lot
-- expires 12 months after it became available; Gold from 500 qualifying points in a rolling
-- 12 months earns 1.5x. Two promotions are earning rules (double points at weekends, 20
-- points on a bag of beans, at most 40 a month) and the 10-stamp card pays 50 points on every
-- 10th purchase (loyalty.add_stamp_card). Twenty customers buy coffee through 2024 (deterministic: setseed), redeem a free
-- drink for 150 points when they can, return a few purchases, one gifts points to a friend,
-- staff make two corrections, and maintenance runs at every month end. Then the clock jumps
-- to 1 March 2025, 14 months after the start, so the oldest unspent points expire.
--
-- Data is changed only through the extension's public functions; the report reads
-- loyalty.balance(), loyalty.statement() and the tables.

\set ON_ERROR_STOP 1
SET timezone = 'America/New_York';
\pset null '-'
\pset footer off

\echo
\echo '=== Brew Club: setting up the program ==='

SELECT loyalty.create_program('brew', 'Brew Club', '{
    "points_per_unit": 1,
    "rounding": "floor",
    "timezone": "America/New_York",
    "pending_days": 2,
    "expiry": {"policy": "rolling", "months": 12},
    "negative_balance": "allow",
    "tier_basis": "points",
    "tier_window": {"rolling_months": 12},
    "downgrade": "period_end"
}') AS program_id \gset
SELECT loyalty.add_tier('brew', 'regular', 'Regular', 0, 1) AS regular_tier \gset
SELECT loyalty.add_tier('brew', 'gold', 'Gold', 500, 1.5, '{"free_refills": true}') AS gold_tier \gset

-- Promotions are rules, evaluated in C inside earn; the paper 10-stamp card is a real one.
SELECT loyalty.add_rule('brew', 'weekend2x', '{"kind": "multiplier", "multiplier": 2,
         "name": "Double points at weekends", "days": ["sat", "sun"]}') AS weekend_rule \gset
SELECT loyalty.add_rule('brew', 'beans20', '{"kind": "bonus", "points": 20,
         "name": "20 points on a bag of beans", "match": {"category": "beans"},
         "cap": {"period": "month", "points": 40}}') AS beans_rule \gset
SELECT loyalty.add_stamp_card('brew', 'ten', 10, '{}', '{"points": 50}', '10-stamp card') AS card \gset
SELECT code, kind, active_now FROM loyalty.rules WHERE program = 'brew' ORDER BY code;

SELECT code, name, points_per_unit, rounding, timezone, pending_days,
       settings -> 'expiry' AS expiry, negative_balance
  FROM loyalty.program WHERE code = 'brew';
SELECT t.code AS tier, t.name, t.threshold, t.earn_multiplier, t.benefits
  FROM loyalty.tier t JOIN loyalty.program p ON p.id = t.program_id
 WHERE p.code = 'brew' ORDER BY t.threshold;

-- ---------------------------------------------------------------------------
-- Customers and their habits (deterministic)
-- ---------------------------------------------------------------------------
SELECT setseed(0.2024) \gset

CREATE TEMP TABLE customer AS
SELECT i,
       name,
       -- visits per week: a few daily regulars, most weekly, some rare
       CASE WHEN i <= 4 THEN 4.5 + random() * 2
            WHEN i <= 14 THEN 1 + random() * 2.5
            ELSE 0.3 + random() * 0.7 END::numeric(4,2) AS per_week,
       -- how eagerly they spend points (0: hoards them)
       CASE WHEN i % 5 = 0 THEN 0 ELSE round(random()::numeric, 2) END AS redeem_rate,
       date '2024-01-01' + (random() * 60)::int AS joined,
       -- two customers stop coming in the spring
       CASE WHEN i IN (7, 16) THEN date '2024-04-30' ELSE date '2024-12-31' END AS last_day
  FROM unnest(ARRAY['ava', 'ben', 'cara', 'dan', 'eli', 'fay', 'gus', 'hana', 'ivan', 'jade',
                    'kai', 'lena', 'milo', 'nora', 'omar', 'pia', 'quinn', 'rosa', 'sam', 'tess'])
       WITH ORDINALITY AS u(name, i);

-- Enrolment; the second half joined with a friend's referral code.
CREATE TEMP TABLE enrolled (i int PRIMARY KEY, member_id bigint NOT NULL);
DO $$
DECLARE
    c record;
    code text;
BEGIN
    FOR c IN SELECT * FROM customer ORDER BY joined, i LOOP
        code := NULL;
        IF c.i > 10 THEN
            SELECT m.referral_code INTO code
              FROM loyalty.member m JOIN enrolled e ON e.member_id = m.id
             WHERE e.i = c.i - 10;
        END IF;
        INSERT INTO enrolled
        VALUES (c.i, loyalty.enroll('brew', c.name,
                                    (c.joined + time '08:00') AT TIME ZONE 'America/New_York',
                                    code));
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- The year's events, in business-time order
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE purchase AS
SELECT row_number() OVER (ORDER BY at, i) AS n,
       row_number() OVER (PARTITION BY i ORDER BY at) AS visit,
       i, member_id, at, amount, wants_redeem, r_return, r_partial, store
  FROM (SELECT c.i, c.per_week, e.member_id,
               random() AS r_visit,
               ((d::date + time '07:00') + random() * interval '11 hours')
                   AT TIME ZONE 'America/New_York' AS at,
               CASE WHEN random() < 0.07 THEN round((18 + random() * 24)::numeric, 2)  -- beans
                    ELSE round((3.25 + random() * 8)::numeric, 2) END AS amount,
               random() < c.redeem_rate AS wants_redeem,
               random() AS r_return,
               random() AS r_partial,
               (ARRAY['downtown', 'campus', 'station'])[1 + (c.i % 3)] AS store
          FROM customer c
          JOIN enrolled e USING (i)
          CROSS JOIN generate_series(timestamp '2024-01-01', timestamp '2024-12-31',
                                     interval '1 day') AS d
         WHERE d::date BETWEEN c.joined AND c.last_day) AS day
 -- in the outer query so that it is drawn per customer and day
 WHERE r_visit < per_week / 7;

CREATE TEMP TABLE event (
    at        timestamptz NOT NULL,
    seq       int NOT NULL,
    kind      text NOT NULL,   -- earn, return, gift, adjust, maintenance
    member_id bigint,
    who       text,            -- the member's name, for readable idempotency keys
    other_id  bigint,
    other     text,
    n         bigint,
    amount    numeric,
    points    bigint,
    note      text,
    wants_redeem boolean,
    visit     bigint
);

INSERT INTO event (at, seq, kind, member_id, who, n, amount, note, wants_redeem, visit)
SELECT p.at, 1, 'earn', p.member_id, c.name, p.n, p.amount, p.store, p.wants_redeem, p.visit
  FROM purchase p JOIN customer c USING (i);

-- About 1.5% of purchases come back 1 to 4 days later: half of them in full, half in part.
INSERT INTO event (at, seq, kind, member_id, n, amount)
SELECT at + interval '1 day' * (1 + floor(r_partial * 4)), 2, 'return', member_id, n,
       CASE WHEN r_partial < 0.5 THEN NULL ELSE round(amount * 0.4, 2) END
  FROM purchase
 WHERE r_return < 0.015;

-- Ava gives Ben 200 points for his birthday (if she has them).
INSERT INTO event (at, seq, kind, member_id, who, other_id, other, points)
SELECT timestamptz '2024-06-15 10:00 America/New_York', 3, 'gift',
       a.member_id, 'ava', b.member_id, 'ben', 200
  FROM enrolled a, enrolled b WHERE a.i = 1 AND b.i = 2;

-- Staff corrections: goodwill after a spilled latte, and a double scan taken back.
INSERT INTO event (at, seq, kind, member_id, who, points, note)
SELECT timestamptz '2024-08-03 09:15 America/New_York', 4, 'adjust', member_id, 'cara', 25,
       'goodwill: spilled latte'
  FROM enrolled WHERE i = 3
UNION ALL
SELECT timestamptz '2024-10-10 16:40 America/New_York', 4, 'adjust', member_id, 'dan', -8,
       'card scanned twice at register 2'
  FROM enrolled WHERE i = 4;

-- Nightly batch at every month end (the first instant of the next month, local time).
INSERT INTO event (at, seq, kind)
SELECT (m + interval '1 month') AT TIME ZONE 'America/New_York', 0, 'maintenance'
  FROM generate_series(timestamp '2024-01-01', timestamp '2024-12-01', interval '1 month') AS m;

CREATE TEMP TABLE maintenance_log (at timestamptz, result jsonb);

\echo
\echo '=== Simulating 2024 ==='

DO $$
DECLARE
    e record;
    r loyalty.receipt;
    avail bigint;
BEGIN
    FOR e IN SELECT * FROM event ORDER BY at, seq, n LOOP
        CASE e.kind
        WHEN 'earn' THEN
            -- the card stamps itself and pays 50 points on every 10th purchase
            r := loyalty.earn(e.member_id, e.amount, 'pos-' || e.n, e.at,
                              jsonb_build_object('store', e.note, 'channel', 'pos',
                                                 'category', CASE WHEN e.amount >= 18 THEN 'beans' ELSE 'drink' END));
            -- A free drink for 150 points, when the customer wants one and can afford it.
            IF e.wants_redeem THEN
                SELECT b.available INTO avail
                  FROM loyalty.balance(e.member_id, e.at + interval '2 seconds') b;
                IF avail >= 150 THEN
                    r := loyalty.redeem(e.member_id, 150, 'drink-' || e.n,
                                        e.at + interval '2 seconds', 'free drink');
                END IF;
            END IF;
        WHEN 'return' THEN
            r := loyalty.reverse(e.member_id, 'pos-' || e.n, e.amount, 'return-' || e.n, e.at);
        WHEN 'gift' THEN
            SELECT b.available INTO avail FROM loyalty.balance(e.member_id, e.at) b;
            IF avail > 0 THEN
                r := loyalty.transfer(e.member_id, e.other_id, least(e.points, avail),
                                      'gift-' || e.who || '-' || e.other || '-'
                                      || to_char(e.at, 'YYYYMMDD'), e.at);
            END IF;
        WHEN 'adjust' THEN
            r := loyalty.adjust(e.member_id, e.points, e.note,
                                'adjust-' || e.who || '-' || to_char(e.at, 'YYYYMMDD'), e.at);
        WHEN 'maintenance' THEN
            INSERT INTO maintenance_log VALUES (e.at, loyalty.run_maintenance(e.at));
        END CASE;
    END LOOP;
END
$$;

\echo
\echo '--- a point-of-sale retry of pos-1 (same key, same arguments) changes nothing ---'
SELECT r.entry_id, r.points, r.replayed AS "retry of pos-1 replayed"
  FROM purchase p, loyalty.earn(p.member_id, p.amount, 'pos-' || p.n, p.at,
                                jsonb_build_object('store', p.store, 'channel', 'pos',
                                                   'category', CASE WHEN p.amount >= 18 THEN 'beans' ELSE 'drink' END)) r
 WHERE p.n = 1;

\echo
\echo '--- the year in ledger entries ---'
SELECT count(*) FILTER (WHERE kind = 'earn')    AS purchases,
       count(*) FILTER (WHERE kind = 'award')   AS stamp_card_awards,
       count(*) FILTER (WHERE kind = 'redeem')  AS free_drinks,
       count(*) FILTER (WHERE kind = 'reverse') AS returns,
       count(*) FILTER (WHERE kind IN ('transfer_in', 'transfer_out')) AS transfer_entries,
       count(*) FILTER (WHERE kind = 'adjust')  AS adjustments,
       count(*) FILTER (WHERE kind = 'expire')  AS expiries,
       to_char(sum(amount) FILTER (WHERE kind = 'earn'), 'FM$999,990.00') AS sales
  FROM loyalty.entry;

\echo
\echo '--- promotions in 2024: loyalty.rule_performance ---'
SELECT code, name, times_applied, points_given, points_reversed, net_points, members_reached
  FROM loyalty.rule_performance('brew', '2024-01-01', '2025-01-01') ORDER BY code;

\echo
\echo '--- why a purchase earned what it did (statement detail, a weekend bag of beans) ---'
SELECT e.idempotency_key, e.amount, e.points, e.detail ->> 'explanation' AS explanation
  FROM loyalty.entry e
 WHERE e.kind = 'earn' AND e.detail -> 'rules' @> '[{"code": "weekend2x"}]'
   AND e.detail -> 'rules' @> '[{"code": "beans20"}]'
 ORDER BY e.at LIMIT 1;

\echo
\echo '--- stamp cards (loyalty.stamp_cards): the five most filled ---'
SELECT m.external_ref AS member, c.card, c.stamps, c.needed, c.completed, c.total_stamps
  FROM loyalty.member m CROSS JOIN LATERAL loyalty.stamp_cards(m.id) c
 ORDER BY c.completed DESC, m.external_ref LIMIT 5;

\echo
\echo '--- month-end maintenance during 2024 ---'
SELECT to_char(at - interval '1 day', 'YYYY-MM') AS month,
       (result ->> 'members')::int         AS members,
       (result ->> 'released_points')::int AS released_points,
       (result ->> 'expired_points')::int  AS expired_points
  FROM maintenance_log ORDER BY at;

\echo
\echo '--- returns (loyalty.reverse) ---'
SELECT m.external_ref AS member, p.amount AS purchase, coalesce(e.amount, p.amount) AS refunded,
       CASE WHEN e.amount IS NULL THEN 'full' ELSE 'partial' END AS kind,
       s.points, to_char(s.at, 'YYYY-MM-DD') AS day
  FROM event e
  JOIN purchase p USING (n)
  JOIN loyalty.member m ON m.id = e.member_id
  JOIN LATERAL loyalty.statement(e.member_id) s ON s.idempotency_key = 'return-' || e.n
 WHERE e.kind = 'return'
 ORDER BY s.at;

\echo
\echo '--- transfer and staff adjustments ---'
SELECT m.external_ref AS member, s.kind, s.points, to_char(s.at, 'YYYY-MM-DD HH24:MI') AS at,
       s.idempotency_key
  FROM loyalty.member m, loyalty.statement(m.id) s
 WHERE s.kind IN ('transfer_in', 'transfer_out', 'adjust')
 ORDER BY s.at, s.kind;

-- ---------------------------------------------------------------------------
-- Fourteen months after the start: 1 March 2025
-- ---------------------------------------------------------------------------
\echo
\echo '=== 14 months later: maintenance on 2025-03-01 00:00 America/New_York ==='
SELECT timestamptz '2025-03-01 00:00 America/New_York' AS report_at \gset
-- balance() answers from the ledger, so it must agree before and after maintenance.
CREATE TEMP TABLE before_maintenance AS
SELECT m.id, b.* FROM loyalty.member m, loyalty.balance(m.id, :'report_at') b;
SELECT jsonb_pretty(loyalty.run_maintenance(:'report_at')) AS run_maintenance;
SELECT count(*) AS members,
       count(*) FILTER (WHERE (x.*) IS NOT DISTINCT FROM (y.*)) AS same_balance_as_before_maintenance
  FROM before_maintenance x
  JOIN (SELECT m.id, b.* FROM loyalty.member m, loyalty.balance(m.id, :'report_at') b) y USING (id);

\echo
\echo '=== Report as of 2025-03-01 ==='
\echo
\echo '--- members: balance(member, report_at) ---'
SELECT m.external_ref AS member, b.tier, b.available, b.pending, b.lifetime_earned,
       b.redeemed, b.expired, b.qualifying,
       to_char(b.next_expiry, 'YYYY-MM-DD') AS next_expiry, b.next_expiry_points,
       CASE WHEN b.available + b.pending = b.lifetime_earned - b.redeemed - b.expired
             AND b.available + b.pending = (SELECT sum(s.points) FROM loyalty.statement(m.id, '-infinity', :'report_at') s)
            THEN 'ok' ELSE 'MISMATCH' END AS ledger
  FROM loyalty.member m
  CROSS JOIN LATERAL loyalty.balance(m.id, :'report_at') b
 WHERE m.program_id = :program_id
 ORDER BY m.external_ref;

\echo
\echo '--- what expired (statement entries of kind expire) ---'
SELECT m.external_ref AS member, to_char(s.at, 'YYYY-MM-DD HH24:MI') AS expired_at, -s.points AS points
  FROM loyalty.member m, loyalty.statement(m.id) s
 WHERE s.kind = 'expire'
 ORDER BY s.at, m.external_ref;
SELECT count(DISTINCT m.id) AS members_with_expiry, count(*) AS expire_entries,
       coalesce(-sum(s.points), 0) AS points_expired
  FROM loyalty.member m, loyalty.statement(m.id) s
 WHERE s.kind = 'expire';

\echo
\echo '--- program liability at $0.01 per point ---'
SELECT sum(b.available) AS available, sum(b.pending) AS pending,
       sum(b.available + b.pending) AS outstanding_points,
       to_char(sum(b.available + b.pending) * 0.01, 'FM$999,990.00') AS liability,
       to_char(sum(b.expired) * 0.01, 'FM$999,990.00') AS expired_value,
       to_char(sum(b.redeemed) * 0.01, 'FM$999,990.00') AS redeemed_value
  FROM loyalty.member m, loyalty.balance(m.id, :'report_at') b
 WHERE m.program_id = :program_id;

\echo
\echo '--- tier distribution ---'
SELECT t.code AS tier, t.threshold, count(b.tier) AS members,
       count(b.tier) FILTER (WHERE EXISTS (SELECT 1 FROM loyalty.tier_change c
                                            WHERE c.member_id = m.id AND c.to_tier = 'gold'))
           AS ever_gold
  FROM loyalty.tier t
  LEFT JOIN (loyalty.member m CROSS JOIN LATERAL loyalty.balance(m.id, :'report_at') b)
         ON b.tier = t.code AND m.program_id = t.program_id
 WHERE t.program_id = :program_id
 GROUP BY t.code, t.threshold ORDER BY t.threshold;

\echo
\echo '--- tier changes ---'
SELECT m.external_ref AS member, to_char(c.at, 'YYYY-MM-DD') AS day, c.from_tier, c.to_tier,
       c.reason, c.qualifying
  FROM loyalty.tier_change c JOIN loyalty.member m ON m.id = c.member_id
 WHERE c.from_tier IS NOT NULL
 ORDER BY c.at, m.external_ref;

\echo
\echo '--- ava''s last ten statement lines ---'
SELECT entry_id, to_char(at, 'YYYY-MM-DD HH24:MI') AS at, kind, points, idempotency_key
  FROM (SELECT s.* FROM loyalty.statement(loyalty.member_id('brew', 'ava')) s
         ORDER BY s.at DESC, s.entry_id DESC LIMIT 10) s
 ORDER BY at, entry_id;

\echo
\echo '=== The shop closes its loyalty desk for 2025: tier reviews ==='
\echo 'Gold is reviewed on each anniversary of reaching it (rolling 12-month window,'
\echo 'downgrade period_end). A review in 2025 looks at the 12 months before it: members'
\echo 'promoted late in 2024 find too few points and drop; the others passed their 2025'
\echo 'review and keep gold until the next anniversary, when they will drop (lapses_at).'
SELECT jsonb_pretty(loyalty.run_maintenance('2026-01-01 00:00 America/New_York')) AS run_maintenance;
SELECT m.external_ref AS member, to_char(h.at, 'YYYY-MM-DD') AS day, h.from_tier, h.to_tier,
       h.reason, h.qualifying
  FROM loyalty.member m, loyalty.tier_history(m.id) h
 WHERE h.reason <> 'enroll' AND h.at >= '2025-01-01'
 ORDER BY h.at, m.external_ref;
SELECT 'ava' AS member, p.tier, p.source, p.qualifying, p.threshold,
       to_char(p.review_at, 'YYYY-MM-DD') AS review_at, to_char(p.lapses_at, 'YYYY-MM-DD') AS lapses_at
  FROM loyalty.tier_progress(loyalty.member_id('brew', 'ava'), '2026-01-01 00:00 America/New_York') p;

\echo '--- loyalty.check_invariants() (no rows: every invariant holds) ---'
\pset footer on
SELECT * FROM loyalty.check_invariants();
\pset footer off
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM loyalty.check_invariants()) THEN
        RAISE EXCEPTION 'loyalty.check_invariants() reports violations';
    END IF;
END
$$;
