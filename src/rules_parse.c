/*
 * rules_parse.c: parsing and validation of an earning rule's definition (see
 * rules.c for what the keys mean). Pure: the tier check is the caller's callback,
 * so the fuzz harness test/fuzz/fuzz_rules.c compiles this file unchanged.
 */
#include "rules_parse.h"

#include <ctype.h>

#include "utils/builtins.h"
#include "utils/datetime.h"

/* ------------------------------------------------------------------------
 * parsing and validation
 * ------------------------------------------------------------------------ */

static void
bad_rule(const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(LY_INVALID_RULE),
			 errmsg("invalid rule definition: bad value for \"%s\"", key),
			 errdetail("%s", detail)));
}

static Numeric
want_number(const char *key, JsonbValue *v, Numeric lo, bool lo_open, Numeric hi, bool whole)
{
	Numeric		n;

	if (v->type != jbvNumeric)
		bad_rule(key, "The value must be a JSON number.");
	n = v->val.numeric;
	if (numeric_is_nan(n) || numeric_is_inf(n))
		bad_rule(key, "The value must be finite.");
	if (whole &&
		ly_num_cmp(n, DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(n),
														  Int32GetDatum(0)))) != 0)
		bad_rule(key, "The value must be a whole number.");
	if ((lo_open ? ly_num_cmp(n, lo) <= 0 : ly_num_cmp(n, lo) < 0) || ly_num_cmp(n, hi) > 0)
		ereport(ERROR,
				(errcode(LY_INVALID_RULE),
				 errmsg("invalid rule definition: bad value for \"%s\"", key),
				 errdetail("The value must be %s %s and at most %s.", lo_open ? "above" : "at least",
						   ly_json_num(lo), ly_json_num(hi))));
	return DatumGetNumericCopy(NumericGetDatum(n));
}

static char *
want_text(const char *key, JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len == 0 || v->val.string.len > LY_MAX_NAME)
		bad_rule(key, "The value must be a JSON string of 1 to 512 bytes.");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static int
want_name(const char *key, JsonbValue *v, const char *const *names, int n)
{
	char	   *s = want_text(key, v);
	int			r = ly_enum_value(s, names, n);

	if (r < 0)
		ereport(ERROR,
				(errcode(LY_INVALID_RULE),
				 errmsg("invalid rule definition: bad value for \"%s\"", key),
				 errdetail("\"%s\" is not one of: %s.", s, ly_enum_names(names, n))));
	return r;
}

/* A timestamp written as a JSON string; finite. */
static TimestampTz
want_time(const char *key, JsonbValue *v)
{
	char	   *s = want_text(key, v);
	TimestampTz t = 0;
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	/* timestamptz_in is pure: catching its error leaves nothing behind */
	PG_TRY();
	{
		t = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	if (!ok || TIMESTAMP_NOT_FINITE(t))
		bad_rule(key, "The value must be a finite timestamp such as \"2026-03-01 00:00:00+01\".");
	return t;
}

/* "HH:MM" as minutes of the day; "24:00" allowed as an end. */
static int
want_clock(const char *key, JsonbValue *v)
{
	char	   *s = want_text(key, v);
	int			h,
				m;

	if (strlen(s) != 5 || s[2] != ':' || !isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]) ||
		!isdigit((unsigned char) s[3]) || !isdigit((unsigned char) s[4]))
		bad_rule(key, "The value must be a local time \"HH:MM\".");
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		bad_rule(key, "The value must be a local time between \"00:00\" and \"24:00\".");
	return h * 60 + m;
}

static void
want_scalar(const char *key, JsonbValue *v, MatchValue *out)
{
	out->type = v->type;
	switch (v->type)
	{
		case jbvString:
			out->len = v->val.string.len;
			out->str = pnstrdup(v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			out->num = DatumGetNumericCopy(NumericGetDatum(v->val.numeric));
			break;
		case jbvBool:
			out->b = v->val.boolean;
			break;
		default:
			bad_rule(key, "Each value must be a JSON string, number or boolean (a list: an array of them).");
	}
}

/* Iterate the elements of an array container, bounded. */
static int
array_size(const char *key, JsonbValue *v, int max)
{
	int			n;

	if (!is_container(v, false))
		bad_rule(key, "The value must be a JSON array.");
	n = JsonContainerSize(v->val.binary.data);
	if (n < 1 || n > max)
		ereport(ERROR,
				(errcode(LY_INVALID_RULE),
				 errmsg("invalid rule definition: bad value for \"%s\"", key),
				 errdetail("The array must have 1 to %d elements.", max)));
	return n;
}

static void
parse_match(JsonbValue *mv, Rule *r)
{
	JsonbContainer *c;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			cap;

	if (!is_container(mv, true))
		bad_rule("match", "The value must be a JSON object of attribute: value or [values].");
	c = mv->val.binary.data;
	cap = JsonContainerSize(c);
	if (cap > 64)
		bad_rule("match", "At most 64 attributes.");
	r->match = palloc0(sizeof(Match) * (cap > 0 ? cap : 1));
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Match	   *m;
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		if (v.val.string.len == 0 || v.val.string.len > LY_MAX_NAME || strcmp(key, "lines") == 0)
			bad_rule("match", "Attribute names are 1 to 512 bytes and not \"lines\".");
		m = &r->match[r->nmatch++];
		m->key = key;
		m->keylen = v.val.string.len;
		tok = JsonbIteratorNext(&it, &v, true);
		if (is_container(&v, false))
		{
			char	   *what = psprintf("match.%s", key);
			int			n = array_size(what, &v, MAX_LIST);
			int			i;

			m->n = n;
			m->v = palloc0(sizeof(MatchValue) * n);
			for (i = 0; i < n; i++)
				want_scalar(what, getIthJsonbValueFromContainer(v.val.binary.data, i), &m->v[i]);
		}
		else
		{
			m->n = 1;
			m->v = palloc0(sizeof(MatchValue));
			want_scalar(psprintf("match.%s", key), &v, m->v);
		}
	}
}

static void
parse_hours(JsonbValue *hv, Rule *r)
{
	JsonbValue *f;
	JsonbValue *t;
	JsonbValue	k;

	if (!is_container(hv, true) || JsonContainerSize(hv->val.binary.data) != 2)
		bad_rule("hours", "The value must be {\"from\": \"HH:MM\", \"to\": \"HH:MM\"}.");
	k.type = jbvString;
	k.val.string.val = "from";
	k.val.string.len = 4;
	f = findJsonbValueFromContainer(hv->val.binary.data, JB_FOBJECT, &k);
	k.val.string.val = "to";
	k.val.string.len = 2;
	t = findJsonbValueFromContainer(hv->val.binary.data, JB_FOBJECT, &k);
	if (!f || !t)
		bad_rule("hours", "The value must be {\"from\": \"HH:MM\", \"to\": \"HH:MM\"}.");
	r->from_min = want_clock("hours.from", f);
	r->to_min = want_clock("hours.to", t);
	if (r->from_min == 24 * 60 || r->from_min == r->to_min)
		bad_rule("hours", "\"from\" must be before 24:00 and differ from \"to\" (a range past midnight wraps).");
	r->has_hours = true;
}

static void
parse_cap(JsonbValue *cv, Rule *r)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		has_points = false;

	if (!is_container(cv, true))
		bad_rule("cap", "The value must be {\"period\": \"day\"|\"week\"|\"month\"|\"year\"|\"ever\", \"points\": N}.");
	it = JsonbIteratorInit(cv->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "period") == 0)
			r->cap = want_name("cap.period", &v, cap_names, lengthof(cap_names));
		else if (strcmp(key, "points") == 0)
		{
			r->cap_points = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(
				want_number("cap.points", &v, int64_to_numeric(1), false, int64_to_numeric(INT64CONST(1000000000000)), true))));
			has_points = true;
		}
		else
			ereport(ERROR,
					(errcode(LY_INVALID_RULE),
					 errmsg("invalid rule definition: unknown key \"cap.%s\"", key),
					 errhint("The keys of cap are period and points.")));
	}
	if (r->cap == CAP_NONE || !has_points)
		bad_rule("cap", "Both \"period\" and \"points\" are required.");
}

/*
 * Parse a definition into r. Every key is checked; an unknown one is an error.
 * tier_exists != NULL also checks that named tiers exist (at add_rule).
 */
void
ly_rule_parse(Jsonb *def, Rule *r, LyTierExists tier_exists, void *arg)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		has_kind = false;
	bool		has_per = false;
	Numeric		one = int64_to_numeric(1);

	if (!JB_ROOT_IS_OBJECT(def))
		ereport(ERROR,
				(errcode(LY_INVALID_JSON),
				 errmsg("definition must be a JSON object")));
	it = JsonbIteratorInit(&def->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "kind") == 0)
		{
			r->kind = want_name("kind", &v, kind_names, lengthof(kind_names));
			has_kind = true;
		}
		else if (strcmp(key, "name") == 0)
			r->name = want_text("name", &v);
		else if (strcmp(key, "multiplier") == 0)
			r->factor = want_number("multiplier", &v, one, true, int64_to_numeric(1000), false);
		else if (strcmp(key, "points") == 0)
			r->points = want_number("points", &v, ly_num_zero(), true, int64_to_numeric(1000000000), false);
		else if (strcmp(key, "per") == 0)
		{
			static const char *const per_names[] = {"amount", "qty"};

			r->per_qty = want_name("per", &v, per_names, 2) == 1;
			has_per = true;
		}
		else if (strcmp(key, "match") == 0)
			parse_match(&v, r);
		else if (strcmp(key, "valid_from") == 0)
		{
			r->valid_from = want_time("valid_from", &v);
			r->has_from = true;
		}
		else if (strcmp(key, "valid_to") == 0)
		{
			r->valid_to = want_time("valid_to", &v);
			r->has_to = true;
		}
		else if (strcmp(key, "days") == 0)
		{
			int			n = array_size("days", &v, 7);
			int			i;

			for (i = 0; i < n; i++)
				r->days |= 1 << want_name("days", getIthJsonbValueFromContainer(v.val.binary.data, i),
										  day_names, 7);
		}
		else if (strcmp(key, "hours") == 0)
			parse_hours(&v, r);
		else if (strcmp(key, "min_spend") == 0)
			r->min_spend = want_number("min_spend", &v, ly_num_zero(), false,
									   int64_to_numeric(INT64CONST(1000000000000)), false);
		else if (strcmp(key, "tiers") == 0)
		{
			int			n = array_size("tiers", &v, 64);
			int			i;

			r->ntiers = n;
			r->tiers = palloc(sizeof(char *) * n);
			for (i = 0; i < n; i++)
			{
				r->tiers[i] = want_text("tiers", getIthJsonbValueFromContainer(v.val.binary.data, i));
				if (tier_exists && !tier_exists(r->tiers[i], arg))
					ereport(ERROR,
							(errcode(LY_INVALID_RULE),
							 errmsg("invalid rule definition: bad value for \"tiers\""),
							 errdetail("The program has no tier \"%s\".", r->tiers[i])));
			}
		}
		else if (strcmp(key, "segment_id") == 0)
			r->segment_id = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(
				want_number("segment_id", &v, int64_to_numeric(1), false,
							int64_to_numeric(PG_INT64_MAX), true))));
		else if (strcmp(key, "cap") == 0)
			parse_cap(&v, r);
		else if (strcmp(key, "group") == 0)
			r->group = want_text("group", &v);
		else if (strcmp(key, "priority") == 0)
			r->priority = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(
				want_number("priority", &v, int64_to_numeric(-1000), false, int64_to_numeric(1000), true))));
		else
			ereport(ERROR,
					(errcode(LY_INVALID_RULE),
					 errmsg("invalid rule definition: unknown key \"%s\"", key),
					 errhint("The keys are kind, name, multiplier, points, per, match, valid_from, valid_to, "
							 "days, hours, min_spend, tiers, segment_id, cap, group and priority.")));
	}
	if (!has_kind)
		bad_rule("kind", "The key \"kind\" is required: exclude, multiplier, bonus or per_unit.");
	/* each kind takes exactly its own amount keys */
	if ((r->kind == RK_MULTIPLIER) != (r->factor != NULL))
		bad_rule("multiplier", r->factor ? "Only kind \"multiplier\" takes \"multiplier\"."
				 : "Kind \"multiplier\" needs \"multiplier\" (a number above 1).");
	if ((r->kind == RK_BONUS || r->kind == RK_PER_UNIT) != (r->points != NULL))
		bad_rule("points", r->points ? "Only kinds \"bonus\" and \"per_unit\" take \"points\"."
				 : "This kind needs \"points\" (a number above 0).");
	if (has_per && r->kind != RK_PER_UNIT)
		bad_rule("per", "Only kind \"per_unit\" takes \"per\".");
	if (r->kind == RK_BONUS &&
		ly_num_cmp(r->points, DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(r->points),
																  Int32GetDatum(0)))) != 0)
		bad_rule("points", "A bonus is a whole number of points.");
	if (r->kind == RK_EXCLUDE && (r->cap != CAP_NONE || r->group || r->min_spend))
		bad_rule(r->cap != CAP_NONE ? "cap" : r->group ? "group" : "min_spend",
				 "An exclusion takes no cap, group or min_spend.");
	if (r->has_from && r->has_to && r->valid_from >= r->valid_to)
		bad_rule("valid_to", "valid_to must be after valid_from.");
}
