/*
 * loyalty.c: module entry point and the argument checks every SQL-callable
 * function shares, so that bad input gets the same SQLSTATE everywhere.
 *
 * The functions are declared non-STRICT on purpose: a NULL where a value is
 * required is an error (LY034), not a silent NULL result.
 */
#include "loyalty.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* Everything a program needs lives in its row; the one setting is the audit reason. */
	ly_tenancy_init();
	/* the maintenance worker's settings (and the worker, when preloaded) */
	ly_bgworker_init();
	/* the switch of run_maintenance's set-based expiry pass */
	ly_expiry_batch_init();
	/* loyalty.set_based_tier_review (tier_review.c) */
	ly_tier_review_init();
}

static void
null_error(const char *name)
{
	ereport(ERROR,
			(errcode(LY_NULL_VALUE),
			 errmsg("%s must not be null", name)));
}

int64
ly_arg_id(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		null_error(name);
	return PG_GETARG_INT64(n);
}

int64
ly_arg_points(FunctionCallInfo fcinfo, int n, const char *name, bool allow_negative)
{
	int64		v;

	if (PG_ARGISNULL(n))
		null_error(name);
	v = PG_GETARG_INT64(n);
	if (v == 0 || (!allow_negative && v < 0) || v == PG_INT64_MIN)
		ereport(ERROR,
				(errcode(LY_INVALID_POINTS),
				 errmsg("%s must be %s", name, allow_negative ? "non-zero" : "positive"),
				 errdetail("The value given was %lld.", (long long) v)));
	return v;
}

Numeric
ly_arg_amount(FunctionCallInfo fcinfo, int n, const char *name, bool allow_null)
{
	Numeric		v;

	if (PG_ARGISNULL(n))
	{
		if (allow_null)
			return NULL;
		null_error(name);
	}
	v = PG_GETARG_NUMERIC(n);
	if (numeric_is_nan(v) || numeric_is_inf(v) || ly_num_cmp(v, ly_num_zero()) <= 0)
		ereport(ERROR,
				(errcode(LY_INVALID_AMOUNT),
				 errmsg("%s must be a positive finite number", name),
				 errdetail("The value given was %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v))))));
	return v;
}

char *
ly_arg_key(FunctionCallInfo fcinfo, int n)
{
	char	   *k;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(LY_KEY_REQUIRED),
				 errmsg("idempotency_key must not be null"),
				 errhint("Pass a key that identifies this operation, such as the POS transaction id.")));
	k = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (k[0] == '\0' || strlen(k) > LY_MAX_KEY)
		ereport(ERROR,
				(errcode(LY_KEY_REQUIRED),
				 errmsg("idempotency_key must be 1 to %d bytes long", LY_MAX_KEY),
				 errhint("Pass a key that identifies this operation, such as the POS transaction id.")));
	return k;
}

char *
ly_arg_name(FunctionCallInfo fcinfo, int n, const char *name)
{
	char	   *s;

	if (PG_ARGISNULL(n))
		null_error(name);
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (s[0] == '\0' || strlen(s) > LY_MAX_NAME)
		ereport(ERROR,
				(errcode(LY_INVALID_NAME),
				 errmsg("%s must be 1 to %d bytes long", name, LY_MAX_NAME)));
	return s;
}

char *
ly_arg_reason(FunctionCallInfo fcinfo, int n, bool required)
{
	char	   *s = PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));

	if (required && (s == NULL || s[strspn(s, " \t\r\n")] == '\0'))
		ereport(ERROR,
				(errcode(LY_REASON_REQUIRED),
				 errmsg("a reason is required"),
				 errhint("Say why, for the member and for audit.")));
	return s;
}

void
ly_check_at(TimestampTz at)
{
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(LY_INVALID_TIMESTAMP),
				 errmsg("business time must be finite"),
				 errdetail("The value given was %s.", TIMESTAMP_IS_NOBEGIN(at) ? "-infinity" : "infinity")));
}

TimestampTz
ly_arg_at(FunctionCallInfo fcinfo, int n)
{
	TimestampTz at;

	if (PG_ARGISNULL(n))
		null_error("at");
	at = PG_GETARG_TIMESTAMPTZ(n);
	ly_check_at(at);
	return at;
}

Jsonb *
ly_arg_object(FunctionCallInfo fcinfo, int n, const char *name, bool null_is_empty)
{
	Jsonb	   *j;

	if (PG_ARGISNULL(n))
	{
		if (null_is_empty)
			return ly_jsonb("{}");
		null_error(name);
	}
	j = PG_GETARG_JSONB_P(n);
	if (!JB_ROOT_IS_OBJECT(j))
		ereport(ERROR,
				(errcode(LY_INVALID_JSON),
				 errmsg("%s must be a JSON object", name)));
	return j;
}
