/*
 * spi_util.c: saved SPI plans, result getters and numeric helpers.
 *
 * Every query the core runs is a static LyQuery: prepared once per backend,
 * kept with SPI_keepplan, executed with bound parameters.
 */
#include "loyalty.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/int.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/inval.h"
#include "utils/regproc.h"
#include "catalog/namespace.h"

uint64
ly_run(LyQuery *q, Datum *values, const char *nulls, long count)
{
	int			rc;

	if (ly_batch_active)
		ly_batch_before_query();	/* earn_batch: the query sees what the member wrote */

	/*
	 * Results live until SPI_finish; free the previous one so that a long
	 * call (maintenance over many members) does not grow. Callers copy what
	 * they keep before running the next query.
	 */
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
	if (q->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(q->sql, q->nargs, q->argtypes);

		if (plan == NULL)
			elog(ERROR, "loyalty: SPI_prepare failed (%s) for: %s",
				 SPI_result_code_string(SPI_result), q->sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "loyalty: SPI_keepplan failed");
		q->plan = plan;
	}
	rc = SPI_execute_plan(q->plan, values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "loyalty: SPI_execute_plan failed (%s) for: %s",
			 SPI_result_code_string(rc), q->sql);
	return SPI_processed;
}

/*
 * A wide row read column by column (lock_member reads 28) costs one
 * heap_getattr walk per column once the row has a null; it is deformed once
 * instead, into arrays that live in the result's own memory. The callback
 * forgets them when that memory goes (SPI_freetuptable, SPI_finish), so a
 * later result at the same address is never mistaken for this one.
 */
#define LY_DEFORM_MIN 8			/* narrower rows: SPI_getbinval as is */
static struct
{
	SPITupleTable *table;		/* NULL: nothing deformed */
	HeapTuple	tuple;
	Datum	   *values;
	bool	   *nulls;
}			deformed;

static void
deformed_forget(void *arg)
{
	(void) arg;
	deformed.table = NULL;
}

Datum
ly_get(uint64 row, int col, bool *isnull)
{
	SPITupleTable *t = SPI_tuptable;
	HeapTuple	tuple = t->vals[row];
	int			natts = t->tupdesc->natts;

	if (natts < LY_DEFORM_MIN || col < 1 || col > natts)
		return SPI_getbinval(tuple, t->tupdesc, col, isnull);
	if (deformed.table != t)
	{
		MemoryContextCallback *cb;

		cb = MemoryContextAlloc(t->tuptabcxt, sizeof(MemoryContextCallback));
		cb->func = deformed_forget;
		cb->arg = NULL;
		MemoryContextRegisterResetCallback(t->tuptabcxt, cb);
		deformed.values = MemoryContextAlloc(t->tuptabcxt, sizeof(Datum) * natts);
		deformed.nulls = MemoryContextAlloc(t->tuptabcxt, sizeof(bool) * natts);
		deformed.table = t;
		deformed.tuple = NULL;
	}
	if (deformed.tuple != tuple)
	{
		heap_deform_tuple(tuple, t->tupdesc, deformed.values, deformed.nulls);
		deformed.tuple = tuple;
	}
	*isnull = deformed.nulls[col - 1];
	return deformed.values[col - 1];
}

int64
ly_get_int64(uint64 row, int col)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

bool
ly_get_int64_null(uint64 row, int col, int64 *out)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);

	*out = isnull ? 0 : DatumGetInt64(d);
	return !isnull;
}

char *
ly_get_text(uint64 row, int col)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

Numeric
ly_get_numeric(uint64 row, int col)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);

	return isnull ? NULL : DatumGetNumericCopy(d);
}

Datum
ly_int8_array(int64 *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Sequences by name, resolved once per backend: nextval(text) parses and looks
 * the name up on every call, a measurable part of an earn. A relcache
 * invalidation (the extension dropped and created again) forgets them.
 */
#define LY_SEQS 4
static struct
{
	const char *name;
	Oid			relid;
}			seqs[LY_SEQS];
static bool seq_callback = false;

static void
seq_forget(Datum arg, Oid relid)
{
	int			i;

	(void) arg;
	for (i = 0; i < LY_SEQS; i++)
		if (relid == InvalidOid || seqs[i].relid == relid)
			seqs[i].relid = InvalidOid;
}

int64
ly_nextval(const char *seqname)
{
	int			i;
	int			slot = -1;

	for (i = 0; i < LY_SEQS; i++)
	{
		if (seqs[i].name != NULL && strcmp(seqs[i].name, seqname) == 0)
		{
			if (OidIsValid(seqs[i].relid))
				return nextval_internal(seqs[i].relid, true);
			slot = i;
			break;
		}
		if (seqs[i].name == NULL && slot < 0)
			slot = i;
	}
	if (slot < 0)
		return DatumGetInt64(DirectFunctionCall1(nextval, CStringGetTextDatum(seqname)));
	if (!seq_callback)
	{
		CacheRegisterRelcacheCallback(seq_forget, (Datum) 0);
		seq_callback = true;
	}
	seqs[slot].relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(seqname)),
										NoLock, false);
	seqs[slot].name = seqname;	/* callers pass string literals */
	return nextval_internal(seqs[slot].relid, true);
}

Numeric
ly_int64_numeric(int64 v)
{
	return int64_to_numeric(v);
}

/* Points are money: an overflow is a business error, never a wrap-around. */
int64
ly_add_points(int64 a, int64 b)
{
	int64		r;

	if (pg_add_s64_overflow(a, b, &r))
		ereport(ERROR,
				(errcode(LY_INVALID_POINTS),
				 errmsg("points out of range"),
				 errdetail("The result of %lld + %lld does not fit in a bigint.",
						   (long long) a, (long long) b)));
	return r;
}

Numeric
ly_num_add(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(a), NumericGetDatum(b)));
}

Numeric
ly_num_sub(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_sub, NumericGetDatum(a), NumericGetDatum(b)));
}

Numeric
ly_num_mul(Numeric a, Numeric b)
{
	return DatumGetNumeric(DirectFunctionCall2(numeric_mul, NumericGetDatum(a), NumericGetDatum(b)));
}

int
ly_num_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a), NumericGetDatum(b)));
}

Numeric
ly_num_zero(void)
{
	return int64_to_numeric(0);
}

/*
 * num / den (both >= 0, den > 0) rounded to an integer by the program's rule,
 * computed exactly: integer division and remainder, no decimal approximation.
 */
Numeric
ly_div_rounded(Numeric num, Numeric den, Rounding r)
{
	Numeric		q;
	Numeric		rem;
	Numeric		two = int64_to_numeric(2);

	q = DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(num), NumericGetDatum(den)));
	rem = DatumGetNumeric(DirectFunctionCall2(numeric_mod, NumericGetDatum(num), NumericGetDatum(den)));
	if (r == ROUND_FLOOR || ly_num_cmp(rem, ly_num_zero()) == 0)
		return q;
	if (r == ROUND_CEIL)
		return ly_num_add(q, int64_to_numeric(1));
	/* half up: round away from zero when 2 * rem >= den */
	if (ly_num_cmp(ly_num_mul(rem, two), den) >= 0)
		return ly_num_add(q, int64_to_numeric(1));
	return q;
}

/* Convert an integral numeric to points, with a business error on overflow. */
int64
ly_numeric_points(Numeric n, const char *what)
{
	if (ly_num_cmp(n, int64_to_numeric(PG_INT64_MAX)) > 0 ||
		ly_num_cmp(n, int64_to_numeric(PG_INT64_MIN + 1)) < 0)
		ereport(ERROR,
				(errcode(LY_INVALID_POINTS),
				 errmsg("%s is out of range for points", what),
				 errdetail("The computed value %s does not fit in a bigint.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))))));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
}

Jsonb *
ly_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}
