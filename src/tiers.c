/*
 * tiers.c: the qualifying figure and promotion.
 *
 * The qualifying figure counts purchases (points earned, money spent or
 * visits, per the program's tier_basis) inside the program's window at a
 * given business time. Spending and expiry never reduce it; refunds do, at
 * the date of the purchase they refund.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static LyQuery q_window_sum = {
	"SELECT coalesce(sum(qualifying), 0) FROM loyalty.entry "
	" WHERE member_id = $1 AND qualifying <> 0 AND qualifying_at >= $2 AND qualifying_at <= $3",
	3, {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID}, NULL};

/*
 * The qualifying figure at `at`, plus `extra` dated `extra_at` (the
 * contribution of the operation being written, not yet in the ledger).
 */
Numeric
ly_qualifying_at(Member *m, TimestampTz at, Numeric extra, TimestampTz extra_at)
{
	Program    *p = m->prog;
	TimestampTz start;
	Datum		v[3];
	Numeric		sum;

	switch (p->s.tier_window)
	{
		case WINDOW_LIFETIME:
			return ly_num_add(m->qualifying, extra);
		case WINDOW_CALENDAR_YEAR:
			start = ly_year_start(at, p->tz);
			break;
		case WINDOW_ROLLING:
		default:
			/* (at - N months, at]: a purchase exactly N months ago has left */
			start = ly_add_months(at, -p->s.tier_window_months, p->tz) + 1;
			break;
	}
	v[0] = Int64GetDatum(m->id);
	v[1] = TimestampTzGetDatum(start);
	v[2] = TimestampTzGetDatum(at);
	ly_run(&q_window_sum, v, NULL, 1);
	sum = ly_get_numeric(0, 1);
	if (extra_at >= start && extra_at <= at)
		sum = ly_num_add(sum, extra);
	return sum;
}

/* Move the member up to the highest tier the figure reaches (never down). */
void
ly_promote(Member *m, Numeric qualifying, TimestampTz at)
{
	Program    *p = m->prog;
	int			best = m->tier;
	int			i;

	for (i = m->tier + 1; i < p->ntiers; i++)
		if (ly_num_cmp(p->tiers[i].threshold, qualifying) <= 0)
			best = i;
	if (best == m->tier)
		return;
	ly_record_tier_change(m->id, at, p->tiers[m->tier].code, p->tiers[best].code,
						  "promotion", qualifying);
	m->tier = best;
	m->tier_since = at;
}

static LyQuery q_tier_change = {
	"INSERT INTO loyalty.tier_change (member_id, at, from_tier, to_tier, reason, qualifying) "
	"VALUES ($1, $2, $3, $4, $5, $6)", 6,
	{INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID}, NULL};

void
ly_record_tier_change(int64 member_id, TimestampTz at, const char *from, const char *to,
					  const char *reason, Numeric qualifying)
{
	Datum		v[6];
	char		n[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	v[0] = Int64GetDatum(member_id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = from ? CStringGetTextDatum(from) : (Datum) 0;
	n[2] = from ? ' ' : 'n';
	v[3] = CStringGetTextDatum(to);
	v[4] = CStringGetTextDatum(reason);
	v[5] = qualifying ? NumericGetDatum(qualifying) : (Datum) 0;
	n[5] = qualifying ? ' ' : 'n';
	ly_run(&q_tier_change, v, n, 0);
}
