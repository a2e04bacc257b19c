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
 * The batch is one transaction: a bad row fails the whole batch, with the row
 * number, member and key in the error's context and the row's own SQLSTATE;
 * nothing is written.
 */
#include "loyalty.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/tuplestore.h"
#include "access/xact.h"

/* operations.c; called directly so the batch shares earn's code path */
extern PGDLLEXPORT Datum loyalty_earn(PG_FUNCTION_ARGS);

#define BATCH_FETCH 1000

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
	errcb.callback = batch_context;
	errcb.arg = &cur;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (;;)
	{
		SPITupleTable *tt;
		uint64		nrows;
		uint64		i;

		SPI_cursor_fetch(portal, true, BATCH_FETCH);
		tt = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		for (i = 0; i < nrows; i++)
		{
			LOCAL_FCINFO(ec, 5);
			HeapTuple	row = tt->vals[i];
			TupleDesc	td = tt->tupdesc;
			bool		isnull;
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
			{
				ec->args[c].value = SPI_getbinval(row, td, c + 1, &ec->args[c].isnull);
			}
			cur.has_member = !ec->args[0].isnull;
			cur.member = cur.has_member ? DatumGetInt64(ec->args[0].value) : 0;
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
			(void) isnull;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(tt);
	}
	error_context_stack = errcb.previous;
	MemoryContextDelete(rowcxt);
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}
