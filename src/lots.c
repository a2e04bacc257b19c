/*
 * lots.c: what is left of each credit, and the time-based transitions.
 *
 * Each credit is a lot with its remaining points, the moment it becomes
 * available (pending days) and the moment it expires. Debits draw from lots,
 * soonest-expiring first, and record each draw, so expiry can only ever take
 * what is still in a lot: spent points are never expired.
 *
 * A member's balance row is exact until next_transition_at, the earliest
 * moment a pending lot becomes available or a lot expires. Every operation
 * first sweeps its member to its business time (ly_sweep), and maintenance
 * sweeps members whose transition is due, so the ledger is the same whether
 * maintenance ran or not.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

bool
ly_lot_expiry(Program *p, TimestampTz available_at, TimestampTz *expires_at)
{
	switch (p->s.expiry_policy)
	{
		case EXPIRY_ROLLING:
			*expires_at = ly_add_months(available_at, p->s.expiry_months, p->tz);
			return true;
		case EXPIRY_END_OF_PERIOD:
			*expires_at = ly_period_end(ly_add_months(available_at, p->s.expiry_months, p->tz),
										p->s.expiry_period, p->tz);
			return true;
		case EXPIRY_NONE:
		case EXPIRY_INACTIVITY:	/* member-wide deadline, see ly_sweep */
			break;
	}
	return false;
}

void
ly_note_transition(Member *m, TimestampTz t)
{
	if (t < m->next_transition_at)
		m->next_transition_at = t;
}

static TimestampTz
inactivity_deadline(Member *m)
{
	return ly_add_months(m->last_activity_at, m->prog->s.expiry_months, m->prog->tz);
}

/* Every movement but a refund or an expiry is activity: it pushes the inactivity deadline. */
void
ly_note_activity(Member *m, TimestampTz at)
{
	if (!m->has_last_activity || at > m->last_activity_at)
	{
		m->last_activity_at = at;
		m->has_last_activity = true;
	}
}

void
ly_credit(Member *m, NewLot *lot)
{
	lot->state = (lot->points > 0 && lot->available_at > lot->at) ? 'p' : 'a';
	if (lot->state == 'p')
	{
		m->pending = ly_add_points(m->pending, lot->points);
		ly_note_transition(m, lot->available_at);
	}
	else
		m->available = ly_add_points(m->available, lot->points);
	if (lot->has_expiry)
		ly_note_transition(m, lot->expires_at);
	if (m->prog->s.expiry_policy == EXPIRY_INACTIVITY && m->has_last_activity && lot->points > 0)
		ly_note_transition(m, inactivity_deadline(m));
}

static LyQuery q_insert_lot = {
	"INSERT INTO loyalty.lot (member_id, entry_id, at, points, remaining, available_at, "
	"       expires_at, source_lot, state) "
	"VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)", 8,
	{INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, CHAROID}, NULL};

void
ly_lot_values(Member *m, int64 entry_id, NewLot *lot, Datum *v, char *n)
{
	memset(n, ' ', 8);
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(entry_id);
	v[2] = TimestampTzGetDatum(lot->at);
	v[3] = Int64GetDatum(lot->points);
	v[4] = TimestampTzGetDatum(lot->available_at);
	v[5] = TimestampTzGetDatum(lot->expires_at);
	n[5] = lot->has_expiry ? ' ' : 'n';
	v[6] = Int64GetDatum(lot->source_lot);
	n[6] = lot->source_lot ? ' ' : 'n';
	v[7] = CharGetDatum(lot->state);
}

void
ly_write_lot(Member *m, int64 entry_id, NewLot *lot)
{
	Datum		v[8];
	char		n[8];

	ly_lot_values(m, entry_id, lot, v, n);
	if (!(ly_batch_active && ly_batch_defer_lot(m->id, v, n)))
		ly_run(&q_insert_lot, v, n, 0);
}

/* ---- draws ---- */

static void
add_draw(DrawList *dl, int64 lot_id, int64 points, bool pending, bool has_expiry, TimestampTz exp)
{
	Draw	   *d;

	if (dl->n == dl->cap)
	{
		dl->cap = dl->cap ? dl->cap * 2 : 8;
		dl->d = dl->d ? repalloc(dl->d, sizeof(Draw) * dl->cap) : palloc(sizeof(Draw) * dl->cap);
	}
	d = &dl->d[dl->n++];
	d->lot_id = lot_id;
	d->points = points;
	d->from_pending = pending;
	d->has_expiry = has_expiry;
	d->expires_at = exp;
	if (points > 0)
	{
		dl->total += points;
		if (pending)
			dl->from_pending += points;
	}
}

/* Take from the member's in-memory balance what a draw takes from its lot. */
static void
take_balance(Member *m, int64 points, bool pending)
{
	if (pending)
		m->pending -= points;
	else
		m->available -= points;
}

static LyQuery q_one_lot = {
	"SELECT remaining, state, expires_at FROM loyalty.lot "
	" WHERE member_id = $1 AND id = $2 AND state <> 'x' AND remaining > 0", 2, {INT8OID, INT8OID}, NULL};

/* Draw up to `want` from one given lot (pending or available). */
int64
ly_draw_from_lot(Member *m, int64 lot_id, int64 want, DrawList *dl)
{
	Datum		v[2] = {Int64GetDatum(m->id), Int64GetDatum(lot_id)};
	int64		rem;
	int64		take;
	bool		pending;
	bool		isnull;
	TimestampTz exp;

	if (want <= 0 || ly_run(&q_one_lot, v, NULL, 1) != 1)
		return 0;
	rem = ly_get_int64(0, 1);
	pending = DatumGetChar(ly_get(0, 2, &isnull)) == 'p';
	exp = DatumGetTimestampTz(ly_get(0, 3, &isnull));
	take = Min(rem, want);
	add_draw(dl, lot_id, take, pending, !isnull, exp);
	take_balance(m, take, pending);
	return take;
}

/*
 * The fourth column says whether the lot existed and was spendable at the
 * debit's business time: a debit dated before a credit (or before its
 * release) must not spend it. Later lots are still read so a short draw can
 * tell "not yet there at `at`" from an inconsistent balance, in the same query.
 */
static LyQuery q_available_lots = {
	"SELECT id, remaining, expires_at, "
	"       available_at <= $3 AND (expires_at IS NULL OR expires_at > $3) FROM loyalty.lot "
	" WHERE member_id = $1 AND state = 'a' AND remaining > 0 AND id <> $2 "
	" ORDER BY expires_at NULLS LAST, id", 3, {INT8OID, INT8OID, TIMESTAMPTZOID}, NULL};

/*
 * Draw up to `want` from the lots available at business time `at`,
 * soonest-expiring first. Lots come in index order, so the first few rows
 * usually cover a debit: read a handful, and read them all only when those
 * are not enough. dl->later counts the points in lots skipped because they
 * were not available yet at `at` (complete whenever the draw falls short).
 */
int64
ly_draw_available(Member *m, int64 want, int64 skip_lot, TimestampTz at, DrawList *dl)
{
	Datum		v[3] = {Int64GetDatum(m->id), Int64GetDatum(skip_lot), TimestampTzGetDatum(at)};
	const long	first = 16;
	uint64		i;
	uint64		n;
	int64		taken = 0;
	int64		seen = 0;
	bool		isnull;

	if (want <= 0)
		return 0;
	n = ly_run(&q_available_lots, v, NULL, first);
	for (i = 0; i < n; i++)
		if (DatumGetBool(ly_get(i, 4, &isnull)))
			seen += ly_get_int64(i, 2);
	if (seen < want && n == (uint64) first)
		n = ly_run(&q_available_lots, v, NULL, 0);
	for (i = 0; i < n && taken < want; i++)
	{
		int64		id = ly_get_int64(i, 1);
		int64		rem = ly_get_int64(i, 2);
		TimestampTz exp = DatumGetTimestampTz(ly_get(i, 3, &isnull));
		bool		has_exp = !isnull;
		int64		take;

		if (!DatumGetBool(ly_get(i, 4, &isnull)))
		{
			dl->later += rem;
			continue;
		}
		take = Min(rem, want - taken);
		add_draw(dl, id, take, false, has_exp, exp);
		take_balance(m, take, false);
		taken += take;
	}
	return taken;
}

static LyQuery q_update_lots = {
	"UPDATE loyalty.lot l "
	"   SET remaining = l.remaining - d.points, "
	"       state = CASE WHEN l.remaining - d.points = 0 THEN 'x'::\"char\" ELSE l.state END "
	"  FROM unnest($2::bigint[], $3::bigint[]) AS d(id, points) "
	" WHERE l.member_id = $1 AND l.id = d.id", 3, {INT8OID, INT8ARRAYOID, INT8ARRAYOID}, NULL};

static LyQuery q_insert_draws = {
	"INSERT INTO loyalty.lot_draw (member_id, entry_id, lot_id, at, points) "
	"SELECT $1, $4, d.id, $5, d.points FROM unnest($2::bigint[], $3::bigint[]) AS d(id, points)",
	5, {INT8OID, INT8ARRAYOID, INT8ARRAYOID, INT8OID, TIMESTAMPTZOID}, NULL};

/* Store the draws of an entry (after the entry itself is written). */
void
ly_write_draws(Member *m, int64 entry_id, TimestampTz at, DrawList *dl)
{
	int64	   *ids;
	int64	   *pts;
	Datum		v[5];
	int			i;

	if (dl->n == 0)
		return;
	ids = palloc(sizeof(int64) * dl->n);
	pts = palloc(sizeof(int64) * dl->n);
	for (i = 0; i < dl->n; i++)
	{
		ids[i] = dl->d[i].lot_id;
		pts[i] = dl->d[i].points;
	}
	v[0] = Int64GetDatum(m->id);
	v[1] = ly_int8_array(ids, dl->n);
	v[2] = ly_int8_array(pts, dl->n);
	v[3] = Int64GetDatum(entry_id);
	v[4] = TimestampTzGetDatum(at);
	ly_run(&q_update_lots, v, NULL, 0);
	ly_run(&q_insert_draws, v, NULL, 0);
}

/* ---- sweeping: pending -> available, and expiry ---- */

typedef struct LotRow
{
	int64		id;
	int64		remaining;
	bool		pending;
	TimestampTz expires_at;
} LotRow;

static LotRow *
copy_lots(uint64 n, int state_col, int exp_col)
{
	LotRow	   *rows = palloc(sizeof(LotRow) * (n > 0 ? n : 1));
	uint64		i;
	bool		isnull;

	for (i = 0; i < n; i++)
	{
		rows[i].id = ly_get_int64(i, 1);
		rows[i].remaining = ly_get_int64(i, 2);
		rows[i].pending = state_col ? DatumGetChar(ly_get(i, state_col, &isnull)) == 'p' : false;
		rows[i].expires_at = exp_col ? DatumGetTimestampTz(ly_get(i, exp_col, &isnull)) : 0;
	}
	return rows;
}

static LyQuery q_debt_lots = {
	"SELECT id, remaining FROM loyalty.lot "
	" WHERE member_id = $1 AND state = 'a' AND remaining < 0 ORDER BY id", 1, {INT8OID}, NULL};

/*
 * What the expiries of one sweep phase draw, written together at its end (one
 * UPDATE of the lots, one INSERT of the draws) instead of two statements per
 * expiry instant; and the member's debt lots, read once per phase and settled
 * in memory.
 */
typedef struct SweepDraws
{
	int			n;
	int			cap;
	int64	   *lot;
	int64	   *points;
	int64	   *entry;
	TimestampTz *at;
	bool		debts_read;
	int			ndebt;
	int64	   *debt_id;
	int64	   *debt_owed;
} SweepDraws;

static void
sweep_draw(SweepDraws *sd, int64 lot, int64 points, int64 entry, TimestampTz at)
{
	if (sd->n == sd->cap)
	{
		sd->cap = sd->cap ? sd->cap * 2 : 32;
		sd->lot = sd->n ? repalloc(sd->lot, sizeof(int64) * sd->cap) : palloc(sizeof(int64) * sd->cap);
		sd->points = sd->n ? repalloc(sd->points, sizeof(int64) * sd->cap) : palloc(sizeof(int64) * sd->cap);
		sd->entry = sd->n ? repalloc(sd->entry, sizeof(int64) * sd->cap) : palloc(sizeof(int64) * sd->cap);
		sd->at = sd->n ? repalloc(sd->at, sizeof(TimestampTz) * sd->cap) : palloc(sizeof(TimestampTz) * sd->cap);
	}
	sd->lot[sd->n] = lot;
	sd->points[sd->n] = points;
	sd->entry[sd->n] = entry;
	sd->at[sd->n] = at;
	sd->n++;
}

/* a lot drawn by several expiries of the phase (a debt settled twice) is updated once */
static LyQuery q_update_lots_sum = {
	"UPDATE loyalty.lot l "
	"   SET remaining = l.remaining - d.points, "
	"       state = CASE WHEN l.remaining - d.points = 0 THEN 'x'::\"char\" ELSE l.state END "
	"  FROM (SELECT id, sum(points)::bigint AS points "
	"          FROM unnest($2::bigint[], $3::bigint[]) AS u(id, points) GROUP BY id) d "
	" WHERE l.member_id = $1 AND l.id = d.id", 3, {INT8OID, INT8ARRAYOID, INT8ARRAYOID}, NULL};

static LyQuery q_insert_sweep_draws = {
	"INSERT INTO loyalty.lot_draw (member_id, entry_id, lot_id, at, points) "
	"SELECT $1, d.entry, d.id, d.at, d.points "
	"  FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[]) AS d(id, points, entry, at)",
	5, {INT8OID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID}, NULL};

static void
sweep_write(Member *m, SweepDraws *sd)
{
	Datum		v[5];
	Datum	   *ats;
	int			i;

	if (sd->n > 0)
	{
		ats = palloc(sizeof(Datum) * sd->n);
		for (i = 0; i < sd->n; i++)
			ats[i] = TimestampTzGetDatum(sd->at[i]);
		v[0] = Int64GetDatum(m->id);
		v[1] = ly_int8_array(sd->lot, sd->n);
		v[2] = ly_int8_array(sd->points, sd->n);
		v[3] = ly_int8_array(sd->entry, sd->n);
		v[4] = PointerGetDatum(construct_array(ats, sd->n, TIMESTAMPTZOID, sizeof(TimestampTz),
											   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		ly_run(&q_update_lots_sum, v, NULL, 0);
		ly_run(&q_insert_sweep_draws, v, NULL, 0);
	}
	memset(sd, 0, sizeof(*sd));
}

/*
 * Expire the given lots at `at`: one expire entry for the batch. Points that
 * expire while the member owes a debt (a reversal under negative_balance =
 * allow) pay the debt first: only the rest is lost.
 */
static void
expire_batch(Member *m, LotRow *lots, int n, TimestampTz at, SweepStats *st, SweepDraws *sd)
{
	DrawList	dl = {0};
	Datum		arg = Int64GetDatum(m->id);
	int64		total = 0;
	int64		settled = 0;
	int			i;
	EntryRow	e = {0};
	int			k;

	for (k = 0; k < n; k++)
	{
		add_draw(&dl, lots[k].id, lots[k].remaining, lots[k].pending, true, lots[k].expires_at);
		take_balance(m, lots[k].remaining, lots[k].pending);
		total += lots[k].remaining;
	}
	if (!sd->debts_read)
	{
		uint64		nd = ly_run(&q_debt_lots, &arg, NULL, 0);

		sd->debts_read = true;
		sd->ndebt = (int) nd;
		sd->debt_id = palloc(sizeof(int64) * (nd > 0 ? nd : 1));
		sd->debt_owed = palloc(sizeof(int64) * (nd > 0 ? nd : 1));
		for (i = 0; i < (int) nd; i++)
		{
			sd->debt_id[i] = ly_get_int64(i, 1);
			sd->debt_owed[i] = -ly_get_int64(i, 2);
		}
	}
	/* debts in id order, as the lots table would list those still owed */
	for (i = 0; i < sd->ndebt && settled < total; i++)
	{
		int64		s;

		if (sd->debt_owed[i] <= 0)
			continue;
		s = Min(sd->debt_owed[i], total - settled);
		add_draw(&dl, sd->debt_id[i], -s, false, false, 0);
		take_balance(m, -s, false);
		sd->debt_owed[i] -= s;
		settled += s;
	}
	m->expired = ly_add_points(m->expired, total - settled);

	e.id = ly_nextval("loyalty.entry_id_seq");
	e.kind = "expire";
	e.points = -(total - settled);
	e.at = at;
	if (settled > 0)
		e.detail = ly_jsonb(psprintf("{\"settled_debt\": " INT64_FORMAT "}", settled));
	ly_insert_entry(m, &e);
	for (k = 0; k < dl.n; k++)
		sweep_draw(sd, dl.d[k].lot_id, dl.d[k].points, e.id, at);

	st->expired_lots += n;
	st->expired_points += total - settled;
	st->expire_entries += 1;
}

static LyQuery q_live_lots = {
	"SELECT id, remaining, state FROM loyalty.lot "
	" WHERE member_id = $1 AND state <> 'x' AND remaining > 0 ORDER BY id", 1, {INT8OID}, NULL};

static LyQuery q_release = {
	"UPDATE loyalty.lot SET state = 'a' "
	" WHERE member_id = $1 AND state = 'p' AND available_at <= $2 RETURNING remaining", 2,
	{INT8OID, TIMESTAMPTZOID}, NULL};

static LyQuery q_due_lots = {
	"SELECT id, remaining, expires_at FROM loyalty.lot "
	" WHERE member_id = $1 AND state = 'a' AND remaining > 0 AND expires_at <= $2 "
	" ORDER BY expires_at, id", 2, {INT8OID, TIMESTAMPTZOID}, NULL};

static LyQuery q_next_transition = {
	"SELECT min(CASE WHEN state = 'p' THEN available_at ELSE expires_at END), count(*) "
	"  FROM loyalty.lot WHERE member_id = $1 AND state <> 'x' AND remaining > 0", 1, {INT8OID}, NULL};

/*
 * Bring a locked member's balances up to business time t: release pending
 * lots that became available, expire lots that are due (one entry per member
 * and expiry instant, dated at that instant), and compute the next moment
 * anything will change.
 */
void
ly_sweep(Member *m, TimestampTz t, SweepStats *st)
{
	Program    *p = m->prog;
	Datum		v[2] = {Int64GetDatum(m->id), TimestampTzGetDatum(t)};
	uint64		n;
	uint64		i;
	bool		isnull;
	int64		live;
	TimestampTz next;

	if (t < m->next_transition_at)
		return;

	/* inactivity: everything expires at once at the deadline */
	if (p->s.expiry_policy == EXPIRY_INACTIVITY && m->has_last_activity)
	{
		TimestampTz deadline = inactivity_deadline(m);

		if (deadline <= t)
		{
			n = ly_run(&q_live_lots, v, NULL, 0);
			if (n > 0)
			{
				LotRow	   *rows = copy_lots(n, 3, 0);

				SweepDraws	sd = {0};

				ly_review_tiers(m, deadline);	/* events in the order they fall */
				expire_batch(m, rows, (int) n, deadline, st, &sd);
				sweep_write(m, &sd);
			}
		}
	}

	n = ly_run(&q_release, v, NULL, 0);
	for (i = 0; i < n; i++)
	{
		int64		r = ly_get_int64(i, 1);

		m->pending -= r;
		m->available = ly_add_points(m->available, r);
		st->released_points += r;
	}
	st->released_lots += n;

	n = ly_run(&q_due_lots, v, NULL, 0);
	if (n > 0)
	{
		LotRow	   *rows = copy_lots(n, 0, 3);
		uint64		start = 0;
		SweepDraws	sd = {0};

		for (i = 1; i <= n; i++)
			if (i == n || rows[i].expires_at != rows[start].expires_at)
			{
				ly_review_tiers(m, rows[start].expires_at);	/* events in the order they fall */
				expire_batch(m, rows + start, (int) (i - start), rows[start].expires_at, st, &sd);
				start = i;
			}
		sweep_write(m, &sd);
	}

	ly_run(&q_next_transition, v, NULL, 1);
	next = DatumGetTimestampTz(ly_get(0, 1, &isnull));
	if (isnull)
		next = DT_NOEND;
	live = ly_get_int64(0, 2);
	if (p->s.expiry_policy == EXPIRY_INACTIVITY && m->has_last_activity && live > 0)
	{
		TimestampTz deadline = inactivity_deadline(m);

		if (deadline < next)
			next = deadline;
	}
	m->next_transition_at = next;

	ly_review_tiers(m, t);
}
