/*
 * expiry_batch.c: the set-based expiry pass of run_maintenance.
 *
 * Most members maintenance finds due are due for one reason only: some of
 * their lots reach their expiry. For them ly_sweep's outcome is fixed by those
 * lots alone: one expire entry per expiry instant (dated at it, its lots
 * soonest first), each lot closed by one draw, the balances, and the next
 * transition. This pass computes exactly that for a whole batch in C, with a
 * fixed number of statements per chunk of members instead of about ten per
 * member: lock the chunk (maintenance.c's order, SKIP LOCKED), read all their
 * live lots in one query, then one multi-row INSERT of the entries, one UPDATE
 * of the lots, one INSERT of the draws and one UPDATE of the member rows.
 *
 * A member is left to the per-member path (ly_sweep) whenever anything else is
 * due or could change what expiry writes: an inactivity program (its deadline
 * expires every lot at once), a pending lot to release (a released lot may
 * expire in the same sweep), a debt lot (expiring points settle it first), or a
 * tier event (review, grace end, pin or grant end) due by `now` (ly_sweep
 * reviews tiers between expiry instants). Members with tier events due go to
 * the set-based tier review (tier_review.c) with the lots read here, when they
 * have nothing else due; every member neither pass handles stays locked and
 * due and is returned, in order, to maintenance.c's per-member loop: a run
 * handles the same members either way, and reads each member row once.
 *
 * loyalty.set_based_expiry = off turns the set-based expiry off (the rounds
 * still lock and read the batch, for the tier review and the per-member loop);
 * the tests run the same scenario both ways and compare the ledgers.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* members locked and read per round: bounds memory whatever max_members is */
#define EXPIRY_CHUNK 1000

static bool set_based_expiry = true;

void
ly_expiry_batch_init(void)
{
	DefineCustomBoolVariable("loyalty.set_based_expiry",
							 "Expire plain due lots of a maintenance batch with set-based statements.",
							 "Off: every due member goes through the per-member sweep (same results, slower).",
							 &set_based_expiry, true, PGC_USERSET, 0, NULL, NULL, NULL);
}

/*
 * The columns ly_member_from_columns takes (LY_MEMBER_SELECT; not referred_by,
 * which a sweep does not use), after the member id; in due order, skipping
 * members an operation holds. Rows after ($3, $4) in that order: each round
 * of a call continues where the last ended.
 */
static LyQuery q_lock_due = {
	"SELECT id, " LY_MEMBER_SELECT " FROM loyalty.member "
	" WHERE next_transition_at <= $1 AND next_transition_at < 'infinity' "
	"   AND (next_transition_at, id) > ($3, $4) "
	"   AND program_id IN (SELECT p.id FROM loyalty.program p WHERE loyalty.caller_may_use(p.tenant)) "
	" ORDER BY next_transition_at, id LIMIT $2 FOR UPDATE SKIP LOCKED", 4,
	{TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, INT8OID}, NULL};

/* every open lot of the candidates, by expiry then id: what ly_sweep's queries read */
static LyQuery q_lots = {
	"SELECT member_id, id, state, remaining, available_at, expires_at, ctid FROM loyalty.lot "
	" WHERE member_id = ANY ($1) AND state <> 'x' ORDER BY member_id, expires_at, id", 1,
	{INT8ARRAYOID}, NULL};

/* what ly_insert_entry writes for an expiry without debt: the other columns take their defaults */
static LyQuery q_entries = {
	"INSERT INTO loyalty.entry (member_id, id, kind, points, at, available_after, pending_after, tier_after) "
	"SELECT u.m, u.id, 'expire', u.p, u.at, u.av, u.pe, u.t "
	"  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[], "
	"              $6::bigint[], $7::text[]) AS u(m, id, p, at, av, pe, t)", 7,
	{INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	TEXTARRAYOID}, NULL};

/*
 * lots.c's q_update_lots_sum, for many members (each lot appears once). The
 * rows are found by the ctid q_lots read: a lot changes only under its
 * member's lock, which this transaction has held since before that read, so
 * the version read is the current one (a TID scan instead of a lot_pkey
 * descent per lot); the key columns are checked too, and cols_run fails the
 * statement unless every lot was updated.
 */
static LyQuery q_close_lots = {
	"UPDATE loyalty.lot l "
	"   SET remaining = l.remaining - d.p, "
	"       state = CASE WHEN l.remaining - d.p = 0 THEN 'x'::\"char\" ELSE l.state END "
	"  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::tid[]) AS d(m, id, p, t) "
	" WHERE l.ctid = d.t AND l.member_id = d.m AND l.id = d.id", 4,
	{INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIDARRAYOID}, NULL};

static LyQuery q_draws = {
	"INSERT INTO loyalty.lot_draw (member_id, entry_id, lot_id, at, points) "
	"SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[])",
	5, {INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID}, NULL};

/*
 * The member columns a sweep without tier events changes. ly_save_member
 * writes the others back as read, except that it stores the earned tier even
 * where the row says NULL (the same as tier_id): so does this.
 */
static LyQuery q_save = {
	"UPDATE loyalty.member m "
	"   SET available = u.av, expired = u.ex, last_entry_at = u.le, next_transition_at = u.nt, "
	"       earned_tier_id = coalesce(m.earned_tier_id, m.tier_id) "
	"  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[]) "
	"       AS u(id, av, ex, le, nt) "
	" WHERE m.id = u.id", 5,
	{INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}, NULL};

/* growable columns of one multi-row statement */
typedef struct Cols
{
	int			n;
	int			cap;
	int			ncols;
	Datum	   *c[7];
} Cols;

static void
cols_init(Cols *b, int ncols, int cap)
{
	int			k;

	b->n = 0;
	b->cap = cap > 0 ? cap : 16;
	b->ncols = ncols;
	for (k = 0; k < ncols; k++)
		b->c[k] = palloc(sizeof(Datum) * b->cap);
}

static int
cols_add(Cols *b)
{
	int			k;

	if (b->n == b->cap)
	{
		b->cap *= 2;
		for (k = 0; k < b->ncols; k++)
			b->c[k] = repalloc(b->c[k], sizeof(Datum) * b->cap);
	}
	return b->n++;
}

static Datum
cols_array(Cols *b, int k, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(b->c[k], b->n, elemtype, typlen, typbyval, typalign));
}

static void
cols_run(LyQuery *q, Cols *b, const Oid *types, const char *what)
{
	Datum		args[7];
	int			k;
	uint64		done;

	if (b->n == 0)
		return;
	for (k = 0; k < b->ncols; k++)
		args[k] = cols_array(b, k, types[k]);
	done = ly_run(q, args, NULL, 0);
	if (done != (uint64) b->n)
		elog(ERROR, "loyalty: set-based expiry wrote " UINT64_FORMAT " of %d %s", done, b->n, what);
}

/* one open lot, as read by q_lots */
typedef struct BLot
{
	int64		member_id;
	int64		id;
	char		state;
	int64		remaining;
	TimestampTz available_at;
	bool		has_expiry;
	TimestampTz expires_at;
	ItemPointerData tid;
} BLot;

/* first row of member_id in lots (sorted by member), or n */
static int
first_lot(BLot *lots, int n, int64 member_id)
{
	int			lo = 0;
	int			hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (lots[mid].member_id < member_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* the locked members left to the per-member sweep, in maintenance order */
typedef struct Rest
{
	uint64		n;
	uint64		cap;
	int64	   *ids;				/* in the caller's context */
} Rest;

/*
 * One round: lock up to `want` due members after the cursor, expire the plain
 * ones, review the tier-only ones, and append the others to rest. Returns the
 * members locked (0: none left); *handled counts the ones swept here. Runs in
 * the caller's (per-round) memory context.
 */
static int
expiry_round(TimestampTz now, int want, TimestampTz *cur_at, int64 *cur_id,
			 SweepStats *st, int64 *handled, Rest *rest, MemoryContext restcxt)
{
	Datum		v[4];
	uint64		nm;
	uint64		i;
	int			k;
	int64	   *ids;
	Datum	  **cols;
	bool	  **nulls;
	Member	  **ms;
	Program   **progs = NULL;
	int			nprogs = 0;
	int64	   *cand;
	int			ncand = 0;
	int			nexp;
	bool	   *done;
	Member	  **tms;
	int		   *tslot;
	int			nt = 0;
	BLot	   *lots;
	int			nlots;
	Cols		ent;
	Cols		lot;
	Cols		drw;
	Cols		mem;
	static const Oid ent_t[7] = {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID, TEXTOID};
	static const Oid lot_t[4] = {INT8OID, INT8OID, INT8OID, TIDOID};
	static const Oid drw_t[5] = {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID};
	static const Oid mem_t[5] = {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};

	v[0] = TimestampTzGetDatum(now);
	v[1] = Int64GetDatum(want);
	v[2] = TimestampTzGetDatum(*cur_at);
	v[3] = Int64GetDatum(*cur_id);
	nm = ly_run(&q_lock_due, v, NULL, 0);
	if (nm == 0)
		return 0;

	/* copy the rows out: building a Member may run queries (a program not cached yet) */
	ids = palloc(sizeof(int64) * nm);
	cols = palloc(sizeof(Datum *) * nm);
	nulls = palloc(sizeof(bool *) * nm);
	for (i = 0; i < nm; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(ly_get(i, 1, &isnull));
		cols[i] = palloc(sizeof(Datum) * LY_MEMBER_COLUMNS);
		nulls[i] = palloc(sizeof(bool) * LY_MEMBER_COLUMNS);
		for (k = 0; k < LY_MEMBER_COLUMNS; k++)
		{
			Datum		d = ly_get(i, k + 2, &nulls[i][k]);

			/* qualifying and lifetime_spend (columns 9 and 10) are the by-reference ones */
			if (!nulls[i][k] && (k == 8 || k == 9))
				d = NumericGetDatum(DatumGetNumericCopy(d));
			cols[i][k] = d;
		}
	}
	*cur_at = DatumGetTimestampTz(cols[nm - 1][13]);	/* next_transition_at */
	*cur_id = ids[nm - 1];

	/*
	 * Candidates: due for their lots only, as far as the member row tells
	 * (ms[i]), or for tier events (tms[], tier_review.c decides). Their open
	 * lots are read together: cand[] holds the expiry candidates, then the
	 * tier ones.
	 */
	ms = palloc0(sizeof(Member *) * nm);
	done = palloc0(sizeof(bool) * nm);
	cand = palloc(sizeof(int64) * nm);
	tms = palloc(sizeof(Member *) * nm);
	tslot = palloc(sizeof(int) * nm);
	for (i = 0; i < nm && (set_based_expiry || ly_set_based_tier_review); i++)
	{
		Program    *known = NULL;
		Member	   *m;
		int			p;
		int64		program_id = DatumGetInt64(cols[i][0]);

		for (p = 0; p < nprogs; p++)
			if (progs[p]->id == program_id)
				known = progs[p];
		m = ly_member_from_columns(ids[i], cols[i], nulls[i], known);
		if (m->prog != known)
		{
			progs = nprogs ? repalloc(progs, sizeof(Program *) * (nprogs + 1)) : palloc(sizeof(Program *));
			progs[nprogs++] = m->prog;
		}
		if (!ly_program_allowed(m->prog))
			continue;
		if (ly_tier_next_event(m) <= now)
		{
			if (ly_set_based_tier_review)
			{
				tslot[nt] = (int) i;
				tms[nt++] = m;
			}
			continue;
		}
		if (!set_based_expiry || m->prog->s.expiry_policy == EXPIRY_INACTIVITY)
			continue;
		ms[i] = m;
		cand[ncand++] = m->id;
	}
	nexp = ncand;
	for (k = 0; k < nt; k++)
		cand[ncand++] = tms[k]->id;
	if (ncand == 0)
		goto rest;

	/* their open lots, one query */
	v[0] = ly_int8_array(cand, ncand);
	nlots = (int) ly_run(&q_lots, v, NULL, 0);
	lots = palloc(sizeof(BLot) * (nlots > 0 ? nlots : 1));
	for (k = 0; k < nlots; k++)
	{
		bool		isnull;

		lots[k].member_id = ly_get_int64(k, 1);
		lots[k].id = ly_get_int64(k, 2);
		lots[k].state = DatumGetChar(ly_get(k, 3, &isnull));
		lots[k].remaining = ly_get_int64(k, 4);
		lots[k].available_at = DatumGetTimestampTz(ly_get(k, 5, &isnull));
		lots[k].expires_at = DatumGetTimestampTz(ly_get(k, 6, &isnull));
		lots[k].has_expiry = !isnull;
		ItemPointerCopy((ItemPointer) DatumGetPointer(ly_get(k, 7, &isnull)), &lots[k].tid);
	}
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}

	cols_init(&ent, 7, nexp * 2);
	cols_init(&lot, 4, nlots);
	cols_init(&drw, 5, nlots);
	cols_init(&mem, 5, nexp);
	for (i = 0; i < nm; i++)
	{
		Member	   *m = ms[i];
		int			a;
		int			b;
		int			j;
		bool		plain = true;
		TimestampTz next = DT_NOEND;

		if (m == NULL)
			continue;
		a = first_lot(lots, nlots, m->id);
		for (b = a; b < nlots && lots[b].member_id == m->id; b++)
			;

		/*
		 * ly_sweep's queries over these rows: q_release (pending, available
		 * by now), q_debt_lots (available, below zero), q_due_lots (available,
		 * positive, expired by now, in expiry then id order) and, for what
		 * stays open, q_next_transition.
		 */
		for (j = a; j < b && plain; j++)
		{
			BLot	   *l = &lots[j];

			if ((l->state == 'p' && l->available_at <= now) ||
				(l->state == 'a' && l->remaining < 0))
				plain = false;
			else if (l->state == 'a' && l->remaining > 0 && l->has_expiry && l->expires_at <= now)
				;	/* due: expired below */
			else if (l->remaining > 0)
			{
				TimestampTz t = l->state == 'p' ? l->available_at : l->expires_at;

				if ((l->state == 'p' || l->has_expiry) && t < next)
					next = t;
			}
		}
		if (!plain)
			continue;			/* maintenance.c's loop sweeps it */

		/* due rows come first in [a, b): expires_at order, and open later lots after */
		for (j = a; j < b;)
		{
			TimestampTz at;
			int64		total = 0;
			int64		entry_id;
			int			e;
			int			r;

			if (!(lots[j].state == 'a' && lots[j].remaining > 0 && lots[j].has_expiry &&
				  lots[j].expires_at <= now))
			{
				j++;
				continue;
			}
			/* one expiry instant: every due lot expiring at it */
			at = lots[j].expires_at;
			entry_id = ly_nextval("loyalty.entry_id_seq");
			for (; j < b && lots[j].has_expiry && lots[j].expires_at == at; j++)
			{
				BLot	   *l = &lots[j];

				if (!(l->state == 'a' && l->remaining > 0))
					continue;
				r = cols_add(&lot);
				lot.c[0][r] = Int64GetDatum(m->id);
				lot.c[1][r] = Int64GetDatum(l->id);
				lot.c[2][r] = Int64GetDatum(l->remaining);
				lot.c[3][r] = PointerGetDatum(&l->tid);
				r = cols_add(&drw);
				drw.c[0][r] = Int64GetDatum(m->id);
				drw.c[1][r] = Int64GetDatum(entry_id);
				drw.c[2][r] = Int64GetDatum(l->id);
				drw.c[3][r] = TimestampTzGetDatum(at);
				drw.c[4][r] = Int64GetDatum(l->remaining);
				m->available -= l->remaining;	/* lots.c take_balance */
				total += l->remaining;
				st->expired_lots++;
			}
			m->expired = ly_add_points(m->expired, total);
			e = cols_add(&ent);
			ent.c[0][e] = Int64GetDatum(m->id);
			ent.c[1][e] = Int64GetDatum(entry_id);
			ent.c[2][e] = Int64GetDatum(-total);
			ent.c[3][e] = TimestampTzGetDatum(at);
			ent.c[4][e] = Int64GetDatum(m->available);
			ent.c[5][e] = Int64GetDatum(m->pending);
			ent.c[6][e] = CStringGetTextDatum(ly_tier_code(m));
			if (!m->has_last_entry || at > m->last_entry_at)
			{
				m->last_entry_at = at;
				m->has_last_entry = true;
			}
			st->expired_points += total;
			st->expire_entries++;
		}

		k = cols_add(&mem);
		mem.c[0][k] = Int64GetDatum(m->id);
		mem.c[1][k] = Int64GetDatum(m->available);
		mem.c[2][k] = Int64GetDatum(m->expired);
		mem.c[3][k] = TimestampTzGetDatum(m->last_entry_at);
		/* what ly_sweep then ly_save_member store: no tier event is due by now */
		mem.c[4][k] = TimestampTzGetDatum(Min(next, ly_tier_next_event(m)));
		done[i] = true;
		(*handled)++;
	}

	/* entries before their draws, as ly_sweep writes them */
	cols_run(&q_entries, &ent, ent_t, "entries");
	cols_run(&q_close_lots, &lot, lot_t, "lots");
	cols_run(&q_draws, &drw, drw_t, "draws");
	cols_run(&q_save, &mem, mem_t, "members");

	/* the tier-only members: lots.c's q_next_transition of each, from the same lot rows */
	if (nt > 0)
	{
		TimestampTz *tnext = palloc(sizeof(TimestampTz) * nt);
		int64	   *tlive = palloc0(sizeof(int64) * nt);
		bool	   *thandled = palloc0(sizeof(bool) * nt);

		for (k = 0; k < nt; k++)
		{
			int			j;

			tnext[k] = DT_NOEND;
			for (j = first_lot(lots, nlots, tms[k]->id);
				 j < nlots && lots[j].member_id == tms[k]->id; j++)
			{
				BLot	   *l = &lots[j];

				if (l->remaining <= 0)
					continue;
				tlive[k]++;
				/* min() skips a lot without expiry (NULL) */
				if (l->state == 'p' ? l->available_at < tnext[k]
					: (l->has_expiry && l->expires_at < tnext[k]))
					tnext[k] = l->state == 'p' ? l->available_at : l->expires_at;
			}
		}
		*handled += (int64) ly_tier_review_members(tms, tnext, tlive, thandled, nt, now);
		for (k = 0; k < nt; k++)
			if (thandled[k])
				done[tslot[k]] = true;
	}

rest:
	for (i = 0; i < nm; i++)
	{
		if (done[i])
			continue;
		if (rest->n == rest->cap)
		{
			rest->cap = rest->cap ? rest->cap * 2 : 64;
			rest->ids = rest->ids ? repalloc(rest->ids, sizeof(int64) * rest->cap)
				: MemoryContextAlloc(restcxt, sizeof(int64) * rest->cap);
		}
		rest->ids[rest->n++] = ids[i];
	}
	return (int) nm;
}

/*
 * The report rollups (92_rollups.sql), from run_maintenance, before it locks
 * any member. A rollup call costs tens of milliseconds even for a few hundred
 * entries (its statement is planned each time): once per batch of 100 members
 * that was as much as the expiry itself. Reports are exact whatever the
 * rollups' high-water mark (they read the ledger past it), so a session rolls
 * up at most every LY_ROLLUP_INTERVAL_S seconds: maintain's first batch does,
 * the next ones skip until the interval has passed.
 */
#define LY_ROLLUP_INTERVAL_S 10

void
ly_maintenance_rollups(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (last != 0 && now >= last && now - last < LY_ROLLUP_INTERVAL_S * USECS_PER_SEC)
		return;
	last = now;
	SPI_execute("SELECT loyalty.run_rollups()", false, 0);
}

/*
 * Lock up to `limit` due members, in maintenance.c's order, expire what is
 * plainly due and review the tier-only ones. Returns the members swept; the
 * others it locked stay locked and due, and *rest_ids (allocated in the
 * caller's context) lists them in order for the per-member loop.
 */
int64
ly_expiry_pass(TimestampTz now, int64 limit, SweepStats *st, int64 **rest_ids, uint64 *nrest)
{
	MemoryContext cxt;
	MemoryContext old;
	MemoryContext callcxt = CurrentMemoryContext;
	TimestampTz cur_at = DT_NOBEGIN;
	int64		cur_id = 0;
	int64		locked = 0;
	int64		handled = 0;
	Rest		rest = {0};

	cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty set-based expiry",
								ALLOCSET_DEFAULT_SIZES);
	while (locked < limit)
	{
		int			want = (int) Min(limit - locked, EXPIRY_CHUNK);
		int			got;

		old = MemoryContextSwitchTo(cxt);
		got = expiry_round(now, want, &cur_at, &cur_id, st, &handled, &rest, callcxt);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		locked += got;
		if (got < want)
			break;
	}
	MemoryContextDelete(cxt);
	*rest_ids = rest.ids;
	*nrest = rest.n;
	return handled;
}
