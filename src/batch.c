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
 * Set-based where it counts: while a member's rows run, its entries, lots and
 * member row are buffered (see loyalty.h for the contract) and written with one
 * multi-row INSERT per table and one UPDATE of all buffered members per flush;
 * its lock is served from the buffered row, and its idempotency keys are looked
 * up once per run of rows rather than once per row. A query issued on behalf of
 * the member (a sweep reading its lots, a replay, a rule) first writes what is
 * buffered, so earn always reads what it wrote.
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
#include "utils/array.h"
#include "utils/datum.h"
#include "common/string.h"
#include "access/xact.h"

/* operations.c; called directly so the batch shares earn's code path */
extern PGDLLEXPORT Datum loyalty_earn(PG_FUNCTION_ARGS);

#define BATCH_FETCH 1000
#define BATCH_FLUSH 2000		/* buffered entries (or members) that trigger a flush */

/* ---- write-behind buffers ---- */

typedef struct Buf
{
	LyQuery    *q;				/* INSERT/UPDATE ... FROM unnest($1, ..., $ncols) */
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
} B;

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

/* Write everything buffered. */
static void
batch_flush(void)
{
	if (B.flushing)
		return;
	B.flushing = true;
	if (B.save_pending)
	{
		buf_add(&B.members, B.save_v, B.save_n);
		B.save_pending = false;
	}
	buf_write(&B.entries);
	buf_write(&B.lots);
	buf_write(&B.members);
	MemoryContextReset(B.bufcxt);
	B.dirty = false;
	B.flushing = false;
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
	if (B.dirty && !B.flushing)
		batch_flush();
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
		return NULL;
	}
	if (!B.saved)
		return NULL;
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

		B.looked_up = true;
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
	resetcb = MemoryContextAlloc(B.cxt, sizeof(MemoryContextCallback));
	resetcb->func = batch_reset;
	resetcb->arg = NULL;
	MemoryContextRegisterResetCallback(B.cxt, resetcb);
	buf_init(&B.entries, &q_flush_entries);
	buf_init(&B.lots, &q_flush_lots);
	buf_init(&B.members, &ly_q_save_members);
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
			for (c = 1; c <= 7; c++)
				out[c + 1] = GetAttributeByNum(rec, c, &outnull[c + 1]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		/* the chunk's rows are done with: free them, then write what is buffered */
		if (SPI_tuptable == tt)
			SPI_tuptable = NULL;
		SPI_freetuptable(tt);
		if (B.entries.n + B.lots.n + B.members.n >= BATCH_FLUSH)
			batch_flush();
	}
	cur.n = 0;					/* errors from here on are the batch's, not a row's */
	batch_member(PG_INT64_MIN, false, (Datum) 0);
	batch_flush();
	ly_batch_active = false;
	error_context_stack = errcb.previous;
	MemoryContextDelete(B.cxt);
	MemoryContextDelete(rowcxt);
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}
