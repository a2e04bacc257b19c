/*
 * settings.c: parse and validate a program's settings object.
 *
 * Unknown keys are errors, not ignored: a typo such as "pending_day" would
 * otherwise silently run a program without its pending period.
 */
#include "loyalty.h"

#include "utils/builtins.h"

const char *const ly_rounding_names[] = {"floor", "round", "ceil"};
const char *const ly_expiry_names[] = {"none", "rolling", "end_of_period", "inactivity"};
const char *const ly_period_names[] = {NULL, "month", "quarter", "year"};
const char *const ly_negative_names[] = {"deny", "allow", "clamp"};
const char *const ly_basis_names[] = {"points", "spend", "visits"};
const char *const ly_window_names[] = {"lifetime", "calendar_year", "rolling"};
const char *const ly_downgrade_names[] = {"never", "period_end", "one_step"};

#define NAMES(a) (a), lengthof(a)

const char *ly_rounding_name(Rounding r) { return ly_rounding_names[r]; }
const char *ly_expiry_name(ExpiryPolicy p) { return ly_expiry_names[p]; }
const char *ly_period_name(Period p) { return ly_period_names[p]; }
const char *ly_negative_name(NegativePolicy p) { return ly_negative_names[p]; }
const char *ly_basis_name(TierBasis b) { return ly_basis_names[b]; }
const char *ly_window_name(TierWindow w) { return ly_window_names[w]; }
const char *ly_downgrade_name(Downgrade d) { return ly_downgrade_names[d]; }

int
ly_enum_value(const char *name, const char *const *names, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* The names of an enum as "a, b, c", for an error's detail. */
char *
ly_enum_names(const char *const *names, int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		if (names[i])
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", names[i]);
	return buf.data;
}

static void
bad_setting(const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(LY_INVALID_SETTING),
			 errmsg("invalid value for setting \"%s\"", key),
			 errdetail("%s", detail)));
}

static char *
want_string(const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		bad_setting(key, "The value must be a JSON string.");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static int
want_enum(const char *key, JsonbValue *v, const char *const *names, int n)
{
	char	   *s = want_string(key, v);
	int			r = ly_enum_value(s, names, n);

	if (r < 0)
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("invalid value for setting \"%s\"", key),
				 errdetail("\"%s\" is not one of: %s.", s, ly_enum_names(names, n))));
	return r;
}

/* A JSON integer in [lo, hi]; 12.0 is accepted as 12, 12.5 is not. */
static int
want_int(const char *key, JsonbValue *v, int lo, int hi)
{
	Numeric		n;
	Numeric		t;

	if (v->type != jbvNumeric)
		bad_setting(key, "The value must be a JSON number.");
	n = v->val.numeric;
	t = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(n), Int32GetDatum(0)));
	if (ly_num_cmp(n, t) != 0 ||
		ly_num_cmp(n, int64_to_numeric(lo)) < 0 ||
		ly_num_cmp(n, int64_to_numeric(hi)) > 0)
	{
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("invalid value for setting \"%s\"", key),
				 errdetail("The value must be a whole number between %d and %d.", lo, hi)));
	}
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(n)));
}

typedef void (*KeyFn) (const char *key, JsonbValue *v, void *arg);

/* Call fn for each key of a JSON object; nested containers arrive as jbvBinary. */
static void
each_key(JsonbContainer *c, const char *what, KeyFn fn, void *arg)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JsonContainerIsObject(c))
		bad_setting(what, "The value must be a JSON object.");
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
			fn(key, &v, arg);
		}
	}
}

static bool
is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

typedef struct ExpiryParse
{
	Settings   *s;
	bool		has_policy;
	bool		has_months;
	bool		has_period;
} ExpiryParse;

static void
expiry_key(const char *key, JsonbValue *v, void *arg)
{
	ExpiryParse *e = arg;

	if (strcmp(key, "policy") == 0)
	{
		e->s->expiry_policy = want_enum("expiry.policy", v, NAMES(ly_expiry_names));
		e->has_policy = true;
	}
	else if (strcmp(key, "months") == 0)
	{
		e->s->expiry_months = want_int("expiry.months", v, 0, 1200);
		e->has_months = true;
	}
	else if (strcmp(key, "period") == 0)
	{
		e->s->expiry_period = want_enum("expiry.period", v, NAMES(ly_period_names));
		e->has_period = true;
	}
	else
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("unknown key \"%s\" in setting \"expiry\"", key),
				 errhint("The keys of expiry are policy, months and period.")));
}

static void
parse_expiry(JsonbValue *v, Settings *s)
{
	ExpiryParse e = {s, false, false, false};

	if (!is_object(v))
		bad_setting("expiry", "The value must be a JSON object such as {\"policy\": \"rolling\", \"months\": 12}.");
	each_key(v->val.binary.data, "expiry", expiry_key, &e);
	if (!e.has_policy)
		bad_setting("expiry", "The key \"policy\" is required.");
	switch (s->expiry_policy)
	{
		case EXPIRY_NONE:
			if (e.has_months || e.has_period)
				bad_setting("expiry", "Policy \"none\" takes no other keys.");
			s->expiry_months = 0;
			break;
		case EXPIRY_ROLLING:
		case EXPIRY_INACTIVITY:
			if (!e.has_months || s->expiry_months < 1)
				bad_setting("expiry", "This policy needs \"months\" of at least 1.");
			if (e.has_period)
				bad_setting("expiry", "Only policy \"end_of_period\" takes \"period\".");
			break;
		case EXPIRY_END_OF_PERIOD:
			if (!e.has_months)
				bad_setting("expiry", "Policy \"end_of_period\" needs \"months\" (0 or more).");
			if (!e.has_period)
				bad_setting("expiry", "Policy \"end_of_period\" needs \"period\": month, quarter or year.");
			break;
	}
}

static void
window_key(const char *key, JsonbValue *v, void *arg)
{
	Settings   *s = arg;

	if (strcmp(key, "rolling_months") != 0)
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("unknown key \"%s\" in setting \"tier_window\"", key),
				 errhint("Use \"lifetime\", \"calendar_year\" or {\"rolling_months\": N}.")));
	s->tier_window = WINDOW_ROLLING;
	s->tier_window_months = want_int("tier_window.rolling_months", v, 1, 1200);
}

static void
parse_window(JsonbValue *v, Settings *s)
{
	if (v->type == jbvString)
	{
		char	   *w = want_string("tier_window", v);

		if (strcmp(w, "lifetime") == 0)
			s->tier_window = WINDOW_LIFETIME;
		else if (strcmp(w, "calendar_year") == 0)
			s->tier_window = WINDOW_CALENDAR_YEAR;
		else
			bad_setting("tier_window", "Use \"lifetime\", \"calendar_year\" or {\"rolling_months\": N}.");
		s->tier_window_months = 0;
		return;
	}
	if (!is_object(v))
		bad_setting("tier_window", "Use \"lifetime\", \"calendar_year\" or {\"rolling_months\": N}.");
	s->tier_window = WINDOW_LIFETIME;
	each_key(v->val.binary.data, "tier_window", window_key, s);
	if (s->tier_window != WINDOW_ROLLING)
		bad_setting("tier_window", "The object form needs \"rolling_months\".");
}

static void
settings_key(const char *key, JsonbValue *v, void *arg)
{
	Settings   *s = arg;

	if (strcmp(key, "points_per_unit") == 0)
	{
		if (v->type != jbvNumeric || ly_num_cmp(v->val.numeric, ly_num_zero()) <= 0)
			bad_setting(key, "The value must be a number greater than 0.");
		s->points_per_unit = v->val.numeric;
	}
	else if (strcmp(key, "rounding") == 0)
		s->rounding = want_enum(key, v, NAMES(ly_rounding_names));
	else if (strcmp(key, "timezone") == 0)
	{
		s->timezone = want_string(key, v);
		(void) ly_timezone(s->timezone);
	}
	else if (strcmp(key, "pending_days") == 0)
		s->pending_days = want_int(key, v, 0, 3650);
	else if (strcmp(key, "expiry") == 0)
		parse_expiry(v, s);
	else if (strcmp(key, "negative_balance") == 0)
		s->negative_balance = want_enum(key, v, NAMES(ly_negative_names));
	else if (strcmp(key, "tier_basis") == 0)
		s->tier_basis = want_enum(key, v, NAMES(ly_basis_names));
	else if (strcmp(key, "tier_window") == 0)
		parse_window(v, s);
	else if (strcmp(key, "downgrade") == 0)
		s->downgrade = want_enum(key, v, NAMES(ly_downgrade_names));
	else if (strcmp(key, "grace_days") == 0)
		s->grace_days = want_int(key, v, 0, 3650);
	else if (strcmp(key, "cost_per_point") == 0)
	{
		if (v->type != jbvNumeric || ly_num_cmp(v->val.numeric, ly_num_zero()) < 0)
			bad_setting(key, "The value must be a number of 0 or more.");
		s->cost_per_point = v->val.numeric;
	}
	else if (strcmp(key, "voucher_refund_expiry") == 0)
	{
		static const char *const names[] = {"original", "fresh"};

		s->refund_fresh_expiry = want_enum(key, v, names, 2) == 1;
	}
	else if (strcmp(key, "tier_retention_periods") == 0)
		s->tier_retention_periods = want_int(key, v, 0, 10);
	else
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("unknown setting \"%s\"", key),
				 errhint("Known settings: points_per_unit, rounding, timezone, pending_days, expiry, "
						 "negative_balance, tier_basis, tier_window, downgrade, grace_days, tier_retention_periods, cost_per_point, voucher_refund_expiry.")));
}

void
ly_parse_settings(Jsonb *settings, Settings *s)
{
	/* the contract's defaults */
	s->points_per_unit = int64_to_numeric(1);
	s->rounding = ROUND_FLOOR;
	s->timezone = "UTC";
	s->pending_days = 0;
	s->expiry_policy = EXPIRY_NONE;
	s->expiry_months = 0;
	s->expiry_period = PERIOD_NONE;
	s->negative_balance = NEG_ALLOW;
	s->tier_basis = BASIS_POINTS;
	s->tier_window = WINDOW_ROLLING;
	s->tier_window_months = 12;
	s->downgrade = DOWNGRADE_PERIOD_END;
	s->grace_days = 0;
	s->tier_retention_periods = 0;
	s->cost_per_point = int64_to_numeric(0);
	s->refund_fresh_expiry = false;

	if (!JB_ROOT_IS_OBJECT(settings))
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("settings must be a JSON object")));
	each_key(&settings->root, "settings", settings_key, s);
}
