/*
 * pgstub/postgres.h: a stand-in for the few PostgreSQL backend APIs that the
 * extension's pure parsing code uses (src/settings.c; later src/rules.c), so
 * that code can be compiled unchanged into a libFuzzer harness without linking
 * a backend. The real src/loyalty.h includes this file (and its empty
 * siblings) when test/fuzz/pgstub is first on the include path.
 *
 * What it models, and how faithfully:
 *  - ereport(ERROR, ...) records the SQLSTATE and message, then longjmps back
 *    to the harness (pgstub_try); memory comes from an arena freed per input.
 *  - Jsonb is a tree, not the on-disk format, behind the same iterator API
 *    (JsonbIteratorInit/Next with skipNested, jbvBinary for nested containers);
 *    like jsonb, object keys are de-duplicated (last wins) and sorted by
 *    (length, bytes).
 *  - Numeric is an exact decimal (sign, digits, exponent, NaN, +-Infinity).
 * Anything the parsers call that is not here fails to link: add it here.
 */
#ifndef PGSTUB_POSTGRES_H
#define PGSTUB_POSTGRES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int8_t int8;
typedef int16_t int16;
typedef int32_t int32;
typedef int64_t int64;
typedef uint8_t uint8;
typedef uint32_t uint32;
typedef uint64_t uint64;
typedef unsigned int Oid;
typedef uintptr_t Datum;
typedef int64 TimestampTz;
typedef struct pg_tz pg_tz;
typedef struct _SPI_plan *SPIPlanPtr;
typedef struct FunctionCallInfoBaseData *FunctionCallInfo;
typedef struct MemoryContextData *MemoryContext;

#define pg_attribute_noreturn() __attribute__((noreturn))
#define pg_attribute_printf(f, a) __attribute__((format(printf, f, a)))
#define lengthof(array) (sizeof(array) / sizeof(((array)[0])))
#define Assert(c) do { if (!(c)) abort(); } while (0)
#define INT64CONST(x) (x##LL)
#define PG_INT64_MAX INT64_MAX

/* ---- errors ---- */
#define PGSIXBIT(ch) (((ch) - '0') & 0x3F)
#define MAKE_SQLSTATE(ch1, ch2, ch3, ch4, ch5) \
	(PGSIXBIT(ch1) + (PGSIXBIT(ch2) << 6) + (PGSIXBIT(ch3) << 12) + \
	 (PGSIXBIT(ch4) << 18) + (PGSIXBIT(ch5) << 24))
#define ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE MAKE_SQLSTATE('2','2','0','0','3')
#define ERRCODE_DATETIME_VALUE_OUT_OF_RANGE MAKE_SQLSTATE('2','2','0','0','8')
#define ERRCODE_INVALID_DATETIME_FORMAT MAKE_SQLSTATE('2','2','0','0','7')
#define ERRCODE_INTERNAL_ERROR MAKE_SQLSTATE('X','X','0','0','0')
#define ERROR 21

extern void pgstub_errstart(int elevel);
extern void pgstub_errfinish(void) pg_attribute_noreturn();
extern int	errcode(int sqlerrcode);
extern int	errmsg(const char *fmt, ...) pg_attribute_printf(1, 2);
extern int	errdetail(const char *fmt, ...) pg_attribute_printf(1, 2);
extern int	errhint(const char *fmt, ...) pg_attribute_printf(1, 2);
#define ereport(elevel, ...) \
	do { pgstub_errstart(elevel); (void) (__VA_ARGS__); pgstub_errfinish(); } while (0)
#define elog(elevel, ...) \
	do { pgstub_errstart(elevel); (void) errmsg(__VA_ARGS__); pgstub_errfinish(); } while (0)

/* the last error raised: SQLSTATE (0 if none) and message */
extern int	pgstub_sqlstate;
extern char pgstub_message[512];
/* run fn(arg) and return true, or false with pgstub_sqlstate set if it raised an ERROR */
extern bool pgstub_try(void (*fn) (void *), void *arg);
extern void pgstub_sqlstate_text(int code, char out[6]);

/* PG_TRY/PG_CATCH: the same nesting as the backend's, on the stub's jmp_buf chain */
extern jmp_buf *pgstub_error_target;
#define PG_TRY() \
	do { jmp_buf *pgstub_saved = pgstub_error_target; jmp_buf pgstub_here; \
		if (setjmp(pgstub_here) == 0) { pgstub_error_target = &pgstub_here;
#define PG_CATCH() \
		} else { pgstub_error_target = pgstub_saved;
#define PG_END_TRY() \
		} pgstub_error_target = pgstub_saved; } while (0)
extern void FlushErrorState(void);
/* one arena, no contexts: switching is a no-op */
#define CurrentMemoryContext ((MemoryContext) NULL)
#define MemoryContextSwitchTo(c) ((void) (c), (MemoryContext) NULL)

/* ---- memory: an arena freed by pgstub_reset() between inputs ---- */
extern void *palloc(size_t size);
extern void *palloc0(size_t size);
extern char *pstrdup(const char *s);
extern char *pnstrdup(const char *s, size_t len);
extern void pfree(void *p);
extern void pgstub_reset(void);
extern char *psprintf(const char *fmt, ...) pg_attribute_printf(1, 2);

/* ---- StringInfo ---- */
typedef struct StringInfoData
{
	char	   *data;
	int			len;
	int			maxlen;
	int			cursor;
} StringInfoData;
typedef StringInfoData *StringInfo;
extern void initStringInfo(StringInfo str);
extern void appendStringInfo(StringInfo str, const char *fmt, ...) pg_attribute_printf(2, 3);
extern void appendStringInfoString(StringInfo str, const char *s);

/* ---- Datum and function calls ---- */
#define Int32GetDatum(x) ((Datum) (uint32) (x))
#define DatumGetInt32(x) ((int32) (x))
#define Int64GetDatum(x) ((Datum) (x))
#define DatumGetInt64(x) ((int64) (x))
#define PointerGetDatum(x) ((Datum) (x))
#define DatumGetPointer(x) ((void *) (x))
/* builtins are called directly: DirectFunctionCallN(f, ...) -> pgstub_f(...) */
#define DirectFunctionCall1(f, a) pgstub_##f(a)
#define DirectFunctionCall2(f, a, b) pgstub_##f(a, b)
#define DirectFunctionCall3(f, a, b, c) pgstub_##f(a, b, c)
#define CStringGetDatum(x) ((Datum) (x))
#define DatumGetCString(x) ((char *) (x))
#define ObjectIdGetDatum(x) ((Datum) (x))
#define InvalidOid ((Oid) 0)

/* ---- timestamps: microseconds since 2000-01-01 00:00 UTC ---- */
#define DT_NOBEGIN INT64_MIN
#define DT_NOEND INT64_MAX
#define TIMESTAMP_NOT_FINITE(t) ((t) == DT_NOBEGIN || (t) == DT_NOEND)
#define DatumGetTimestampTz(x) ((TimestampTz) (x))
/*
 * timestamptz_in for ISO 8601 only: "YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][Z|+-HH[:MM]]"
 * and +-infinity (a zone-less time is UTC); anything else raises 22007 as the
 * backend's input would for garbage (the backend also takes words and other orders).
 */
extern Datum pgstub_timestamptz_in(Datum str, Datum typioparam, Datum typmod);

/* ---- Numeric: an exact decimal ---- */
typedef struct NumericData
{
	char		kind;			/* 'f' finite, 'n' NaN, 'p' +Infinity, 'm' -Infinity */
	bool		neg;
	int			ndigits;
	const char *digits;			/* no leading or trailing zeros; zero has none */
	int			exp;			/* value = digits * 10^exp */
} NumericData;
typedef NumericData *Numeric;
#define NumericGetDatum(x) ((Datum) (x))
#define DatumGetNumeric(x) ((Numeric) (x))
extern Numeric pgstub_numeric(bool neg, const char *digits, int ndigits, int exp);
extern Numeric int64_to_numeric(int64 v);
extern bool numeric_is_nan(Numeric n);
extern bool numeric_is_inf(Numeric n);
extern int	pgstub_numeric_cmp(Numeric a, Numeric b);
extern char *pgstub_numeric_text(Numeric n);
extern Datum pgstub_numeric_trunc(Datum num, Datum scale);
extern Datum pgstub_numeric_int4(Datum num);
extern Datum pgstub_numeric_int8(Datum num);
/* the arena lives until the next input: a copy can share */
#define DatumGetNumericCopy(x) ((Numeric) (x))

/* ---- Jsonb: a tree behind the iterator API ---- */
enum jbvType
{
	jbvNull = 0x0,
	jbvString,
	jbvNumeric,
	jbvBool,
	jbvArray = 0x10,
	jbvObject,
	jbvBinary
};
typedef struct JsonbContainer JsonbContainer;
typedef struct JsonbValue
{
	enum jbvType type;
	union
	{
		Numeric		numeric;
		bool		boolean;
		struct
		{
			int			len;
			char	   *val;
		}			string;
		struct
		{
			int			len;
			JsonbContainer *data;
		}			binary;
	}			val;
} JsonbValue;
struct JsonbContainer
{
	bool		is_object;
	bool		is_array;
	bool		is_scalar;		/* a raw scalar root: a one-element array, as in jsonb */
	int			n;				/* pairs (object) or elements (array) */
	JsonbValue *keys;			/* objects: sorted by (length, bytes), unique */
	JsonbValue *vals;
};
typedef struct Jsonb
{
	int32		vl_len_;
	JsonbContainer root;
} Jsonb;
#define JsonContainerIsObject(jc) ((jc)->is_object)
#define JsonContainerIsArray(jc) ((jc)->is_array)
#define JsonContainerIsScalar(jc) ((jc)->is_scalar)
#define JsonContainerSize(jc) ((jc)->n)
#define JB_ROOT_IS_OBJECT(jb) ((jb)->root.is_object)
#define JB_ROOT_IS_ARRAY(jb) ((jb)->root.is_array)
#define JB_ROOT_IS_SCALAR(jb) ((jb)->root.is_scalar)
#define JB_ROOT_COUNT(jb) ((jb)->root.n)

typedef enum
{
	WJB_DONE,
	WJB_KEY,
	WJB_VALUE,
	WJB_ELEM,
	WJB_BEGIN_ARRAY,
	WJB_END_ARRAY,
	WJB_BEGIN_OBJECT,
	WJB_END_OBJECT
} JsonbIteratorToken;
typedef struct JsonbIterator
{
	JsonbContainer *c;
	int			pos;			/* -1 before BEGIN, n after the last pair/element */
	bool		in_value;		/* objects: the key at pos was returned, its value is next */
	bool		done;
} JsonbIterator;
extern JsonbIterator *JsonbIteratorInit(JsonbContainer *container);
extern JsonbIteratorToken JsonbIteratorNext(JsonbIterator **it, JsonbValue *val, bool skipNested);
#define JB_FSCALAR 0x10000000
#define JB_FOBJECT 0x20000000
#define JB_FARRAY 0x40000000
extern JsonbValue *findJsonbValueFromContainer(JsonbContainer *container, uint32 flags,
												JsonbValue *key);
extern JsonbValue *getIthJsonbValueFromContainer(JsonbContainer *container, uint32 i);
extern JsonbValue *getKeyJsonValueFromContainer(JsonbContainer *container, const char *keyVal,
												 int keyLen, JsonbValue *res);

/*
 * JSON text -> Jsonb, as the jsonb input function would accept it (RFC 8259, no
 * \u0000, valid surrogate pairs, depth at most 1000, exponents within numeric's
 * range). Returns NULL for text jsonb would refuse: such input never reaches the
 * extension's parsers.
 */
extern Jsonb *pgstub_parse_json(const char *text, size_t len);

#endif							/* PGSTUB_POSTGRES_H */
