/*
 * tiers.c: the qualifying figure, promotion, and the tier lifecycle
 * (period-end reviews, grace, pinned and granted tiers).
 *
 * The qualifying figure counts purchases (points earned, money spent or
 * visits, per the program's tier_basis) inside the program's window at a
 * given business time. Spending and expiry never reduce it; refunds do, at
 * the date of the purchase they refund.
 *
 * The member row keeps the figure for its latest business time (q_asof),
 * with the window's lower edge (q_start) and the oldest contribution still
 * inside it (q_oldest). Moving the window forward only reads the entries
 * that left it, and only when the oldest one did: an earn is O(1) amortised,
 * and the figure is exact at the window's edges.
 *
 * A member holds the higher of the tier they earned (by qualifying) and the
 * floors still running (a tier pinned by set_tier, a subscription's tier).
 * The earned tier rises on the purchase that crosses a threshold and falls at
 * reviews: at the end of each window period, or at the end of a grace. A
 * floor's end brings the member back to their earned tier. Each change of the
 * tier held is a row in loyalty.tier_change.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

/* ---- the qualifying window ---- */

/* First instant inside the window that ends at `at`. */
TimestampTz
ly_window_start(Program *p, TimestampTz at)
{
	switch (p->s.tier_window)
	{
		case WINDOW_LIFETIME:
			return DT_NOBEGIN;
		case WINDOW_CALENDAR_YEAR:
			return ly_year_start(at, p->tz);
		case WINDOW_ROLLING:
		default:
			/* (at - N months, at]: a purchase exactly N months ago has left */
			return ly_add_months(at, -p->s.tier_window_months, p->tz) + 1;
	}
}

static LyQuery q_window_sum = {
	"SELECT coalesce(sum(qualifying), 0), min(qualifying_at) FROM loyalty.entry "
	" WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at >= $2 AND qualifying_at <= $3",
	3, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL};

static LyQuery q_window_left = {
	"SELECT (SELECT coalesce(sum(qualifying), 0) FROM loyalty.entry "
	"         WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at >= $2 AND qualifying_at < $3), "
	"       (SELECT qualifying_at FROM loyalty.entry "
	"         WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at >= $3 "
	"         ORDER BY qualifying_at LIMIT 1)",
	3, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL};

/* The figure at `at` from the ledger alone (reviews, late-arriving operations). */
Numeric
ly_figure_at(Member *m, TimestampTz at)
{
	Datum		v[3];

	v[0] = Int64GetDatum(m->id);
	v[1] = TimestampTzGetDatum(ly_window_start(m->prog, at));
	v[2] = TimestampTzGetDatum(at);
	ly_run(&q_window_sum, v, NULL, 1);
	return ly_get_numeric(0, 1);
}

/*
 * What left the window between `start` and q_start, less what came after
 * `at`: the difference between the figure at `at` and the state's figure.
 */
static LyQuery q_window_behind = {
	"SELECT (SELECT coalesce(sum(qualifying), 0) FROM loyalty.entry "
	"         WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at >= $2 AND qualifying_at < $3) "
	"     - (SELECT coalesce(sum(qualifying), 0) FROM loyalty.entry "
	"         WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at > $4)",
	4, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL};

/*
 * The figure at `at`, earlier than the state's q_asof. The state's figure
 * counts every contribution dated from q_start on, so when `at` is inside
 * the state's window the answer is that figure, plus what lies between the
 * window start at `at` and q_start, less what is dated after `at`: two
 * short index ranges. Concurrent operations on one member commit in an order
 * other than their business times (each takes now() before it waits for the
 * member), so most of them arrive a little late; summing the whole window
 * each time made a busy member's earn slower with every purchase.
 */
static Numeric
late_figure(Member *m, TimestampTz at, TimestampTz start)
{
	Datum		v[4];

	if (at < m->q_start || start > m->q_start)
		return ly_figure_at(m, at);
	v[0] = Int64GetDatum(m->id);
	v[1] = TimestampTzGetDatum(start);
	v[2] = TimestampTzGetDatum(m->q_start);
	v[3] = TimestampTzGetDatum(at);
	ly_run(&q_window_behind, v, NULL, 1);
	return ly_num_add(m->qualifying, ly_get_numeric(0, 1));
}

static void
note_contribution(Member *m, Numeric extra, TimestampTz extra_at)
{
	if (extra_at < m->q_start)
		return;					/* dated before the window: counts for nothing now */
	m->qualifying = ly_num_add(m->qualifying, extra);
	if (!m->has_q_oldest || extra_at < m->q_oldest)
	{
		m->q_oldest = extra_at;
		m->has_q_oldest = true;
	}
}

/*
 * The qualifying figure at `at`, counting `extra` dated `extra_at` (the
 * contribution of the operation being written, not yet in the ledger), and
 * move the member's window state forward to `at`.
 */
Numeric
ly_qualifying_at(Member *m, TimestampTz at, Numeric extra, TimestampTz extra_at)
{
	Program    *p = m->prog;
	TimestampTz start = ly_window_start(p, at);
	Datum		v[3];
	bool		isnull;

	if (!m->has_q_state)
	{
		/* first use: read the window once (earn_batch may have read it with its chunk) */
		if (!(ly_batch_active &&
			  ly_batch_window(m->id, start, at, &m->qualifying, &m->q_oldest, &m->has_q_oldest)))
		{
			v[0] = Int64GetDatum(m->id);
			v[1] = TimestampTzGetDatum(start);
			v[2] = TimestampTzGetDatum(at);
			ly_run(&q_window_sum, v, NULL, 1);
			m->qualifying = ly_get_numeric(0, 1);
			m->q_oldest = DatumGetTimestampTz(ly_get(0, 2, &isnull));
			m->has_q_oldest = !isnull;
		}
		m->q_start = start;
		m->q_asof = at;
		m->has_q_state = true;
	}
	else if (at >= m->q_asof)
	{
		/* slide forward: subtract what left, if the oldest contribution did */
		if (start > m->q_start && m->has_q_oldest && m->q_oldest < start)
		{
			Numeric		left;

			v[0] = Int64GetDatum(m->id);
			v[1] = TimestampTzGetDatum(m->q_start);
			v[2] = TimestampTzGetDatum(start);
			ly_run(&q_window_left, v, NULL, 1);
			left = ly_get_numeric(0, 1);
			m->qualifying = ly_num_sub(m->qualifying, left);
			m->q_oldest = DatumGetTimestampTz(ly_get(0, 2, &isnull));
			m->has_q_oldest = !isnull;
		}
		if (start > m->q_start)
			m->q_start = start;
		m->q_asof = at;
	}
	else
	{
		/* a late-arriving operation: answer from the ledger, keep the state */
		Numeric		fig = late_figure(m, at, start);

		if (extra_at >= start && extra_at <= at)
			fig = ly_num_add(fig, extra);
		note_contribution(m, extra, extra_at);
		return fig;
	}
	note_contribution(m, extra, extra_at);
	return m->qualifying;
}

/* ---- reviews ---- */

TimestampTz
ly_add_periods(Member *m, TimestampTz from, int n)
{
	Program    *p = m->prog;

	switch (p->s.tier_window)
	{
		case WINDOW_CALENDAR_YEAR:
			/* the end of from's local year, then n - 1 more years */
			return ly_add_months(ly_period_end(from, PERIOD_YEAR, p->tz), 12 * (n - 1), p->tz);
		case WINDOW_ROLLING:
			return ly_add_months(from, p->s.tier_window_months * n, p->tz);
		case WINDOW_LIFETIME:
		default:
			return ly_add_months(from, 12 * n, p->tz);
	}
}

/*
 * When a tier reached at `at` is first reviewed: at the end of the window
 * period it was reached in (calendar year end, or the anniversary of its start
 * for rolling and lifetime windows), plus tier_retention_periods periods.
 * The base tier and programs that never downgrade need no review.
 */
TimestampTz
ly_first_review(Member *m, TimestampTz at)
{
	if (m->earned_tier <= 0 || m->prog->s.downgrade == DOWNGRADE_NEVER)
		return DT_NOEND;
	return ly_add_periods(m, at, 1 + m->prog->s.tier_retention_periods);
}

static LyQuery q_tier_change = {
	"INSERT INTO loyalty.tier_change (member_id, at, from_tier, to_tier, reason, qualifying, detail) "
	"VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'))", 7,
	{INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, JSONBOID}, NULL};

/* While set (tier_review.c), tier changes are buffered here instead of written. */
static LyTierChanges *tier_sink = NULL;

void
ly_tier_changes_buffer(LyTierChanges *buf)
{
	tier_sink = buf;
}

static void
sink_add(LyTierChanges *b, int64 member_id, TimestampTz at, const char *from, const char *to,
		 const char *reason, Numeric qualifying)
{
	if (b->n == b->cap)
	{
		b->cap = b->cap ? b->cap * 2 : 256;
		b->member = b->n ? repalloc(b->member, sizeof(int64) * b->cap) : palloc(sizeof(int64) * b->cap);
		b->at = b->n ? repalloc(b->at, sizeof(TimestampTz) * b->cap) : palloc(sizeof(TimestampTz) * b->cap);
		b->from = b->n ? repalloc(b->from, sizeof(char *) * b->cap) : palloc(sizeof(char *) * b->cap);
		b->to = b->n ? repalloc(b->to, sizeof(char *) * b->cap) : palloc(sizeof(char *) * b->cap);
		b->reason = b->n ? repalloc(b->reason, sizeof(char *) * b->cap) : palloc(sizeof(char *) * b->cap);
		b->qualifying = b->n ? repalloc(b->qualifying, sizeof(Numeric) * b->cap) : palloc(sizeof(Numeric) * b->cap);
	}
	b->member[b->n] = member_id;
	b->at[b->n] = at;
	b->from[b->n] = from;
	b->to[b->n] = to;
	b->reason[b->n] = reason;
	b->qualifying[b->n] = qualifying;
	b->n++;
}

void
ly_record_tier_change(int64 member_id, TimestampTz at, const char *from, const char *to,
					  const char *reason, Numeric qualifying, Jsonb *detail)
{
	Datum		v[7];
	char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	/* reviews never pass a detail or a null from: the buffer has no columns for them */
	if (tier_sink != NULL && detail == NULL && from != NULL)
	{
		sink_add(tier_sink, member_id, at, from, to, reason, qualifying);
		return;
	}

	v[0] = Int64GetDatum(member_id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = from ? CStringGetTextDatum(from) : (Datum) 0;
	n[2] = from ? ' ' : 'n';
	v[3] = CStringGetTextDatum(to);
	v[4] = CStringGetTextDatum(reason);
	v[5] = qualifying ? NumericGetDatum(qualifying) : (Datum) 0;
	n[5] = qualifying ? ' ' : 'n';
	v[6] = detail ? JsonbPGetDatum(detail) : (Datum) 0;
	n[6] = detail ? ' ' : 'n';
	ly_run(&q_tier_change, v, n, 0);
	if (from != NULL && strcmp(from, to) != 0)
		ly_outbox_emit(0, member_id, "tier_changed", at, ly_jsonb(psprintf("{\"from\": %s, \"to\": %s, \"reason\": %s}", ly_json_str(from), ly_json_str(to), ly_json_str(reason))));
}

int
ly_tier_index(Program *p, const char *code)
{
	int			i;

	for (i = 0; i < p->ntiers; i++)
		if (strcmp(p->tiers[i].code, code) == 0)
			return i;
	return -1;
}

static int
tier_for(Program *p, Numeric figure)
{
	int			best = 0;
	int			i;

	for (i = 1; i < p->ntiers; i++)
		if (ly_num_cmp(p->tiers[i].threshold, figure) <= 0)
			best = i;
	return best;
}

/* The lowest tier a pin or a subscription still guarantees at `at`. */
static int
floor_tier(Member *m, TimestampTz at)
{
	int			f = 0;

	if (m->pinned_tier >= 0 && at < m->pinned_until)
		f = Max(f, m->pinned_tier);
	if (m->has_grant && m->granted_tier >= 0 && at < m->granted_until)
		f = Max(f, m->granted_tier);
	return f;
}

/*
 * The member holds the higher of the tier they earned and the floors still
 * running. Record a change of the tier they hold, dated no earlier than the
 * last one (a late-arriving purchase cannot rewrite history behind a review).
 */
void
ly_apply_tier(Member *m, TimestampTz at, const char *reason, Numeric figure, Jsonb *detail, bool always)
{
	int			now = Max(m->earned_tier, floor_tier(m, at));

	if (at < m->tier_since)
		at = m->tier_since;
	if (now == m->tier && !always)
		return;
	ly_record_tier_change(m->id, at, m->prog->tiers[m->tier].code, m->prog->tiers[now].code,
						  reason, figure, detail);
	m->tier = now;
	m->tier_since = at;
}

/* The member now qualifies for `tier` (reached at `at`): schedule its first review. */
static void
set_earned(Member *m, int tier, TimestampTz at)
{
	m->earned_tier = tier;
	m->has_grace = false;
	m->tier_review_at = ly_first_review(m, at);
}

/* Lower the tier the member qualifies for (staff correction): reviewed next period. */
void
ly_lower_earned(Member *m, int tier, TimestampTz at)
{
	if (tier >= m->earned_tier)
		return;
	m->earned_tier = tier;
	m->has_grace = false;
	m->tier_review_at = tier > 0 && m->prog->s.downgrade != DOWNGRADE_NEVER
		? ly_add_periods(m, at, 1) : DT_NOEND;
}

/* Move the member up to the highest tier the figure reaches (never down). */
void
ly_promote(Member *m, Numeric qualifying, TimestampTz at)
{
	int			best = tier_for(m->prog, qualifying);

	if (best > m->earned_tier)
	{
		set_earned(m, best, at);
		ly_apply_tier(m, at, "promotion", qualifying, NULL, false);
	}
	else if (best == m->earned_tier && m->has_grace)
		m->has_grace = false;	/* back above the threshold: the grace ends */
}

typedef enum { EVAL_REVIEW, EVAL_GRACE_END } EvalKind;

/*
 * Review the earned tier at `at` against the figure of the window that ends
 * just before it (the period that just ended, for a calendar year). Floors
 * (pins, subscriptions) do not change what the member earned: they only keep
 * the tier they hold from falling below them while they run.
 */
static void
evaluate(Member *m, TimestampTz at, EvalKind kind, const char *reason, Numeric figure)
{
	Program    *p = m->prog;
	int			target;
	int			to;

	if (figure == NULL)
		figure = ly_figure_at(m, at - 1);
	target = tier_for(p, figure);

	if (target >= m->earned_tier)
	{
		m->has_grace = false;
		if (target > m->earned_tier)
		{
			set_earned(m, target, at);
			ly_apply_tier(m, at, "promotion", figure, NULL, false);
		}
		return;
	}
	if (p->s.downgrade == DOWNGRADE_NEVER)
		return;
	to = p->s.downgrade == DOWNGRADE_ONE_STEP ? m->earned_tier - 1 : target;
	if (kind == EVAL_REVIEW && p->s.grace_days > 0)
	{
		/* keep the tier for the grace; remember where this review would have gone */
		m->grace_until = ly_add_days(at, p->s.grace_days, p->tz);
		m->grace_tier = to;
		m->has_grace = true;
		return;
	}
	/* a grace never ends lower than the review that started it would have gone */
	if (kind == EVAL_GRACE_END && m->grace_tier > to)
		to = m->grace_tier;
	if (to < m->earned_tier)
	{
		ly_lower_earned(m, to, at);
		ly_apply_tier(m, at, reason, figure, NULL, false);
	}
}

/*
 * A pin or a subscription ended at `at`: the member holds what they earned,
 * which the figure may raise (automatic evaluation resumes) but not lower
 * (that is the reviews' job, on their own schedule).
 */
static void
floor_end(Member *m, TimestampTz at, const char *reason, Numeric figure)
{
	int			target;

	if (figure == NULL)
		figure = ly_figure_at(m, at - 1);
	target = tier_for(m->prog, figure);

	if (target > m->earned_tier)
		set_earned(m, target, at);
	ly_apply_tier(m, at, reason, figure, NULL, false);
}

static LyQuery q_lapse = {
	"UPDATE loyalty.subscription SET lapsed_at = ends_at "
	" WHERE member_id = $1 AND lapsed_at IS NULL AND ends_at <= $2", 2,
	{INT8OID, TIMESTAMPTZOID}, NULL};

/*
 * The first tier event due by t (LY_TIER_* kind, LY_TIER_NONE if none) and
 * its instant. Ties go to the review, then grace, pin, subscription.
 */
int
ly_tier_due(Member *m, TimestampTz t, TimestampTz *at)
{
	TimestampTz e = DT_NOEND;
	int			which = LY_TIER_NONE;

	if (m->tier_review_at <= t)
	{
		e = m->tier_review_at;
		which = LY_TIER_REVIEW;
	}
	if (m->has_grace && m->grace_until <= t && m->grace_until < e)
	{
		e = m->grace_until;
		which = LY_TIER_GRACE_END;
	}
	if (m->pinned_tier >= 0 && m->pinned_until <= t && m->pinned_until < e)
	{
		e = m->pinned_until;
		which = LY_TIER_PIN_END;
	}
	if (m->has_grant && m->granted_until <= t && m->granted_until < e)
	{
		e = m->granted_until;
		which = LY_TIER_GRANT_END;
	}
	*at = e;
	return which;
}

/* Does processing this event read the figure at its instant - 1 (a review in a grace does not). */
bool
ly_tier_event_needs_figure(Member *m, int which)
{
	return which != LY_TIER_NONE && !(which == LY_TIER_REVIEW && m->has_grace);
}

/*
 * Process one due event at e. figure: the qualifying figure at e - 1 when the
 * caller already has it (the set-based review, tier_review.c); NULL reads it.
 */
void
ly_tier_event(Member *m, int which, TimestampTz e, Numeric figure)
{
	switch (which)
	{
		case LY_TIER_REVIEW:
			m->tier_review_at = m->earned_tier > 0 && m->prog->s.downgrade != DOWNGRADE_NEVER
				? ly_add_periods(m, e, 1) : DT_NOEND;
			if (!m->has_grace)
				evaluate(m, e, EVAL_REVIEW, "downgrade", figure);
			break;
		case LY_TIER_GRACE_END:
			m->has_grace = false;
			evaluate(m, e, EVAL_GRACE_END, "grace_end", figure);
			break;
		case LY_TIER_PIN_END:
			m->pinned_tier = -1;
			floor_end(m, e, "override_end", figure);
			break;
		case LY_TIER_GRANT_END:
			{
				Datum		v[2] = {Int64GetDatum(m->id), TimestampTzGetDatum(e)};

				m->granted_tier = -1;
				m->has_grant = false;
				ly_run(&q_lapse, v, NULL, 0);
				floor_end(m, e, "subscription_end", figure);
			}
			break;
	}
}

/* Process every tier event due by t, in the order they fall. */
void
ly_review_tiers(Member *m, TimestampTz t)
{
	for (;;)
	{
		TimestampTz e;
		int			which = ly_tier_due(m, t, &e);

		if (which == LY_TIER_NONE)
			return;
		ly_tier_event(m, which, e, NULL);
	}
}

/* The next moment a tier event is due (for next_transition_at). */
TimestampTz
ly_tier_next_event(Member *m)
{
	TimestampTz e = m->tier_review_at;

	if (m->has_grace && m->grace_until < e)
		e = m->grace_until;
	if (m->pinned_tier >= 0 && m->pinned_until < e)
		e = m->pinned_until;
	if (m->has_grant && m->granted_until < e)
		e = m->granted_until;
	return e;
}
