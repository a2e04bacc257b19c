/*
 * batch.c: earn_batch, bulk ingestion of purchases from a table.
 *
 * Every row goes through earn itself (the same C function, not a copy of its
 * rules), so a batch gives exactly the receipts, ledger rows and errors that
 * calling earn once per row in the batch's order would give, including rules
 * and hooks added to earn later. What the batch adds: rows are read through a
 * cursor in member order (members are locked in ascending id order, the order
 * every multi-member path uses, so a batch cannot deadlock with earn or another
 * batch), each row runs in a memory context reset after it (a million rows
 * keep the backend flat), and receipts stream into a tuplestore (spills to
 * disk past work_mem).
 *
 * Set-based where it counts: each chunk of rows locks its members, looks up
 * their keys and reads their first qualifying windows in three statements
 * (read_ahead); while a member's rows run, its entries, lots and member row are
 * buffered (see loyalty.h for the contract), entries and lots written straight
 * into their tables (direct_write) and members with one UPDATE per flush; its
 * lock is served from the buffered row. A query issued on behalf of the member
 * (a sweep reading its lots, a replay, a rule) first writes what is buffered,
 * so earn always reads what it wrote.
 *
 * The batch is one transaction: a bad row fails the whole batch, with the row
 * number, member and key in the error's context and the row's own SQLSTATE;
 * nothing is written.
 */
#include "loyalty.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "common/string.h"
#include "access/xact.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/rel.h"
#include "utils/rls.h"

/* operations.c; called directly so the batch shares earn's code path */
extern PGDLLEXPORT Datum loyalty_earn(PG_FUNCTION_ARGS);

#define BATCH_FETCH 4000
#define BATCH_FLUSH 8000		/* buffered entries (or members) that trigger a flush */

/* ---- write-behind buffers ---- */

/*
 * A flush of entries or lots writes straight into the table: table_multi_insert
 * (one WAL record per page) and ExecInsertIndexTuples, the calls COPY makes,
 * instead of an INSERT ... SELECT FROM unnest(arrays). It writes what that
 * INSERT writes: the same columns, its coalesce()s for NULLs, the other
 * columns' defaults (recorded_at), NOT NULL and CHECK constraints, unique
 * indexes. The INSERT stays the path (direct.ok false) when the table is not
 * plain: insert triggers, row-level security in force, a generated column, an
 * exclusion constraint, no INSERT privilege, or a column whose name or type is
 * not the one the buffer holds.
 */
#define DIRECT_SLOTS 1000

typedef struct Direct
{
	bool		ok;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	int			natts;
	int		   *src;			/* per attribute: the buffer column, or -1 */
	ExprState **defaults;		/* per attribute not in the buffer: its default, if any */
	Datum	   *ifnull;			/* per attribute: what a NULL becomes (the INSERT's coalesce) */
	bool	   *has_ifnull;
	Oid		   *input;			/* per attribute: input function of the enum the text is cast to */
	Oid		   *ioparam;
	char	  **last_text;		/* ... and its last cast, cached */
	Datum	   *last_value;
	TupleTableSlot **slots;
} Direct;

typedef struct Buf
{
	LyQuery    *q;				/* INSERT/UPDATE ... FROM unnest($1, ..., $ncols) */
	Direct		direct;
	int			ncols;
	Oid			types[LY_MEMBER_COLUMNS];	/* element types */
	int16		typlen[LY_MEMBER_COLUMNS];
	bool		typbyval[LY_MEMBER_COLUMNS];
	char		typalign[LY_MEMBER_COLUMNS];
	int			n;
	int			cap;
	Datum	   *vals[LY_MEMBER_COLUMNS];
	bool	   *nulls[LY_MEMBER_COLUMNS];
} Buf;

static LyQuery q_flush_entries = {
	"INSERT INTO loyalty.entry (member_id, id, kind, points, at, idempotency_key, request, "
	"       amount, reason, ref_entry_id, counterparty_id, qualifying, qualifying_at, detail, "
	"       available_after, pending_after, tier_after) "
	"SELECT a1, a2, a3::loyalty.entry_kind, a4, a5, a6, a7, a8, a9, a10, a11, "
	"       coalesce(a12, 0), a13, a14, a15, a16, a17 "
	"  FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
	"       AS u(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17)", 17,
	{INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID,
	 JSONBARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, NUMERICARRAYOID,
	 TIMESTAMPTZARRAYOID, JSONBARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID}, NULL};

static LyQuery q_flush_lots = {
	"INSERT INTO loyalty.lot (member_id, entry_id, at, points, remaining, available_at, "
	"       expires_at, source_lot, state) "
	"SELECT a1, a2, a3, a4, a4, a5, a6, a7, a8 "
	"  FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) AS u(a1, a2, a3, a4, a5, a6, a7, a8)", 8,
	{INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	 TIMESTAMPTZARRAYOID, INT8ARRAYOID, CHARARRAYOID}, NULL};

static LyQuery q_existing_keys = {
	"SELECT idempotency_key FROM loyalty.entry WHERE member_id = $1 AND idempotency_key = ANY ($2)",
	2, {INT8OID, TEXTARRAYOID}, NULL};

/* the chunk's members, locked in id order (the order every multi-member path uses) */
static LyQuery q_lock_ahead = {
	"SELECT id, " LY_MEMBER_SELECT ", referred_by FROM loyalty.member "
	" WHERE id = ANY ($1) ORDER BY id FOR UPDATE", 1, {INT8ARRAYOID}, NULL};

static LyQuery q_keys_ahead = {
	"SELECT e.member_id, e.idempotency_key "
	"  FROM unnest($1, $2) AS u(m, k) "
	"  JOIN loyalty.entry e ON e.member_id = u.m AND e.idempotency_key = u.k", 2,
	{INT8ARRAYOID, TEXTARRAYOID}, NULL};

static LyQuery q_used_ahead = {
	"SELECT u.m FROM unnest($1) AS u(m) "
	" WHERE EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = u.m)", 1, {INT8ARRAYOID}, NULL};

/* tiers.c q_window_sum, per member */
static LyQuery q_window_ahead = {
	"SELECT u.m, w.s, w.o FROM unnest($1, $2, $3) AS u(m, a, b) "
	" CROSS JOIN LATERAL (SELECT coalesce(sum(qualifying), 0) AS s, min(qualifying_at) AS o "
	"                       FROM loyalty.entry "
	"                      WHERE member_id = u.m AND qualifying <> 0 "
	"                        AND qualifying_at >= u.a AND qualifying_at <= u.b) w", 3,
	{INT8ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}, NULL};

bool		ly_batch_active = false;

static struct
{
	MemoryContext cxt;			/* the batch */
	MemoryContext bufcxt;		/* buffered rows: reset by each flush */
	MemoryContext memcxt;		/* the current member's saved row and keys */
	Buf			entries;
	Buf			lots;
	Buf			members;
	int64		current;		/* the member the batch is processing */
	bool		dirty;			/* something of it is buffered */
	bool		flushing;
	bool		saved;			/* save_v holds its last save */
	bool		save_pending;	/* ... not yet in the members buffer */
	Datum		save_v[LY_MEMBER_COLUMNS];
	char		save_n[LY_MEMBER_COLUMNS];
	int64		program_id;
	int64		referred_by;	/* not a saved column, but earn's referral hook reads it */
	HTAB	   *keys;			/* its keys that exist: looked up, or written by the batch */
	bool		looked_up;		/* keys of the current run of rows looked up */
	Datum		run_keys;		/* text[] of the current run's keys */
	/* the members of the chunk being processed, read ahead (see read_ahead) */
	MemoryContext aheadcxt;
	struct Ahead *ahead;
	int			nahead;
	bool		ahead_valid;
	bool		quiet;			/* reading ahead: its queries are about members not begun yet */
} B;

/*
 * A member of the chunk, read ahead: its locked row, which of its keys in the
 * chunk exist, and its qualifying window at its first row's business time
 * (read only when the row has no window state yet: earn's first use).
 */
typedef struct Ahead
{
	int64		id;
	Datum		cols[LY_MEMBER_COLUMNS];
	bool		nulls[LY_MEMBER_COLUMNS];
	int64		referred_by;
	bool		saved;			/* the batch has saved it since: the row above is stale */
	bool		has_entries;	/* it has any ledger entry */
	int			nkeys;			/* its keys of the chunk that exist */
	char	  **keys;
	bool		has_window;
	TimestampTz w_start;
	TimestampTz w_at;
	Numeric		w_sum;
	TimestampTz w_oldest;
	bool		w_has_oldest;
} Ahead;

/*
 * The columns q_flush_entries and q_flush_lots write, per buffer column (the
 * lot's points column also fills remaining), and the NULL replacements of
 * their coalesce()s.
 */
static const char *const entry_cols[] = {
	"member_id", "id", "kind", "points", "at", "idempotency_key", "request", "amount", "reason",
	"ref_entry_id", "counterparty_id", "qualifying", "qualifying_at", "detail",
"available_after", "pending_after", "tier_after"};
static const char *const lot_cols[] = {
	"member_id", "entry_id", "at", "points", "available_at", "expires_at", "source_lot", "state"};

/* Resolve the direct path for `b` (entries or lots of table `relname`), or leave it off. */
static void
direct_init(Buf *b, const char *relname, const char *const *cols)
{
	Direct	   *d = &b->direct;
	Oid			relid = RangeVarGetRelid(makeRangeVar("loyalty", (char *) relname, -1),
										 RowExclusiveLock, false);
	Relation	rel;
	TupleDesc	td;
	TriggerDesc *tr;
	int			a;
	int			c;
	int			i;

	memset(d, 0, sizeof(*d));
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED ||
		pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return;
	rel = table_open(relid, RowExclusiveLock);
	td = RelationGetDescr(rel);
	tr = rel->trigdesc;
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		(td->constr && td->constr->has_generated_stored) ||
		(tr && (tr->trig_insert_before_row || tr->trig_insert_after_row ||
				tr->trig_insert_instead_row || tr->trig_insert_before_statement ||
				tr->trig_insert_after_statement || tr->trig_insert_new_table)))
	{
		table_close(rel, NoLock);
		return;
	}
	d->rel = rel;
	d->natts = td->natts;
	d->src = palloc(sizeof(int) * td->natts);
	d->defaults = palloc0(sizeof(ExprState *) * td->natts);
	d->ifnull = palloc0(sizeof(Datum) * td->natts);
	d->has_ifnull = palloc0(sizeof(bool) * td->natts);
	d->input = palloc0(sizeof(Oid) * td->natts);
	d->ioparam = palloc0(sizeof(Oid) * td->natts);
	d->last_text = palloc0(sizeof(char *) * td->natts);
	d->last_value = palloc0(sizeof(Datum) * td->natts);
	for (a = 0; a < td->natts; a++)
		d->src[a] = -1;
	for (c = 0; c < b->ncols; c++)
	{
		AttrNumber	an = get_attnum(relid, cols[c]);
		Form_pg_attribute att;

		if (an <= 0)
			goto off;
		att = TupleDescAttr(td, an - 1);
		d->src[an - 1] = c;
		if (att->atttypid != b->types[c])
		{
			if (b->types[c] == TEXTOID && type_is_enum(att->atttypid))
				getTypeInputInfo(att->atttypid, &d->input[an - 1], &d->ioparam[an - 1]);
			else
				goto off;
		}
		if (b == &B.lots && c == 3)
		{
			/* points also fills remaining */
			an = get_attnum(relid, "remaining");
			if (an <= 0 || TupleDescAttr(td, an - 1)->atttypid != b->types[c])
				goto off;
			d->src[an - 1] = c;
		}
	}
	if (b == &B.entries)
	{
		/* q_flush_entries' coalesce(a12, 0): qualifying */
		a = get_attnum(relid, cols[11]) - 1;
		d->has_ifnull[a] = true;
		d->ifnull[a] = NumericGetDatum(int64_to_numeric(0));
	}
	for (a = 0; a < td->natts; a++)
	{
		Node	   *def;

		if (TupleDescAttr(td, a)->attisdropped || d->src[a] >= 0)
			continue;
		def = build_column_default(rel, a + 1);
		if (def != NULL)
			d->defaults[a] = ExecInitExpr(expression_planner((Expr *) def), NULL);
	}
	d->estate = CreateExecutorState();
	d->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(d->rri, rel, 0, NULL, 0);
	ExecOpenIndices(d->rri, false);
	for (i = 0; i < d->rri->ri_NumIndices; i++)
		if (d->rri->ri_IndexRelationInfo[i]->ii_ExclusionOps != NULL)
		{
			ExecCloseIndices(d->rri);
			goto off;
		}
	d->slots = palloc(sizeof(TupleTableSlot *) * DIRECT_SLOTS);
	/* an unpinned copy: a thousand slots pinning the relation's own descriptor slow the resource owner down */
	td = CreateTupleDescCopy(td);
	for (i = 0; i < DIRECT_SLOTS; i++)
		d->slots[i] = MakeSingleTupleTableSlot(td, &TTSOpsVirtual);
	d->ok = true;
	return;
off:
	table_close(rel, NoLock);
	d->rel = NULL;
}

static void
direct_end(Direct *d)
{
	int			i;

	if (!d->ok)
		return;
	for (i = 0; i < DIRECT_SLOTS; i++)
		ExecDropSingleTupleTableSlot(d->slots[i]);
	ExecCloseIndices(d->rri);
	FreeExecutorState(d->estate);
	table_close(d->rel, NoLock);
	d->ok = false;
}

/* The buffered rows into the table, DIRECT_SLOTS at a time. */
static void
direct_write(Buf *b)
{
	Direct	   *d = &b->direct;
	ExprContext *econtext = GetPerTupleExprContext(d->estate);
	CommandId	cid = GetCurrentCommandId(true);
	bool		check = RelationGetDescr(d->rel)->constr != NULL;
	int			done;

	for (done = 0; done < b->n; done += DIRECT_SLOTS)
	{
		int			k = Min(b->n - done, DIRECT_SLOTS);
		int			i;
		int			a;

		for (i = 0; i < k; i++)
		{
			TupleTableSlot *s = d->slots[i];
			int			r = done + i;

			ExecClearTuple(s);
			for (a = 0; a < d->natts; a++)
			{
				int			c = d->src[a];
				Datum		v = (Datum) 0;
				bool		isnull = true;

				if (c >= 0)
				{
					isnull = b->nulls[c][r];
					v = b->vals[c][r];
					if (isnull && d->has_ifnull[a])
					{
						v = d->ifnull[a];
						isnull = false;
					}
					else if (!isnull && OidIsValid(d->input[a]))
					{
						char	   *t = TextDatumGetCString(v);

						if (d->last_text[a] == NULL || strcmp(t, d->last_text[a]) != 0)
						{
							MemoryContext old = MemoryContextSwitchTo(B.cxt);

							/* the batch's context lives as long as the batch: one copy, not one per change */
							if (d->last_text[a] != NULL)
								pfree(d->last_text[a]);
							d->last_value[a] = OidInputFunctionCall(d->input[a], t, d->ioparam[a], -1);
							d->last_text[a] = pstrdup(t);
							MemoryContextSwitchTo(old);
						}
						v = d->last_value[a];
					}
				}
				else if (d->defaults[a] != NULL)
					v = ExecEvalExprSwitchContext(d->defaults[a], econtext, &isnull);
				s->tts_values[a] = v;
				s->tts_isnull[a] = isnull;
			}
			ExecStoreVirtualTuple(s);
			if (check)
				ExecConstraints(d->rri, s, d->estate);
		}
		table_multi_insert(d->rel, d->slots, k, cid, 0, NULL);
		/* the slots hold their tuples now: what the defaults and checks allocated can go */
		ResetPerTupleExprContext(d->estate);
		if (d->rri->ri_NumIndices > 0)
			for (i = 0; i < k; i++)
			{
				/* an index insertion's allocations last one row, as in an INSERT's executor */
				MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(d->estate));

				list_free(ExecInsertIndexTuples(d->rri, d->slots[i], d->estate, false, false,
												NULL, NIL));
				MemoryContextSwitchTo(old);
				ResetPerTupleExprContext(d->estate);
			}
	}
}

static void
buf_init(Buf *b, LyQuery *q)
{
	int			c;

	memset(b, 0, sizeof(*b));
	b->q = q;
	b->ncols = q->nargs;
	for (c = 0; c < b->ncols; c++)
	{
		b->types[c] = get_element_type(q->argtypes[c]);
		get_typlenbyvalalign(b->types[c], &b->typlen[c], &b->typbyval[c], &b->typalign[c]);
	}
}

static void
buf_add(Buf *b, Datum *v, const char *n)
{
	MemoryContext old = MemoryContextSwitchTo(B.bufcxt);
	int			c;

	if (b->n == b->cap)
	{
		int			cap = b->cap ? b->cap * 2 : 256;

		for (c = 0; c < b->ncols; c++)
		{
			b->vals[c] = b->cap ? repalloc(b->vals[c], sizeof(Datum) * cap) : palloc(sizeof(Datum) * cap);
			b->nulls[c] = b->cap ? repalloc(b->nulls[c], sizeof(bool) * cap) : palloc(sizeof(bool) * cap);
		}
		b->cap = cap;
	}
	for (c = 0; c < b->ncols; c++)
	{
		bool		isnull = n != NULL && n[c] == 'n';

		b->nulls[c][b->n] = isnull;
		b->vals[c][b->n] = isnull ? (Datum) 0 : datumCopy(v[c], b->typbyval[c], b->typlen[c]);
	}
	b->n++;
	MemoryContextSwitchTo(old);
}

static void
buf_write(Buf *b)
{
	Datum		args[LY_MEMBER_COLUMNS];
	int			c;
	int			lb = 1;

	MemoryContext old;

	if (b->n == 0)
		return;
	if (b->direct.ok)
	{
		MemoryContext old2 = MemoryContextSwitchTo(B.bufcxt);

		direct_write(b);
		MemoryContextSwitchTo(old2);
		b->n = b->cap = 0;
		return;
	}
	/* the arrays live in bufcxt, reset after the flush: a flush leaves nothing behind */
	old = MemoryContextSwitchTo(B.bufcxt);
	for (c = 0; c < b->ncols; c++)
		args[c] = PointerGetDatum(construct_md_array(b->vals[c], b->nulls[c], 1, &b->n, &lb,
													 b->types[c], b->typlen[c], b->typbyval[c],
													 b->typalign[c]));
	if (ly_run(b->q, args, NULL, 0) != (uint64) b->n)
		elog(ERROR, "loyalty: earn_batch wrote " UINT64_FORMAT " of %d rows", SPI_processed, b->n);
	MemoryContextSwitchTo(old);
	/* the arrays go with bufcxt; the buffer starts again empty */
	b->n = b->cap = 0;
}

/*
 * Write what is buffered; keep_current: all but the current member's row,
 * which stays pending (its next save replaces it). A member row updated
 * twice in one transaction costs a second index entry per index (its first
 * update moves next_transition_at, which is indexed) and, as a row our
 * transaction wrote, a foreign-key check per reference: the flush between
 * chunks keeps the member the batch is in the middle of for later.
 */
static void
batch_flush_ex(bool keep_current)
{
	if (B.flushing)
		return;
	B.flushing = true;
	if (B.save_pending && !keep_current)
	{
		buf_add(&B.members, B.save_v, B.save_n);
		B.save_pending = false;
	}
	buf_write(&B.entries);
	buf_write(&B.lots);
	buf_write(&B.members);
	MemoryContextReset(B.bufcxt);
	B.dirty = B.save_pending;
	B.flushing = false;
}

/* Write everything buffered. */
static void
batch_flush(void)
{
	batch_flush_ex(false);
}

/* The batch moves to the rows of `member` (keys: text[] of its run of rows in this chunk). */
static void
batch_member(int64 member, bool same, Datum keys)
{
	if (!same)
	{
		if (B.save_pending)
		{
			buf_add(&B.members, B.save_v, B.save_n);
			B.save_pending = false;
		}
		MemoryContextReset(B.memcxt);
		B.keys = NULL;
		B.saved = false;
		B.dirty = false;	/* the previous member's rows stay buffered: see loyalty.h */
		B.current = member;
	}
	B.looked_up = false;
	B.run_keys = keys;
}

void
ly_batch_before_query(void)
{
	if (B.dirty && !B.flushing && !B.quiet)
		batch_flush();
}

/* The read-ahead entry of `member_id` (binary search: the chunk's members are in id order). */
static Ahead *
ahead_get(int64 member_id)
{
	int			lo = 0;
	int			hi = B.nahead - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (B.ahead[mid].id == member_id)
			return &B.ahead[mid];
		if (B.ahead[mid].id < member_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* The read-ahead entry of `member_id`, if it is still good. */
static Ahead *
ahead_find(int64 member_id)
{
	if (!B.ahead_valid || B.flushing)
		return NULL;
	return ahead_get(member_id);
}

/*
 * What was read ahead is good while only the batch's own member writes: a
 * lock of another member (a hook paying a referrer) may change rows read
 * ahead, so from then on the chunk's members are read one by one again
 * (programs.c calls this for try-locks; ly_batch_locked_member for locks).
 */
void
ly_batch_forget_ahead(void)
{
	B.ahead_valid = false;
}

/* The window of the member's first use (tiers.c), if read ahead for exactly [start, at]. */
bool
ly_batch_window(int64 member_id, TimestampTz start, TimestampTz at, Numeric *sum,
				TimestampTz *oldest, bool *has_oldest)
{
	Ahead	   *a;

	if (member_id != B.current || (a = ahead_find(member_id)) == NULL || a->saved ||
		!a->has_window || a->w_start != start || a->w_at != at)
		return false;
	*sum = DatumGetNumericCopy(NumericGetDatum(a->w_sum));
	*oldest = a->w_oldest;
	*has_oldest = a->w_has_oldest;
	return true;
}

/*
 * Read the chunk's members ahead, three statements for all of them instead of
 * three for each (its lock, its keys, its window): rows tt->vals[from..nrows),
 * in member order. The member the batch is in the middle of is not included.
 * Every member is locked here, in id order, as the one-by-one locks would
 * have done; a member that is not found is left to earn, which reports it.
 */
static void
read_ahead(SPITupleTable *tt, uint64 from, uint64 nrows, bool has_at, TimestampTz now)
{
	TupleDesc	td = tt->tupdesc;
	MemoryContext old;
	Datum	   *ids;
	Datum	   *firstat;
	bool	   *has_firstat;
	Datum	   *km;
	Datum	   *kk;
	int			nm = 0;
	int			nk = 0;
	int			nw = 0;
	Datum	   *wm;
	Datum	   *ws;
	Datum	   *wa;
	Program    *p = NULL;
	uint64		i;
	uint64		n;
	int			j;
	Datum		v[3];

	/* the chunk is ours to free: the queries below must not take it for a result of theirs (ly_run) */
	if (SPI_tuptable == tt)
		SPI_tuptable = NULL;
	MemoryContextReset(B.aheadcxt);
	B.ahead = NULL;
	B.nahead = 0;
	B.ahead_valid = false;
	old = MemoryContextSwitchTo(B.aheadcxt);
	ids = palloc(sizeof(Datum) * (nrows - from));
	firstat = palloc(sizeof(Datum) * (nrows - from));
	has_firstat = palloc(sizeof(bool) * (nrows - from));
	km = palloc(sizeof(Datum) * (nrows - from));
	kk = palloc(sizeof(Datum) * (nrows - from));
	for (i = from; i < nrows; i++)
	{
		bool		mnull;
		bool		knull;
		bool		anull;
		Datum		mv = SPI_getbinval(tt->vals[i], td, 1, &mnull);
		Datum		kv = SPI_getbinval(tt->vals[i], td, 3, &knull);
		Datum		av = SPI_getbinval(tt->vals[i], td, 4, &anull);

		if (mnull)
			break;				/* NULL members come last: earn reports them */
		if (DatumGetInt64(mv) == B.current)
			continue;
		if (nm == 0 || DatumGetInt64(ids[nm - 1]) != DatumGetInt64(mv))
		{
			ids[nm] = mv;
			/* the business time earn gets for the member's first row */
			has_firstat[nm] = !has_at || !anull;
			firstat[nm] = has_at ? av : TimestampTzGetDatum(now);
			nm++;
		}
		if (!knull)
		{
			km[nk] = mv;
			kk[nk++] = datumCopy(kv, false, -1);
		}
	}
	if (nm == 0)
	{
		MemoryContextSwitchTo(old);
		return;
	}
	/* the statements' arrays too: everything here lasts one chunk */
	v[0] = PointerGetDatum(construct_array(ids, nm, INT8OID, 8, true, TYPALIGN_DOUBLE));
	MemoryContextSwitchTo(old);
	n = ly_run(&q_lock_ahead, v, NULL, 0);
	old = MemoryContextSwitchTo(B.aheadcxt);
	B.ahead = palloc0(sizeof(Ahead) * (n + 1));
	for (i = 0; i < n; i++)
	{
		Ahead	   *a = &B.ahead[i];
		bool		isnull;
		int			k;

		a->id = DatumGetInt64(ly_get(i, 1, &isnull));
		for (k = 0; k < LY_MEMBER_COLUMNS; k++)
		{
			Datum		d = ly_get(i, k + 2, &a->nulls[k]);

			/* qualifying and lifetime_spend (columns 9 and 10) are the by-reference ones */
			if (!a->nulls[k] && (k == 8 || k == 9))
				d = NumericGetDatum(DatumGetNumericCopy(d));
			a->cols[k] = d;
		}
		a->referred_by = DatumGetInt64(ly_get(i, LY_MEMBER_COLUMNS + 2, &isnull));
		if (isnull)
			a->referred_by = 0;
	}
	B.nahead = (int) n;
	MemoryContextSwitchTo(old);
	if (B.nahead == 0)
		return;

	/*
	 * Which of them have any entry (one probe each, read after the locks like
	 * everything below): a member without one has no key to replay and an
	 * empty window, and its keys need no probe each.
	 */
	n = ly_run(&q_used_ahead, v, NULL, 0);
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Ahead	   *a = ahead_get(DatumGetInt64(ly_get(i, 1, &isnull)));

		if (a != NULL)
			a->has_entries = true;
	}

	/* their keys of the chunk that exist (read after the locks: no one can add one now) */
	for (i = 0, j = 0; i < (uint64) nk; i++)
	{
		Ahead	   *a = ahead_get(DatumGetInt64(km[i]));

		if (a != NULL && a->has_entries)
		{
			km[j] = km[i];
			kk[j++] = kk[i];
		}
	}
	nk = j;
	if (nk > 0)
	{
		old = MemoryContextSwitchTo(B.aheadcxt);
		v[0] = PointerGetDatum(construct_array(km, nk, INT8OID, 8, true, TYPALIGN_DOUBLE));
		v[1] = PointerGetDatum(construct_array(kk, nk, TEXTOID, -1, false, TYPALIGN_INT));
		MemoryContextSwitchTo(old);
		n = ly_run(&q_keys_ahead, v, NULL, 0);
		old = MemoryContextSwitchTo(B.aheadcxt);
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Ahead	   *a = ahead_get(DatumGetInt64(ly_get(i, 1, &isnull)));

			if (a == NULL)
				continue;
			if (a->keys == NULL)
				a->keys = palloc(sizeof(char *) * nk);
			a->keys[a->nkeys++] = ly_get_text(i, 2);
		}
		MemoryContextSwitchTo(old);
	}

	/* the windows of the members without window state, as earn's first use reads them */
	old = MemoryContextSwitchTo(B.aheadcxt);
	wm = palloc(sizeof(Datum) * B.nahead);
	ws = palloc(sizeof(Datum) * B.nahead);
	wa = palloc(sizeof(Datum) * B.nahead);
	MemoryContextSwitchTo(old);
	for (j = 0, i = 0; j < B.nahead; j++)
	{
		Ahead	   *a = &B.ahead[j];

		while (DatumGetInt64(ids[i]) < a->id)
			i++;
		if (!a->nulls[14] || !has_firstat[i])	/* q_start: the member has window state */
			continue;
		if (p == NULL || p->id != DatumGetInt64(a->cols[0]))
		{
			/* the cache returns a copy: one per program and chunk, in the chunk's memory */
			old = MemoryContextSwitchTo(B.aheadcxt);
			p = ly_program_unchecked(DatumGetInt64(a->cols[0]));
			MemoryContextSwitchTo(old);
		}
		a->w_at = DatumGetTimestampTz(firstat[i]);
		a->w_start = ly_window_start(p, a->w_at);
		if (!a->has_entries)
		{
			/* what q_window_ahead answers for a member without entries */
			old = MemoryContextSwitchTo(B.aheadcxt);
			a->w_sum = int64_to_numeric(0);
			MemoryContextSwitchTo(old);
			a->w_has_oldest = false;
			a->has_window = true;
			continue;
		}
		wm[nw] = Int64GetDatum(a->id);
		ws[nw] = TimestampTzGetDatum(a->w_start);
		wa[nw++] = TimestampTzGetDatum(a->w_at);
	}
	if (nw > 0)
	{
		old = MemoryContextSwitchTo(B.aheadcxt);
		v[0] = PointerGetDatum(construct_array(wm, nw, INT8OID, 8, true, TYPALIGN_DOUBLE));
		v[1] = PointerGetDatum(construct_array(ws, nw, TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
		v[2] = PointerGetDatum(construct_array(wa, nw, TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
		MemoryContextSwitchTo(old);
		n = ly_run(&q_window_ahead, v, NULL, 0);
		old = MemoryContextSwitchTo(B.aheadcxt);
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			Ahead	   *a = ahead_get(DatumGetInt64(ly_get(i, 1, &isnull)));

			if (a == NULL)
				continue;
			a->w_sum = ly_get_numeric(i, 2);
			a->w_oldest = DatumGetTimestampTz(ly_get(i, 3, &isnull));
			a->w_has_oldest = !isnull;
			a->has_window = true;
		}
		MemoryContextSwitchTo(old);
	}
	B.ahead_valid = true;
}

static bool
deferrable(int64 member_id)
{
	return !B.flushing && member_id == B.current;
}

bool
ly_batch_defer_entry(int64 member_id, const char *key, Datum *v, const char *n)
{
	if (!deferrable(member_id))
		return false;
	buf_add(&B.entries, v, n);
	B.dirty = true;
	if (key != NULL && B.keys != NULL)
	{
		char		k[LY_MAX_KEY + 1];

		strlcpy(k, key, sizeof(k));
		(void) hash_search(B.keys, k, HASH_ENTER, NULL);
	}
	return true;
}

bool
ly_batch_defer_lot(int64 member_id, Datum *v, const char *n)
{
	if (!deferrable(member_id))
		return false;
	buf_add(&B.lots, v, n);
	B.dirty = true;
	return true;
}

bool
ly_batch_defer_save(Member *m, Datum *v, const char *n)
{
	MemoryContext old;
	int			c;

	if (!deferrable(m->id))
		return false;
	old = MemoryContextSwitchTo(B.memcxt);
	for (c = 0; c < LY_MEMBER_COLUMNS; c++)
	{
		/* numerics (qualifying, lifetime_spend) are the only by-reference columns */
		if (B.saved && (c == 8 || c == 9) && B.save_n[c] != 'n')
			pfree(DatumGetPointer(B.save_v[c]));
		B.save_n[c] = n[c];
		B.save_v[c] = n[c] == 'n' ? (Datum) 0 :
			(c == 8 || c == 9) ? NumericGetDatum(DatumGetNumericCopy(v[c])) : v[c];
	}
	MemoryContextSwitchTo(old);
	B.program_id = m->prog->id;
	B.referred_by = m->referred_by;
	B.saved = B.save_pending = B.dirty = true;
	{
		Ahead	   *a = ahead_find(m->id);

		if (a)
			a->saved = true;
	}
	return true;
}

/* The member being processed as its last save left it (it is locked), or NULL. */
Member *
ly_batch_locked_member(int64 member_id, Program *known)
{
	Datum		c[LY_MEMBER_COLUMNS];
	bool		cn[LY_MEMBER_COLUMNS];
	int			k;
	Member	   *m;

	if (B.flushing)
		return NULL;
	if (member_id != B.current)
	{
		/* another member (a rule, a hook): it must see what the batch wrote */
		batch_flush();
		ly_batch_forget_ahead();
		return NULL;
	}
	if (!B.saved)
	{
		Ahead	   *a = ahead_find(member_id);

		if (a == NULL || a->saved)
			return NULL;
		m = ly_member_from_columns(member_id, a->cols, a->nulls, known);
		m->referred_by = a->referred_by;
		/* what lock_member checks after its query: it reports the error itself */
		if (!ly_program_allowed(m->prog))
			return NULL;
		return m;
	}
	/* q_save_member's parameters are MEMBER_COLUMNS but the first (program_id) */
	c[0] = Int64GetDatum(B.program_id);
	cn[0] = false;
	for (k = 1; k < LY_MEMBER_COLUMNS; k++)
	{
		c[k] = B.save_v[k];
		cn[k] = B.save_n[k] == 'n';
	}
	m = ly_member_from_columns(member_id, c, cn, known);
	/* what lock_member reads beside the saved columns; earn never changes it */
	m->referred_by = B.referred_by;
	return m;
}

/* True when `key` is certainly unused by the member being processed. */
bool
ly_batch_key_unused(int64 member_id, const char *key)
{
	char		k[LY_MAX_KEY + 1];
	bool		found;

	if (B.flushing || member_id != B.current || key == NULL)
		return false;
	if (B.keys == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = LY_MAX_KEY + 1;
		ctl.entrysize = LY_MAX_KEY + 1;
		ctl.hcxt = B.memcxt;
		B.keys = hash_create("loyalty earn_batch keys", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (!B.looked_up)
	{
		/* the member is locked: no one else can add keys until we commit */
		Datum		v[2] = {Int64GetDatum(member_id), B.run_keys};
		uint64		i;
		uint64		n;
		Ahead	   *a = ahead_find(member_id);

		B.looked_up = true;
		if (a != NULL && !a->saved)
		{
			/* read ahead with the chunk: this run of rows is the member's rows of the chunk */
			for (i = 0; i < (uint64) a->nkeys; i++)
			{
				strlcpy(k, a->keys[i], sizeof(k));
				(void) hash_search(B.keys, k, HASH_ENTER, NULL);
			}
			strlcpy(k, key, sizeof(k));
			(void) hash_search(B.keys, k, HASH_FIND, &found);
			return !found;
		}
		n = ly_run(&q_existing_keys, v, NULL, 0);
		for (i = 0; i < n; i++)
		{
			strlcpy(k, ly_get_text(i, 1), sizeof(k));
			(void) hash_search(B.keys, k, HASH_ENTER, NULL);
		}
	}
	strlcpy(k, key, sizeof(k));
	(void) hash_search(B.keys, k, HASH_FIND, &found);
	return !found;
}

/* An error ends the batch with its memory: leave the core in its normal mode. */
static void
batch_reset(void *arg)
{
	(void) arg;
	ly_batch_active = false;
	memset(&B, 0, sizeof(B));
}

typedef struct BatchRow
{
	int64		n;				/* 1-based, in processing order */
	bool		has_member;
	int64		member;
	const char *key;
} BatchRow;

static void
batch_context(void *arg)
{
	BatchRow   *r = (BatchRow *) arg;

	if (r->n <= 0)
		return;
	if (r->has_member)
		errcontext("earn_batch row " INT64_FORMAT " (member " INT64_FORMAT ", idempotency_key %s)",
				   r->n, r->member, r->key ? r->key : "NULL");
	else
		errcontext("earn_batch row " INT64_FORMAT " (member NULL, idempotency_key %s)",
				   r->n, r->key ? r->key : "NULL");
}

static bool
has_column(Oid relid, const char *name)
{
	AttrNumber	a = get_attnum(relid, name);

	return a != InvalidAttrNumber && a > 0;
}

/*
 * earn_batch(purchases regclass) RETURNS SETOF loyalty.batch_receipt
 * purchases: a table, view or temp table with columns member, amount,
 * idempotency_key, and optionally at (default: now()) and attrs (default '{}').
 */
PG_FUNCTION_INFO_V1(loyalty_earn_batch);
Datum
loyalty_earn_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	bool		has_at;
	bool		has_attrs;
	char	   *relname;
	char	   *sql;
	Oid			earn_oid;
	FmgrInfo	earn_flinfo;
	Portal		portal;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	ErrorContextCallback errcb;
	MemoryContextCallback *resetcb;
	BatchRow	cur = {0};
	Datum		empty_attrs;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TupleDesc	rdesc = NULL;		/* earn's receipt */
	Datum	   *rvals = NULL;
	bool	   *rnulls = NULL;
	HeapTupleData rtup;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("purchases must not be null")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(LY_BATCH_INPUT),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!has_column(relid, "member") || !has_column(relid, "amount") ||
		!has_column(relid, "idempotency_key"))
		ereport(ERROR,
				(errcode(LY_BATCH_INPUT),
				 errmsg("purchases relation %s lacks a required column", get_rel_name(relid)),
				 errdetail("earn_batch reads the columns member, amount, idempotency_key, and optionally at and attrs."),
				 errhint("SELECT loyalty.earn_batch('staging'::regclass) where staging has (member bigint, amount numeric, idempotency_key text, at timestamptz, attrs jsonb).")));
	/*
	 * The caller must be allowed to read the purchases: checked for the role in
	 * effect outside any SECURITY DEFINER wrapper, so that granting earn_batch
	 * as a definer function does not let it read tables the caller cannot.
	 */
	if (pg_class_aclcheck(relid, GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK &&
		(pg_attribute_aclcheck(relid, get_attnum(relid, "member"), GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 pg_attribute_aclcheck(relid, get_attnum(relid, "amount"), GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 pg_attribute_aclcheck(relid, get_attnum(relid, "idempotency_key"), GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 (has_column(relid, "at") &&
		  pg_attribute_aclcheck(relid, get_attnum(relid, "at"), GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK) ||
		 (has_column(relid, "attrs") &&
		  pg_attribute_aclcheck(relid, get_attnum(relid, "attrs"), GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for relation %s", get_rel_name(relid))));
	has_at = has_column(relid, "at");
	has_attrs = has_column(relid, "attrs");
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));

	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Call the C function of loyalty.earn directly: the same code, without a
	 * per-row GUC save/restore (earn_batch carries the same SET clauses).
	 */
	earn_oid = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
													CStringGetDatum("loyalty.earn(bigint,numeric,text,timestamptz,jsonb)")));
	fmgr_info(earn_oid, &earn_flinfo);
	earn_flinfo.fn_addr = loyalty_earn;
	empty_attrs = JsonbPGetDatum(ly_jsonb("{}"));

	/* member order = lock order; then business time, then key (replays adjacent) */
	sql = psprintf("SELECT member::pg_catalog.int8, amount::pg_catalog.numeric, "
				   "       idempotency_key::pg_catalog.text, %s, %s FROM %s "
				   " ORDER BY 1, 4, 3",
				   has_at ? "at::pg_catalog.timestamptz" : "NULL::pg_catalog.timestamptz",
				   has_attrs ? "attrs::pg_catalog.jsonb" : "NULL::pg_catalog.jsonb",
				   relname);

	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty earn_batch row",
								   ALLOCSET_DEFAULT_SIZES);

	/* the write-behind state; its reset callback also runs if the batch fails */
	if (ly_batch_active)
		elog(ERROR, "loyalty: earn_batch cannot run inside another earn_batch");
	memset(&B, 0, sizeof(B));
	B.cxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty earn_batch", ALLOCSET_DEFAULT_SIZES);
	B.bufcxt = AllocSetContextCreate(B.cxt, "loyalty earn_batch buffers", ALLOCSET_DEFAULT_SIZES);
	B.memcxt = AllocSetContextCreate(B.cxt, "loyalty earn_batch member", ALLOCSET_DEFAULT_SIZES);
	B.aheadcxt = AllocSetContextCreate(B.cxt, "loyalty earn_batch read-ahead", ALLOCSET_DEFAULT_SIZES);
	resetcb = MemoryContextAlloc(B.cxt, sizeof(MemoryContextCallback));
	resetcb->func = batch_reset;
	resetcb->arg = NULL;
	MemoryContextRegisterResetCallback(B.cxt, resetcb);
	buf_init(&B.entries, &q_flush_entries);
	buf_init(&B.lots, &q_flush_lots);
	buf_init(&B.members, &ly_q_save_members);
	oldcxt = MemoryContextSwitchTo(B.cxt);
	direct_init(&B.entries, "entry", entry_cols);
	direct_init(&B.lots, "lot", lot_cols);
	MemoryContextSwitchTo(oldcxt);
	B.current = PG_INT64_MIN;
	ly_batch_active = true;

	errcb.callback = batch_context;
	errcb.arg = &cur;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (;;)
	{
		SPITupleTable *tt;
		TupleDesc	td;
		uint64		nrows;
		uint64		i;

		SPI_cursor_fetch(portal, true, BATCH_FETCH);
		tt = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		td = tt->tupdesc;
		/*
		 * The chunk's new members have nothing buffered (each member's rows
		 * are contiguous; the current one is not read ahead): no flush first.
		 */
		B.quiet = true;
		read_ahead(tt, 0, nrows, has_at, now);
		B.quiet = false;
		for (i = 0; i < nrows; i++)
		{
			LOCAL_FCINFO(ec, 5);
			HeapTuple	row = tt->vals[i];
			Datum		d;
			HeapTupleHeader rec;
			Datum		out[9];
			bool		outnull[9];
			int			c;

			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(rowcxt);
			cur.n++;
			InitFunctionCallInfoData(*ec, &earn_flinfo, 5, InvalidOid, NULL, NULL);
			for (c = 0; c < 5; c++)
				ec->args[c].value = SPI_getbinval(row, td, c + 1, &ec->args[c].isnull);
			cur.has_member = !ec->args[0].isnull;
			cur.member = cur.has_member ? DatumGetInt64(ec->args[0].value) : PG_INT64_MIN;
			cur.key = ec->args[2].isnull ? NULL : TextDatumGetCString(ec->args[2].value);
			/* absent columns take earn's defaults; present NULLs go to earn as NULLs */
			if (!has_at)
			{
				ec->args[3].value = TimestampTzGetDatum(now);
				ec->args[3].isnull = false;
			}
			if (!has_attrs)
			{
				ec->args[4].value = empty_attrs;
				ec->args[4].isnull = false;
			}
			/* a new run of rows of one member: its keys, looked up once on its first replay check */
			if (i == 0 || cur.member != B.current)
			{
				bool		same = cur.n > 1 && cur.member == B.current;
				uint64		j;
				int			nk = 0;
				Datum	   *keys;

				batch_member(cur.member, same, (Datum) 0);
				MemoryContextSwitchTo(B.memcxt);
				keys = palloc(sizeof(Datum) * (nrows - i));
				for (j = i; j < nrows; j++)
				{
					bool		mnull;
					bool		knull;
					Datum		mv = SPI_getbinval(tt->vals[j], td, 1, &mnull);
					Datum		kv = SPI_getbinval(tt->vals[j], td, 3, &knull);

					if (mnull || DatumGetInt64(mv) != cur.member)
						break;
					if (!knull)
						keys[nk++] = datumCopy(kv, false, -1);
				}
				B.run_keys = PointerGetDatum(construct_array(keys, nk, TEXTOID, -1, false, TYPALIGN_INT));
				MemoryContextSwitchTo(rowcxt);
			}

			d = FunctionCallInvoke(ec);
			if (ec->isnull)
				elog(ERROR, "loyalty: earn returned no receipt");
			rec = DatumGetHeapTupleHeader(d);
			out[0] = Int64GetDatum(cur.n);
			outnull[0] = false;
			out[1] = ec->args[2].value;
			outnull[1] = false;
			/* the receipt's columns, with its descriptor looked up once (not once per column and row) */
			if (rdesc == NULL || HeapTupleHeaderGetTypeId(rec) != rdesc->tdtypeid ||
				HeapTupleHeaderGetTypMod(rec) != rdesc->tdtypmod)
			{
				MemoryContext old = MemoryContextSwitchTo(B.cxt);

				rdesc = lookup_rowtype_tupdesc_copy(HeapTupleHeaderGetTypeId(rec),
													HeapTupleHeaderGetTypMod(rec));
				if (rdesc->natts < 7)
					elog(ERROR, "loyalty: a receipt has 7 columns");
				rvals = palloc(sizeof(Datum) * rdesc->natts);
				rnulls = palloc(sizeof(bool) * rdesc->natts);
				MemoryContextSwitchTo(old);
			}
			rtup.t_len = HeapTupleHeaderGetDatumLength(rec);
			ItemPointerSetInvalid(&rtup.t_self);
			rtup.t_tableOid = InvalidOid;
			rtup.t_data = rec;
			heap_deform_tuple(&rtup, rdesc, rvals, rnulls);
			for (c = 0; c < 7; c++)
			{
				out[c + 2] = rvals[c];
				outnull[c + 2] = rnulls[c];
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		/* the chunk's rows are done with: free them, then write what is buffered */
		if (SPI_tuptable == tt)
			SPI_tuptable = NULL;
		SPI_freetuptable(tt);
		if (B.entries.n + B.lots.n + B.members.n >= BATCH_FLUSH)
			batch_flush_ex(true);
	}
	cur.n = 0;					/* errors from here on are the batch's, not a row's */
	batch_member(PG_INT64_MIN, false, (Datum) 0);
	batch_flush();
	direct_end(&B.entries.direct);
	direct_end(&B.lots.direct);
	ly_batch_active = false;
	error_context_stack = errcb.previous;
	MemoryContextDelete(B.cxt);
	MemoryContextDelete(rowcxt);
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}
