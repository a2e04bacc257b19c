/*
 * tier_review.c: the set-based tier review of run_maintenance.
 *
 * Most members maintenance finds due at a period end have nothing due but a
 * tier review (or the end of a grace): no lot to release or expire, no pin or
 * subscription ending. For those, ly_tier_review_members replaces the
 * per-member sweep (lock, three lot queries, a figure query per review, a
 * tier_change INSERT and an outbox INSERT per change, the member UPDATE) by a
 * few statements per chunk of members:
 *
 *   1. their member rows and open lots come from expiry_batch.c's round, which
 *      locks and reads each chunk of due members once for both passes;
 *   2. the qualifying figures the reviews need, one grouped query per round
 *      (a round usually suffices: the figures of the following periods'
 *      reviews up to `now` are fetched with the first);
 *   3. the reviews themselves in memory, by the same code as the per-member
 *      path (tiers.c ly_tier_event, given the figure instead of reading it);
 *   4. the tier changes, their outbox events and the member rows written with
 *      one multi-row statement each (INSERT/UPDATE from unnest).
 *
 * The members were selected and locked by that round (FOR UPDATE SKIP LOCKED,
 * maintenance order) in this transaction: the pass takes no lock of its own,
 * and every other member goes through the per-member path unchanged.
 * The setting loyalty.set_based_tier_review (on by default) turns it off;
 * the results are the same either way (test/pgtap/61_tier_review_set_based.sql).
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

bool		ly_set_based_tier_review = true;

#define TR_PREFETCH 8			/* figures fetched per member and round */

void
ly_tier_review_init(void)
{
	DefineCustomBoolVariable("loyalty.set_based_tier_review",
							 "run_maintenance reviews the tiers of members with nothing else due set-based.",
							 "Off: every due member is swept one at a time (same results, slower).",
							 &ly_set_based_tier_review, true, PGC_USERSET, 0, NULL, NULL, NULL);
}

/* tiers.c q_window_sum, per (member, window) */
static LyQuery q_figures = {
	"SELECT (SELECT coalesce(sum(e.qualifying), 0) FROM loyalty.entry e "
	"         WHERE e.member_id = u.id AND e.qualifying <> 0 "
	"           AND e.qualifying_at >= u.lo AND e.qualifying_at <= u.hi) "
	"  FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS u(id, lo, hi, ord) "
	" ORDER BY u.ord", 3, {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}, NULL};

/* tiers.c q_tier_change, many rows (a review never has a detail) */
static LyQuery q_tier_changes = {
	"INSERT INTO loyalty.tier_change (member_id, at, from_tier, to_tier, reason, qualifying) "
	"SELECT u.m, u.at, u.f, u.t, u.r, u.q "
	"  FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::numeric[]) "
	"       WITH ORDINALITY AS u(m, at, f, t, r, q, ord) ORDER BY u.ord", 6,
	{INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID}, NULL};

/* a member under review, with the figures fetched for it */
typedef struct Rev
{
	Member	   *m;
	bool		active;			/* events may be left */
	int			nfig;
	TimestampTz fig_at[TR_PREFETCH];
	Numeric		fig[TR_PREFETCH];
} Rev;

/* the figure requests of a round */
typedef struct Req
{
	int			n;
	int			cap;
	int		   *rev;
	int64	   *member;
	Datum	   *lo;
	Datum	   *hi;
} Req;

static void
req_add(Req *q, int rev, Rev *r, TimestampTz at)
{
	int			i;

	for (i = 0; i < r->nfig; i++)
		if (r->fig_at[i] == at)
			return;
	if (r->nfig == TR_PREFETCH)
		return;
	r->fig_at[r->nfig] = at;
	r->fig[r->nfig] = NULL;
	r->nfig++;
	if (q->n == q->cap)
	{
		q->cap = q->cap ? q->cap * 2 : 1024;
		q->rev = q->n ? repalloc(q->rev, sizeof(int) * q->cap) : palloc(sizeof(int) * q->cap);
		q->member = q->n ? repalloc(q->member, sizeof(int64) * q->cap) : palloc(sizeof(int64) * q->cap);
		q->lo = q->n ? repalloc(q->lo, sizeof(Datum) * q->cap) : palloc(sizeof(Datum) * q->cap);
		q->hi = q->n ? repalloc(q->hi, sizeof(Datum) * q->cap) : palloc(sizeof(Datum) * q->cap);
	}
	q->rev[q->n] = rev;
	q->member[q->n] = r->m->id;
	q->lo[q->n] = TimestampTzGetDatum(ly_window_start(r->m->prog, at));
	q->hi[q->n] = TimestampTzGetDatum(at);
	q->n++;
}

/*
 * Ask for the figure the event at e needs, and for those the member's next
 * reviews up to now will need if this one changes nothing (the next period's
 * review, or the end of the grace this review may start).
 */
static void
request(Req *q, int k, Rev *r, TimestampTz e, TimestampTz now)
{
	Member	   *m = r->m;
	Program    *p = m->prog;
	TimestampTz x = e;
	int			i;

	r->nfig = 0;				/* events only move forward: older figures are done with */
	req_add(q, k, r, e - 1);
	if (p->s.grace_days > 0 && p->s.downgrade != DOWNGRADE_NEVER)
	{
		TimestampTz g = ly_add_days(e, p->s.grace_days, p->tz);

		if (g <= now)
			req_add(q, k, r, g - 1);
	}
	for (i = 1; i < TR_PREFETCH / 2; i++)
	{
		x = ly_add_periods(m, x, 1);
		if (x > now)
			break;
		req_add(q, k, r, x - 1);
	}
}

static Numeric
known_figure(Rev *r, TimestampTz at)
{
	int			i;

	for (i = 0; i < r->nfig; i++)
		if (r->fig_at[i] == at && r->fig[i] != NULL)
			return r->fig[i];
	return NULL;
}

/* Run the member's due events while their figures are known; false when none is left. */
static bool
advance(Rev *r, int k, Req *q, TimestampTz now, LyTierChanges *tc, int64 **progs, int *progcap)
{
	Member	   *m = r->m;

	for (;;)
	{
		TimestampTz e;
		int			which = ly_tier_due(m, now, &e);
		Numeric		fig = NULL;
		int			before = tc->n;
		int			i;

		if (which == LY_TIER_NONE)
			return false;
		if (which != LY_TIER_REVIEW && which != LY_TIER_GRACE_END)
			elog(ERROR, "loyalty: set-based review of member %lld met tier event %d",
				 (long long) m->id, which);
		if (ly_tier_event_needs_figure(m, which))
		{
			fig = known_figure(r, e - 1);
			if (fig == NULL)
			{
				request(q, k, r, e, now);
				return true;
			}
		}
		ly_tier_event(m, which, e, fig);
		/* the outbox rows name the program: note it for each change just buffered */
		if (tc->n > *progcap)
		{
			*progcap = tc->cap;
			*progs = *progs ? repalloc(*progs, sizeof(int64) * *progcap) : palloc(sizeof(int64) * *progcap);
		}
		for (i = before; i < tc->n; i++)
			(*progs)[i] = m->prog->id;
	}
}

/* ly_save_member's values for one member (programs.c), into column arrays */
typedef struct SaveCols
{
	int			n;
	Datum	   *v[25];
	bool	   *isnull[25];
} SaveCols;

static void
save_add(SaveCols *s, Member *m)
{
	Datum		v[25];
	char		n[25];
	int			c;

	ly_member_save_values(m, v, n);
	for (c = 0; c < 25; c++)
	{
		s->v[c][s->n] = v[c];
		s->isnull[c][s->n] = n[c] == 'n';
	}
	s->n++;
}

static Datum
make_array(Datum *v, bool *isnull, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			lb = 1;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(v, isnull, 1, &n, &lb, elemtype, typlen, typbyval,
											  typalign));
}

static void
write_members(SaveCols *s)
{
	Datum		args[25];
	int			c;

	if (s->n == 0)
		return;
	for (c = 0; c < 25; c++)
		args[c] = make_array(s->v[c], s->isnull[c], s->n, get_element_type(ly_q_save_members.argtypes[c]));
	if (ly_run(&ly_q_save_members, args, NULL, 0) != (uint64) s->n)
		elog(ERROR, "loyalty: set-based review saved " UINT64_FORMAT " of %d members",
			 SPI_processed, s->n);
}

/* the buffered tier changes, then the outbox events of those that change the tier */
static void
write_changes(LyTierChanges *tc, int64 *progs)
{
	Datum		args[6];
	Datum	   *d;
	bool	   *isnull;
	int			i;
	int			ne = 0;
	int64	   *ev_prog;
	int64	   *ev_member;
	TimestampTz *ev_at;
	Jsonb	  **ev_payload;

	if (tc->n == 0)
		return;
	d = palloc(sizeof(Datum) * tc->n);
	isnull = palloc0(sizeof(bool) * tc->n);
	args[0] = ly_int8_array(tc->member, tc->n);
	for (i = 0; i < tc->n; i++)
		d[i] = TimestampTzGetDatum(tc->at[i]);
	args[1] = make_array(d, isnull, tc->n, TIMESTAMPTZOID);
	for (i = 0; i < tc->n; i++)
		d[i] = CStringGetTextDatum(tc->from[i]);
	args[2] = make_array(d, isnull, tc->n, TEXTOID);
	for (i = 0; i < tc->n; i++)
		d[i] = CStringGetTextDatum(tc->to[i]);
	args[3] = make_array(d, isnull, tc->n, TEXTOID);
	for (i = 0; i < tc->n; i++)
		d[i] = CStringGetTextDatum(tc->reason[i]);
	args[4] = make_array(d, isnull, tc->n, TEXTOID);
	for (i = 0; i < tc->n; i++)
	{
		isnull[i] = tc->qualifying[i] == NULL;
		d[i] = isnull[i] ? (Datum) 0 : NumericGetDatum(tc->qualifying[i]);
	}
	args[5] = make_array(d, isnull, tc->n, NUMERICOID);
	if (ly_run(&q_tier_changes, args, NULL, 0) != (uint64) tc->n)
		elog(ERROR, "loyalty: set-based review wrote " UINT64_FORMAT " of %d tier changes",
			 SPI_processed, tc->n);

	/* as ly_record_tier_change: an event for each change of the tier held */
	ev_prog = palloc(sizeof(int64) * tc->n);
	ev_member = palloc(sizeof(int64) * tc->n);
	ev_at = palloc(sizeof(TimestampTz) * tc->n);
	ev_payload = palloc(sizeof(Jsonb *) * tc->n);
	for (i = 0; i < tc->n; i++)
	{
		if (strcmp(tc->from[i], tc->to[i]) == 0)
			continue;
		ev_prog[ne] = progs[i];
		ev_member[ne] = tc->member[i];
		ev_at[ne] = tc->at[i];
		ev_payload[ne] = ly_jsonb(psprintf("{\"from\": %s, \"to\": %s, \"reason\": %s}",
										   ly_json_str(tc->from[i]), ly_json_str(tc->to[i]),
										   ly_json_str(tc->reason[i])));
		ne++;
	}
	ly_outbox_emit_many(ne, ev_prog, ev_member, "tier_changed", ev_at, ev_payload);
}

/*
 * Review the members of ms[0..n) (locked and read by expiry_batch.c's round,
 * in maintenance order) that have nothing but tier events due; next[i] and
 * live[i] are what lots.c's q_next_transition gives for member i (its open
 * lots' next transition, DT_NOEND for none, and their number). Sets
 * handled[i] for each member done with here and returns how many it reviewed.
 */
uint64
ly_tier_review_members(Member **ms, const TimestampTz *next, const int64 *live, bool *handled,
					   int n, TimestampTz now)
{
	Rev		   *revs = palloc0(sizeof(Rev) * (n > 0 ? n : 1));
	int		   *slot = palloc(sizeof(int) * (n > 0 ? n : 1));	/* the ms[] index of each rev */
	int			nrev = 0;
	LyTierChanges tc = {0};
	int64	   *progs = NULL;
	int			progcap = 0;
	SaveCols	save = {0};
	uint64		done = 0;
	int			k;
	int			c;
	int			j;

	for (j = 0; j < n; j++)
	{
		Member	   *m = ms[j];
		TimestampTz nx = next[j];

		if (!ly_program_allowed(m->prog))
			continue;			/* the per-member path skips it too */
		if (m->next_transition_at > now)
		{
			handled[j] = true;	/* done by another run: the per-member path skips it too */
			continue;
		}
		/* nothing but tier reviews and grace ends due: no pin or subscription ending */
		if ((m->pinned_tier >= 0 && m->pinned_until <= now) ||
			(m->has_grant && m->granted_until <= now))
			continue;
		/* ... and no lot to release or expire (what ly_sweep would do) */
		if (m->prog->s.expiry_policy == EXPIRY_INACTIVITY && m->has_last_activity && live[j] > 0)
		{
			TimestampTz deadline = ly_add_months(m->last_activity_at, m->prog->s.expiry_months,
												 m->prog->tz);

			if (deadline < nx)
				nx = deadline;
		}
		if (nx <= now)
			continue;
		m->next_transition_at = nx;	/* as ly_sweep leaves it */
		revs[nrev].m = m;
		revs[nrev].active = true;
		slot[nrev] = j;
		nrev++;
	}
	if (nrev == 0)
		return 0;

	/* rounds: run every member as far as its figures go, then fetch the missing ones */
	ly_tier_changes_buffer(&tc);
	PG_TRY();
	{
		for (;;)
		{
			Req			q = {0};
			uint64		got;

			for (k = 0; k < nrev; k++)
				if (revs[k].active)
					revs[k].active = advance(&revs[k], k, &q, now, &tc, &progs, &progcap);
			if (q.n == 0)
				break;
			got = ly_run(&q_figures, (Datum[3]) {
				ly_int8_array(q.member, q.n),
				make_array(q.lo, NULL, q.n, TIMESTAMPTZOID),
				make_array(q.hi, NULL, q.n, TIMESTAMPTZOID)}, NULL, 0);
			if (got != (uint64) q.n)
				elog(ERROR, "loyalty: set-based review read " UINT64_FORMAT " of %d figures", got, q.n);
			for (k = 0; k < q.n; k++)
			{
				Rev		   *rv = &revs[q.rev[k]];
				TimestampTz at = DatumGetTimestampTz(q.hi[k]);
				int			i;

				for (i = 0; i < rv->nfig; i++)
					if (rv->fig_at[i] == at)
						rv->fig[i] = ly_get_numeric((uint64) k, 1);
			}
		}
	}
	PG_FINALLY();
	{
		ly_tier_changes_buffer(NULL);
	}
	PG_END_TRY();

	write_changes(&tc, progs);
	for (c = 0; c < 25; c++)
	{
		save.v[c] = palloc(sizeof(Datum) * (nrev > 0 ? nrev : 1));
		save.isnull[c] = palloc(sizeof(bool) * (nrev > 0 ? nrev : 1));
	}
	for (k = 0; k < nrev; k++)
	{
		save_add(&save, revs[k].m);
		handled[slot[k]] = true;
		done++;
	}
	write_members(&save);
	return done;
}
