#!/usr/bin/env python3
"""fuzz_settings.py: random settings documents against create_program's C parser.

Generates JSON documents mixing known keys with wrong types, out-of-range numbers,
unknown keys, nested junk and deep nesting, and checks that every call either
creates a program or fails with LY030 (invalid setting): never another SQLSTATE,
never a crash. Runs for a bounded time against $PGHOST/$PGPORT/$PGDATABASE.
Usage: fuzz_settings.py [--seconds N] [--seed N]. Prints "N passed, M failed".
"""
import argparse
import json
import random
import sys
import time

import psycopg2

KEYS = ["points_per_unit", "rounding", "timezone", "pending_days", "expiry", "negative_balance",
        "tier_basis", "tier_window", "downgrade", "grace_days", "tier_retention_periods",
        "cost_per_point", "voucher_refund_expiry"]
WORDS = ["floor", "round", "ceil", "none", "rolling", "end_of_period", "inactivity", "month", "quarter",
         "year", "deny", "allow", "clamp", "points", "spend", "visits", "lifetime", "calendar_year",
         "never", "period_end", "one_step", "original", "fresh", "UTC", "Europe/Paris", "Mars/Base", "",
         "America/New_York", "EST5EDT", "+05", "garbage"]


def scalar(r):
    return r.choice([
        lambda: r.choice(WORDS),
        lambda: r.randint(-5, 2000),
        lambda: r.choice([0, 1, 12, 1200, 1201, 3650, 3651, -1, 2**31, 2**63, 10**30]),
        lambda: r.choice([0.5, 1.5, 12.0, 1e-9, 1e300, -0.0]),
        lambda: None, lambda: True, lambda: False,
        lambda: "x" * r.randint(0, 300),
    ])()


def value(r, depth=0):
    k = r.random()
    if depth > 3 or k < 0.55:
        return scalar(r)
    if k < 0.8:
        obj = {}
        for _ in range(r.randint(0, 4)):
            obj[r.choice(["policy", "months", "period", "rolling_months", "x"] + KEYS)] = value(r, depth + 1)
        return obj
    return [value(r, depth + 1) for _ in range(r.randint(0, 3))]


def document(r):
    if r.random() < 0.03:
        d = "{}"
        for _ in range(r.randint(1, 3000)):
            d = '{"expiry": %s}' % d
        return d
    if r.random() < 0.05:
        return json.dumps(value(r))
    doc = {}
    for _ in range(r.randint(0, 6)):
        key = r.choice(KEYS) if r.random() < 0.9 else "k%d" % r.randint(0, 9)
        doc[key] = value(r)
    return json.dumps(doc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    r = random.Random(a.seed)
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS loyalty")
    tried = created = refused = 0
    bad = []
    deadline = time.time() + a.seconds
    while time.time() < deadline:
        doc = document(r)
        tried += 1
        try:
            cur.execute("SELECT loyalty.create_program(%s, 'fuzz', %s::jsonb)", ("fz%d_%d" % (a.seed, tried), doc))
            created += 1
        except psycopg2.Error as e:
            if e.pgcode == "LY030":
                refused += 1
            else:
                bad.append((e.pgcode, str(e).strip().splitlines()[0], doc[:300]))
                if e.pgcode is None:  # the connection died: the backend crashed
                    break
    print("seed %d: %d documents, %d created, %d refused with LY030, %d other outcomes"
          % (a.seed, tried, created, refused, len(bad)))
    for b in bad[:10]:
        print("  unexpected %s: %s\n    settings: %s" % b)
    print("%d passed, %d failed" % ((1, 0) if not bad else (0, 1)))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
