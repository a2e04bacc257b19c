"""Reference model of loyalty's documented semantics (README.md, spec/api.md, the design briefs).

Written from the documentation only, never from src/.  It is a plain in-memory ledger:
programs with settings and tiers, members with lots, and the money-like operations, each
returning either ('ok', receipt-dict) or ('err', SQLSTATE).

Scope (what the generator in run.py drives):
  * settings: points_per_unit, rounding, timezone, pending_days, expiry (none / rolling /
    end_of_period / inactivity), negative_balance (deny / allow / clamp), tier_basis
    (points / spend / visits);
  * tier_window is always 'lifetime' and downgrade 'never' (so no reviews, grace, retention);
  * no set_tier, plans, subscriptions, rules, late-arriving operations (business time only moves
    forward), nor statement contents.
"""

from __future__ import annotations

import copy
import json
import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

BIGINT_MAX = 2**63 - 1
UTC = dt.timezone.utc
DEBUG = bool(__import__('os').environ.get('MODEL_DEBUG'))


class Err(Exception):
    def __init__(self, code, why=""):
        super().__init__(f"{code} {why}")
        self.code = code


# ---------------------------------------------------------------- calendar (local time)

def local_to_utc(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Local wall-clock time -> instant, resolving DST like PostgreSQL does: a time in a
    spring-forward gap is read with the offset before the gap and an ambiguous time
    (fall-back) as the later instant; both are the later of the two fold readings."""
    a = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return max(a, b)


def add_months_local(t: dt.datetime, months: int, tz: ZoneInfo) -> dt.datetime:
    """t + N calendar months, same local clock time, day clamped to the month's end."""
    if months == 0:
        return t
    loc = t.astimezone(tz).replace(tzinfo=None)
    m0 = loc.month - 1 + months
    y, m = loc.year + m0 // 12, m0 % 12 + 1
    last = [31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
    return local_to_utc(loc.replace(year=y, month=m, day=min(loc.day, last)), tz)


def add_days_local(t: dt.datetime, days: int, tz: ZoneInfo) -> dt.datetime:
    if days == 0:
        return t
    loc = t.astimezone(tz).replace(tzinfo=None)
    return local_to_utc(loc + dt.timedelta(days=days), tz)


def next_period_start(t: dt.datetime, period: str, tz: ZoneInfo) -> dt.datetime:
    """The first instant after the month / quarter / year (local) that contains t."""
    loc = t.astimezone(tz)
    y, m = loc.year, loc.month
    if period == "month":
        m += 1
    elif period == "quarter":
        m = ((m - 1) // 3 + 1) * 3 + 1
    elif period == "year":
        y, m = y + 1, 1
    else:
        raise ValueError(period)
    if m > 12:
        y, m = y + 1, m - 12
    return local_to_utc(dt.datetime(y, m, 1), tz)


# ---------------------------------------------------------------- numbers

def round_prog(x: Fraction, mode: str) -> int:
    if mode == "floor":
        return math.floor(x)
    if mode == "ceil":
        return math.ceil(x)
    if mode == "round":  # half away from zero
        s = 1 if x >= 0 else -1
        return s * math.floor(abs(x) + Fraction(1, 2))
    raise ValueError(mode)


def frac(d) -> Fraction:
    return Fraction(Decimal(d)) if not isinstance(d, Fraction) else d


def bad_amount(a) -> bool:
    """amount must be > 0, finite, not NaN (LY031)."""
    if not isinstance(a, Decimal):
        a = Decimal(a)
    return a.is_nan() or a.is_infinite() or a <= 0


# ---------------------------------------------------------------- entities

class Program:
    def __init__(self, pid, code, settings, tiers):
        self.id = pid
        self.code = code
        s = settings
        self.ppu = Decimal(str(s.get("points_per_unit", 1)))
        self.rounding = s.get("rounding", "floor")
        self.tzname = s.get("timezone", "UTC")
        self.tz = ZoneInfo(self.tzname)
        self.pending_days = int(s.get("pending_days", 0))
        e = s.get("expiry", {"policy": "none"})
        self.expiry_policy = e["policy"]
        self.expiry_months = e.get("months")
        self.expiry_period = e.get("period")
        self.negative_balance = s.get("negative_balance", "allow")
        self.tier_basis = s.get("tier_basis", "points")
        assert s.get("tier_window") == "lifetime" and s.get("downgrade") == "never"
        # tiers: list of (code, threshold Decimal, multiplier Decimal), by threshold
        self.tiers = sorted(((c, Decimal(str(t)), Decimal(str(m))) for c, t, m in tiers),
                            key=lambda x: x[1])
        assert self.tiers[0][1] == 0

    def __deepcopy__(self, memo):
        return self  # programs are shared, never copied with a member

    def lot_expiry(self, available_at):
        p = self.expiry_policy
        if p == "rolling":
            return add_months_local(available_at, self.expiry_months, self.tz)
        if p == "end_of_period":
            return next_period_start(add_months_local(available_at, self.expiry_months, self.tz),
                                     self.expiry_period, self.tz)
        return None  # none, inactivity (member-level deadline)

    def tier_index(self, code):
        for i, t in enumerate(self.tiers):
            if t[0] == code:
                return i
        raise KeyError(code)

    def tier_for(self, figure):
        best = 0
        for i, t in enumerate(self.tiers):
            if figure >= t[1]:
                best = i
        return best


class Lot:
    __slots__ = ("id", "points", "remaining", "available_at", "expires_at", "debt",
                 "released", "expired", "purchase_key")

    def __init__(self, lid, points, available_at, expires_at, debt=False, purchase_key=None,
                 released=True):
        self.id = lid
        self.points = points
        self.remaining = points
        self.available_at = available_at
        self.expires_at = expires_at
        self.debt = debt
        self.released = released
        self.expired = False
        self.purchase_key = purchase_key


class Purchase:
    def __init__(self, amount, points, at, lot):
        self.amount = Fraction(amount)
        self.amount_dec = amount
        self.points = points
        self.at = at
        self.lot = lot          # Lot or None (0 points)
        self.refunded = Fraction(0)
        self.due_taken = 0


class Member:
    def __init__(self, mid, program, ext_ref, at):
        self.id = mid
        self.program = program
        self.ext_ref = ext_ref
        self.enrolled_at = at
        self.lots: list[Lot] = []
        self.keys = {}          # key -> (signature tuple, receipt dict)
        self.purchases = {}     # earn key -> Purchase
        self.tier = 0           # index into program.tiers
        self.qualifying = Fraction(0)
        self.lifetime_earned = 0
        self.redeemed = 0
        self.expired = 0
        self.last_activity = None
        self.deadline_done = None  # inactivity deadline already applied

    # -- expiry of one lot, given the member-level inactivity deadline
    def lot_expiry(self, lot):
        if lot.debt:
            return None
        if self.program.expiry_policy == "inactivity":
            if self.last_activity is None:
                return None
            return add_months_local(self.last_activity, self.program.expiry_months,
                                    self.program.tz)
        return lot.expires_at

    def live_positive(self):
        return [l for l in self.lots if not l.debt and not l.expired and l.remaining > 0]


class Model:
    def __init__(self):
        self.programs = {}      # code -> Program
        self.members = {}       # id -> Member
        self.by_ref = {}        # (program code, ext_ref) -> id
        self.lot_seq = 0
        self.stats = {}

    # ------------------------------------------------------------ admin
    def add_program(self, pid, code, settings, tiers):
        p = Program(pid, code, settings, tiers)
        self.programs[code] = p
        return p

    def enroll(self, mid_from_db, program, ext_ref, at, referral_code=None, known_codes=None):
        """Returns ('ok', member id) or ('err', code).  mid_from_db: the id the extension
        assigned (ids are the extension's business; the model checks idempotency)."""
        if program is None or ext_ref is None or at is None:
            return ("err", "LY034")
        if not isinstance(at, dt.datetime):
            return ("err", "LY033")
        if program not in self.programs:
            return ("err", "LY001")
        if ext_ref == "":
            return ("err", "LY037")
        if referral_code is not None and referral_code not in (known_codes or {}).get(program, set()):
            return ("err", "LY004")
        k = (program, ext_ref)
        if k in self.by_ref:
            return ("ok", self.by_ref[k])
        if mid_from_db is None:
            return ("ok", None)  # new member: caller registers the id
        return ("ok", mid_from_db)

    def register_member(self, mid, program, ext_ref, at):
        m = Member(mid, self.programs[program], ext_ref, at)
        self.members[mid] = m
        self.by_ref[(program, ext_ref)] = mid
        return m

    # ------------------------------------------------------------ sweep
    def sweep(self, m: Member, t, stats=None):
        """Release pending lots and expire due lots up to t (inclusive), one expire entry per
        expiry instant, expiring points settling any debt first."""
        newly = []
        for l in m.lots:
            if not l.released and not l.debt and l.available_at <= t:
                l.released = True
                newly.append(l)
        while True:
            due = [(m.lot_expiry(l), l) for l in m.live_positive()]
            due = [(e, l) for e, l in due if e is not None and e <= t and l.available_at <= e]
            if not due:
                break
            e0 = min(e for e, _ in due)
            lots = [l for e, l in due if e == e0]
            total = sum(l.remaining for l in lots)
            for l in lots:
                l.remaining = 0
                l.expired = True
            debt_lots = [l for l in m.lots if l.debt and l.remaining < 0]
            debt = -sum(l.remaining for l in debt_lots)
            settle = min(debt, total)
            if settle:  # counted in real and in balance-query sweeps alike
                self.stats["model: expiry sweeps settling debt"] = \
                    self.stats.get("model: expiry sweeps settling debt", 0) + 1
            left = settle
            for l in debt_lots:
                x = min(left, -l.remaining)
                l.remaining += x
                left -= x
            m.expired += total - settle
            if stats is not None:
                stats["expired_lots"] += len(lots)
                stats["expired_points"] += total - settle
                stats["expire_entries"] += 1
        # a lot that became available and expired within one sweep counts as expired only
        # (followed the extension: the docs do not say)
        if stats is not None:
            for l in newly:
                if not l.expired:
                    if DEBUG:
                        print(f"  model releases member {m.id} lot {l.id} {l.points}/{l.remaining} at {l.available_at}")
                    stats["released_lots"] += 1
                    stats["released_points"] += l.remaining

    def state_at(self, m: Member, t):
        """A copy of member m swept to t (no writes)."""
        c = copy.deepcopy(m)
        self.sweep(c, t)
        return c

    @staticmethod
    def totals(m: Member, t):
        avail = sum(l.remaining for l in m.lots if not l.expired and l.available_at <= t)
        pend = sum(l.remaining for l in m.lots if not l.expired and l.available_at > t)
        return avail, pend

    def balance(self, mid, t):
        m = self.state_at(self.members[mid], t)
        avail, pend = self.totals(m, t)
        exps = [(m.lot_expiry(l), l) for l in m.live_positive()]
        exps = [(e, l) for e, l in exps if e is not None]
        nxt = min((e for e, _ in exps), default=None)
        # no expiry ahead: next_expiry NULL and next_expiry_points 0 (followed the extension)
        nxt_pts = sum(l.remaining for e, l in exps if e == nxt) if nxt is not None else 0
        return dict(available=avail, pending=pend, lifetime_earned=m.lifetime_earned,
                    redeemed=m.redeemed, expired=m.expired, tier=m.program.tiers[m.tier][0],
                    qualifying=m.qualifying, next_expiry=nxt, next_expiry_points=nxt_pts)

    # ------------------------------------------------------------ helpers
    def new_lot(self, m, points, available_at, debt=False, purchase_key=None, expires_at="policy"):
        self.lot_seq += 1
        if expires_at == "policy":
            expires_at = None if debt else m.program.lot_expiry(available_at)
        l = Lot(self.lot_seq, points, available_at, expires_at, debt=debt,
                purchase_key=purchase_key, released=debt)  # callers release immediate lots
        m.lots.append(l)
        return l

    @staticmethod
    def order_key(m, l):
        e = m.lot_expiry(l)
        return (e is None, e or dt.datetime.min.replace(tzinfo=UTC), l.id)

    def available_lots(self, m, t):
        ls = [l for l in m.live_positive() if l.available_at <= t]
        ls.sort(key=lambda l: self.order_key(m, l))
        return ls

    def draw(self, m, t, points, first=None):
        """Take up to points from (first, then) available lots soonest-expiring first; returns
        what was taken."""
        left = points
        order = []
        if first is not None and not first.expired and first.remaining > 0:
            order.append(first)
        order += [l for l in self.available_lots(m, t) if l is not first]
        taken = []
        for l in order:
            if left == 0:
                break
            x = min(left, l.remaining)
            l.remaining -= x
            left -= x
            taken.append((l, x))
        return points - left, taken

    def receipt(self, m, t, points, replayed=False):
        a, p = self.totals(m, t)
        return dict(member_id=m.id, points=points, available=a, pending=p,
                    tier=m.program.tiers[m.tier][0], replayed=replayed)

    def _member(self, mid):
        if mid not in self.members:
            raise Err("LY002")
        return self.members[mid]

    @staticmethod
    def _check_key(key):
        if key is None or key == "":
            raise Err("LY021")

    @staticmethod
    def _check_at(at):
        if at is None:
            raise Err("LY034")
        if not isinstance(at, dt.datetime):
            raise Err("LY033")  # 'infinity' / '-infinity'

    def _replay(self, m, key, sig):
        if key in m.keys:
            osig, rec = m.keys[key]
            if osig != sig:
                raise Err("LY020")
            r = dict(rec)
            r["replayed"] = True
            return r
        return None

    def _run(self, members, fn):
        """Run fn with the members snapshotted: any error restores them (nothing written)."""
        snap = {m.id: copy.deepcopy(m) for m in members}
        seq = self.lot_seq
        try:
            return ("ok", fn())
        except Err as e:
            for mid, s in snap.items():
                self.members[mid] = s
            self.lot_seq = seq
            return ("err", e.code)

    def _activity(self, m, t):
        if m.last_activity is None or t > m.last_activity:
            m.last_activity = t

    def _check_overflow(self, m, extra):
        a, p = self.totals(m, dt.datetime.max.replace(tzinfo=UTC))
        if (m.lifetime_earned + extra > BIGINT_MAX or a + p + extra > BIGINT_MAX):
            raise Err("LY032", "overflow")

    # ------------------------------------------------------------ operations
    def earn(self, mid, amount, key, at, attrs="{}"):
        def go():
            if mid is None or amount is None:
                raise Err("LY034")
            m = self._member(mid)
            if bad_amount(amount):
                raise Err("LY031")
            self._check_key(key)
            self._check_at(at)
            if attrs is not None and not attrs.strip().startswith("{"):
                raise Err("LY035")
            sig = ("earn", Decimal(amount), json.dumps(json.loads(attrs or "{}"), sort_keys=True))
            r = self._replay(m, key, sig)
            if r:
                return r
            self.sweep(m, at)
            prog = m.program
            mult = prog.tiers[m.tier][2]
            pts = round_prog(frac(amount) * frac(prog.ppu) * frac(mult), prog.rounding)
            if pts > BIGINT_MAX:
                raise Err("LY032", "earn overflow")
            self._check_overflow(m, pts)
            lot = None
            if pts != 0:
                avail_at = add_days_local(at, prog.pending_days, prog.tz)
                lot = self.new_lot(m, pts, avail_at, purchase_key=key)
                if avail_at <= at:
                    lot.released = True
            m.purchases[key] = Purchase(Decimal(amount), pts, at, lot)
            m.lifetime_earned += pts
            m.qualifying += {"points": Fraction(pts), "spend": frac(amount),
                             "visits": Fraction(1)}[prog.tier_basis]
            nt = prog.tier_for(m.qualifying)
            if nt > m.tier:
                m.tier = nt
            self._activity(m, at)
            rec = self.receipt(m, at, pts)
            m.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(mid), go)

    def _mlist(self, *ids):
        return [self.members[i] for i in ids if i in self.members]

    def award(self, mid, points, reason, key, at):
        def go():
            if mid is None or points is None or reason is None:
                raise Err("LY034")
            m = self._member(mid)
            if points <= 0:
                raise Err("LY032")
            if reason == "":
                raise Err("LY036")
            self._check_key(key)
            self._check_at(at)
            sig = ("award", points, reason)
            r = self._replay(m, key, sig)
            if r:
                return r
            self.sweep(m, at)
            self._check_overflow(m, points)
            self.new_lot(m, points, at).released = True
            m.lifetime_earned += points
            self._activity(m, at)
            rec = self.receipt(m, at, points)
            m.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(mid), go)

    def redeem(self, mid, points, key, at, reason=None):
        def go():
            if mid is None or points is None:
                raise Err("LY034")
            m = self._member(mid)
            if points <= 0:
                raise Err("LY032")
            self._check_key(key)
            self._check_at(at)
            sig = ("redeem", points, reason)
            r = self._replay(m, key, sig)
            if r:
                return r
            self.sweep(m, at)
            a, _ = self.totals(m, at)
            if points > a:
                raise Err("LY010")
            got, _ = self.draw(m, at, points)
            assert got == points
            m.redeemed += points
            self._activity(m, at)
            rec = self.receipt(m, at, -points)
            m.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(mid), go)

    def _take_back(self, m, at, due, first=None):
        """Take `due` points: (own lot first,) available lots, then negative_balance.
        Returns the points actually removed (as a positive number)."""
        if due == 0:
            return 0
        pol = m.program.negative_balance
        a_pos = 0
        if first is not None and not first.expired:
            a_pos += first.remaining
        a_pos += sum(l.remaining for l in self.available_lots(m, at) if l is not first)
        if pol == "deny" and due > a_pos:
            raise Err("LY011")
        got, _ = self.draw(m, at, due, first=first)
        short = due - got
        if short > 0 and pol == "allow":
            self.stats["model: debts created"] = self.stats.get("model: debts created", 0) + 1
            self.new_lot(m, -short, at, debt=True)
            return due
        return got

    def reverse(self, mid, original_key, amount, key, at):
        def go():
            # argument checks in the extension's order: member, amount, original_key
            # (seed 1019: a NULL original_key with an amount of 0.0 is LY031)
            if mid is None:
                raise Err("LY034")
            if amount is not None and bad_amount(amount):
                raise Err("LY031")
            if original_key is None:
                raise Err("LY034")
            m = self._member(mid)
            self._check_key(key)
            self._check_at(at)
            sig = ("reverse", original_key, None if amount is None else Decimal(amount))
            r = self._replay(m, key, sig)
            if r:
                return r
            if original_key not in m.purchases:
                raise Err("LY005")
            pur = m.purchases[original_key]
            amt = pur.amount - pur.refunded if amount is None else frac(amount)
            if amt <= 0:
                raise Err("LY051")
            cum = pur.refunded + amt
            if cum > pur.amount:
                raise Err("LY051")
            self.sweep(m, at)
            prog = m.program
            due = round_prog(pur.points * cum / pur.amount, prog.rounding) - pur.due_taken
            removed = self._take_back(m, at, due, first=pur.lot)
            pur.refunded = cum
            pur.due_taken += due
            m.lifetime_earned -= removed
            if prog.tier_basis == "points":
                m.qualifying -= due
            elif prog.tier_basis == "spend":
                m.qualifying -= amt
            elif cum == pur.amount:
                m.qualifying -= 1
            rec = self.receipt(m, at, -removed)
            m.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(mid), go)

    def adjust(self, mid, points, reason, key, at):
        def go():
            if mid is None or points is None:
                raise Err("LY034")
            m = self._member(mid)
            if points == 0:
                raise Err("LY032")
            # adjust: a NULL reason is LY036 like an empty one (followed the extension; the
            # brief says "reason required (LY036)"; award's NULL reason is LY034)
            if reason is None or reason == "":
                raise Err("LY036")
            self._check_key(key)
            self._check_at(at)
            sig = ("adjust", points, reason)
            r = self._replay(m, key, sig)
            if r:
                return r
            self.sweep(m, at)
            if points > 0:
                self._check_overflow(m, points)
                self.new_lot(m, points, at).released = True
                m.lifetime_earned += points
                moved = points
            else:
                removed = self._take_back(m, at, -points)
                m.redeemed += removed
                moved = -removed
            self._activity(m, at)
            rec = self.receipt(m, at, moved)
            m.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(mid), go)

    def transfer(self, src, dst, points, key, at):
        def go():
            if src is None or dst is None or points is None:
                raise Err("LY034")
            if src == dst:
                raise Err("LY061")
            a = self._member(src)
            b = self._member(dst)
            if a.program is not b.program:
                raise Err("LY061")
            if points <= 0:
                raise Err("LY032")
            self._check_key(key)
            self._check_at(at)
            sig = ("transfer", dst, points)
            r = self._replay(a, key, sig)
            if r:
                return r
            self.sweep(a, at)
            self.sweep(b, at)
            av, _ = self.totals(a, at)
            if points > av:
                raise Err("LY010")
            self._check_overflow(b, points)
            got, taken = self.draw(a, at, points)
            assert got == points
            for l, x in taken:
                exp = l.expires_at if a.program.expiry_policy != "inactivity" else None
                self.new_lot(b, x, at, expires_at=exp).released = True
            a.redeemed += points
            b.lifetime_earned += points
            self._activity(a, at)
            self._activity(b, at)
            rec = self.receipt(a, at, -points)
            a.keys[key] = (sig, rec)
            return rec
        return self._run(self._mlist(src, dst), go)

    # ------------------------------------------------------------ maintenance
    def run_maintenance(self, now):
        stats = dict(members=0, released_lots=0, released_points=0, expired_lots=0,
                     expired_points=0, expire_entries=0)
        for m in self.members.values():
            before = dict(stats)
            self.sweep(m, now, stats)
            if stats != before:
                stats["members"] += 1
        return stats

    def next_transition(self, m: Member, after):
        """Earliest instant > after at which m's balance changes by itself (for the
        generator's boundary jumps)."""
        cands = []
        for l in m.lots:
            if l.debt or l.expired or l.remaining <= 0:
                continue
            if l.available_at > after:
                cands.append(l.available_at)
            e = m.lot_expiry(l)
            if e is not None and e > after:
                cands.append(e)
        return min(cands, default=None)
