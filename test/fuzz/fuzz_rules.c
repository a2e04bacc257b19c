/*
 * fuzz_rules.c: libFuzzer harness for the earning-rule definition parser
 * (src/rules_parse.c, compiled unchanged against test/fuzz/pgstub).
 *
 * The input is JSON text; text the jsonb input function would refuse never
 * reaches the parser and is skipped. Each input is also read as choices that
 * build a definition from the rule grammar (as fuzz_settings.c does). Checked:
 *  - no crash, out-of-bounds access, leak or undefined behaviour (ASan, UBSan);
 *  - the parser accepts, or raises LY100 with a message (a root that is not an
 *    object: LY035); never another code (a 22003 from numeric_int8 or a 22007
 *    escaping from the timestamp input would be a bug);
 *  - what it accepts is in the documented ranges: a known kind with exactly its
 *    amount keys, multiplier in (1, 1000], points in (0, 1e9] (a bonus whole),
 *    hours within a day, known weekdays, tiers the program has, caps and
 *    priorities in range, valid_from before valid_to;
 *  - writing an accepted rule back as a definition parses to the same rule.
 */
#include "rules_parse.h"

#include <stdio.h>

static void
must(int cond, const char *what)
{
	if (!cond)
	{
		fprintf(stderr, "property violated: %s\n", what);
		abort();
	}
}

/* the program's tiers, for the "tiers" check that add_rule makes with a query */
static const char *const tier_codes[] = {"silver", "gold"};

static bool
has_tier(const char *code, void *arg)
{
	size_t		i;

	for (i = 0; i < lengthof(tier_codes); i++)
		if (strcmp(code, tier_codes[i]) == 0)
			return true;
	return false;
}

typedef struct Call
{
	Jsonb	   *in;
	Rule	   *out;
} Call;

static void
call_parse(void *arg)
{
	Call	   *c = arg;

	ly_rule_parse(c->in, c->out, has_tier, NULL);
}

typedef struct Choices
{
	const uint8_t *d;
	size_t		n;
	size_t		i;
} Choices;

static unsigned
pick(Choices *ch, unsigned n)
{
	return ch->i < ch->n ? ch->d[ch->i++] % n : 0;
}

static const char *const keys[] = {
	"kind", "name", "multiplier", "points", "per", "match", "valid_from", "valid_to", "days",
	"hours", "min_spend", "tiers", "segment_id", "cap", "group", "priority", "kinds", "",
};
static const char *const values[] = {
	"\"exclude\"", "\"multiplier\"", "\"bonus\"", "\"per_unit\"", "\"Bonus\"", "\"amount\"",
	"\"qty\"", "\"mon\"", "\"sun\"", "\"sat\"", "\"monday\"", "\"day\"", "\"week\"", "\"month\"",
	"\"year\"", "\"ever\"", "\"silver\"", "\"gold\"", "\"platinum\"", "\"coffee\"", "\"\"",
	"\"00:00\"", "\"23:59\"", "\"24:00\"", "\"24:01\"", "\"12:60\"", "\"7:00\"", "\"07:00\"",
	"\"2026-03-01 00:00:00+01\"", "\"2026-02-29\"", "\"2028-02-29T23:59:59.999999Z\"",
	"\"2026-03-01\"", "\"infinity\"", "\"-infinity\"", "\"yesterday\"",
	"-1", "0", "1", "1.0", "1.0000001", "2", "1.5", "1000", "1000.0001", "1001", "1e9", "1.0e9",
	"1000000000", "1000000001", "0.01", "1e-400", "1e400", "-1000", "-1001", "999999999999",
	"1000000000000", "1000000000001", "9223372036854775807", "9223372036854775808", "2147483648",
	"true", "false", "null", "[]", "{}", "[1]",
};
static const char *const sub_keys[] = {
	"from", "to", "period", "points", "category", "sku", "lines", "brand", "x",
};

static void
gen_value(Choices *ch, StringInfo b, int depth)
{
	unsigned	k = pick(ch, 10);
	int			i,
				n;

	if (k == 0 && depth < 3)
	{
		n = (int) pick(ch, 4);
		appendStringInfoString(b, "{");
		for (i = 0; i < n; i++)
		{
			appendStringInfo(b, "%s\"%s\": ", i ? ", " : "", sub_keys[pick(ch, lengthof(sub_keys))]);
			gen_value(ch, b, depth + 1);
		}
		appendStringInfoString(b, "}");
	}
	else if (k == 1 && depth < 3)
	{
		n = (int) pick(ch, 9);
		appendStringInfoString(b, "[");
		for (i = 0; i < n; i++)
		{
			appendStringInfoString(b, i ? ", " : "");
			gen_value(ch, b, depth + 1);
		}
		appendStringInfoString(b, "]");
	}
	else
		appendStringInfoString(b, values[pick(ch, lengthof(values))]);
}

static const char *const clocks[] = {"\"00:00\"", "\"07:30\"", "\"23:59\"", "\"24:00\"", "\"24:01\"", "\"12:60\""};
static const char *const words[] = {
	"\"mon\"", "\"fri\"", "\"sun\"", "\"day\"", "\"week\"", "\"ever\"", "\"silver\"",
	"\"gold\"", "\"bronze\"", "\"\"", "0", "1", "1000000000000", "1000000000001", "1.5",
};

/* a value of the shape the key takes, so the checks behind the shape are reached */
static bool
gen_shaped(Choices *ch, StringInfo b, const char *key)
{
	int			i,
				n;

	if (strcmp(key, "hours") == 0)
		appendStringInfo(b, "{\"from\": %s, \"to\": %s}", clocks[pick(ch, lengthof(clocks))],
						 clocks[pick(ch, lengthof(clocks))]);
	else if (strcmp(key, "cap") == 0)
		appendStringInfo(b, "{\"period\": %s, \"points\": %s}", words[pick(ch, lengthof(words))],
						 words[pick(ch, lengthof(words))]);
	else if (strcmp(key, "days") == 0 || strcmp(key, "tiers") == 0)
	{
		n = (int) pick(ch, 9);
		appendStringInfoString(b, "[");
		for (i = 0; i < n; i++)
			appendStringInfo(b, "%s%s", i ? ", " : "", words[pick(ch, lengthof(words))]);
		appendStringInfoString(b, "]");
	}
	else if (strcmp(key, "valid_from") == 0 || strcmp(key, "valid_to") == 0)
	{
		static const char *const times[] = {
			"\"0001-01-01 00:00+15:59\"", "\"9999-12-31 23:59:59.999999-15:59\"",
			"\"2026-03-01 00:00-05\"", "\"2026-03-01 05:00Z\"", "\"2026-02-29\"",
			"\"2024-02-29 24:00\"", "\"infinity\"",
		};

		appendStringInfoString(b, times[pick(ch, lengthof(times))]);
	}
	else
		return false;
	return true;
}

static char *
gen_document(const uint8_t *data, size_t size)
{
	Choices		ch = {data, size, 0};
	StringInfoData b;
	int			i,
				n = (int) pick(&ch, 8);

	initStringInfo(&b);
	appendStringInfo(&b, "{\"kind\": %s", values[pick(&ch, 5)]);
	for (i = 0; i < n; i++)
	{
		const char *key = keys[pick(&ch, lengthof(keys))];

		appendStringInfo(&b, ", \"%s\": ", key);
		if (pick(&ch, 2) == 0 || !gen_shaped(&ch, &b, key))
			gen_value(&ch, &b, 0);
	}
	appendStringInfoString(&b, "}");
	return b.data;
}

static Numeric
num(const char *s)
{
	Jsonb	   *j = pgstub_parse_json(s, strlen(s));

	return j->root.vals[0].val.numeric;
}

static void
check_ranges(const Rule *r)
{
	int			i,
				j;

	must(r->kind >= RK_EXCLUDE && r->kind <= RK_PER_UNIT, "a known kind");
	must((r->kind == RK_MULTIPLIER) == (r->factor != NULL), "multiplier iff kind multiplier");
	must((r->kind == RK_BONUS || r->kind == RK_PER_UNIT) == (r->points != NULL),
		 "points iff kind bonus or per_unit");
	if (r->factor)
		must(r->factor->kind == 'f' && ly_num_cmp(r->factor, num("1")) > 0 &&
			 ly_num_cmp(r->factor, num("1000")) <= 0, "multiplier in (1, 1000]");
	if (r->points)
		must(r->points->kind == 'f' && ly_num_cmp(r->points, ly_num_zero()) > 0 &&
			 ly_num_cmp(r->points, num("1e9")) <= 0, "points in (0, 1e9]");
	if (r->kind == RK_BONUS)
		must(ly_num_cmp(r->points, num("1")) >= 0 && r->points->exp >= 0, "a bonus is whole points");
	must(!r->per_qty || r->kind == RK_PER_UNIT, "per only for per_unit");
	if (r->kind == RK_EXCLUDE)
		must(r->cap == CAP_NONE && r->group == NULL && r->min_spend == NULL,
			 "an exclusion has no cap, group or min_spend");
	must(r->days >= 0 && r->days < (1 << 7), "days are weekdays");
	if (r->has_hours)
		must(r->from_min >= 0 && r->from_min < 24 * 60 && r->to_min >= 0 && r->to_min <= 24 * 60 &&
			 r->from_min != r->to_min, "hours within a day, from before 24:00 and not to");
	else
		must(r->from_min == 0 && r->to_min == 0, "no hours, no range");
	if (r->min_spend)
		must(r->min_spend->kind == 'f' && ly_num_cmp(r->min_spend, ly_num_zero()) >= 0 &&
			 ly_num_cmp(r->min_spend, num("1e12")) <= 0, "min_spend in [0, 1e12]");
	for (i = 0; i < r->ntiers; i++)
		must(has_tier(r->tiers[i], NULL), "tiers are the program's");
	must(r->ntiers <= 64, "at most 64 tiers");
	must(r->segment_id >= 0, "segment_id");
	must(r->cap >= CAP_NONE && r->cap <= CAP_EVER, "cap period");
	if (r->cap != CAP_NONE)
		must(r->cap_points >= 1 && r->cap_points <= INT64CONST(1000000000000), "cap points");
	else
		must(r->cap_points == 0, "no cap, no cap points");
	must(r->priority >= -1000 && r->priority <= 1000, "priority");
	must(!r->name || (strlen(r->name) >= 1 && strlen(r->name) <= LY_MAX_NAME), "name length");
	must(!r->group || (strlen(r->group) >= 1 && strlen(r->group) <= LY_MAX_NAME), "group length");
	must(!(r->has_from && r->has_to) || r->valid_from < r->valid_to, "valid_from before valid_to");
	must(!r->has_from || !TIMESTAMP_NOT_FINITE(r->valid_from), "valid_from finite");
	must(!r->has_to || !TIMESTAMP_NOT_FINITE(r->valid_to), "valid_to finite");
	must(r->nmatch <= 64, "at most 64 match attributes");
	for (i = 0; i < r->nmatch; i++)
	{
		must(r->match[i].keylen >= 1 && r->match[i].keylen <= LY_MAX_NAME &&
			 strcmp(r->match[i].key, "lines") != 0, "match attribute name");
		must(r->match[i].n >= 1 && r->match[i].n <= MAX_LIST, "match list size");
		for (j = 0; j < r->match[i].n; j++)
			must(r->match[i].v[j].type == jbvString || r->match[i].v[j].type == jbvNumeric ||
				 r->match[i].v[j].type == jbvBool, "match values are scalars");
	}
}

/* a JSON string literal for bytes that came from a JSON string */
static void
put_str(StringInfo b, const char *s, int len)
{
	int			i;

	appendStringInfoString(b, "\"");
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
			appendStringInfo(b, "\\%c", c);
		else if (c < 0x20)
			appendStringInfo(b, "\\u%04x", c);
		else
			appendStringInfo(b, "%c", c);
	}
	appendStringInfoString(b, "\"");
}

static void
put_scalar(StringInfo b, const MatchValue *v)
{
	if (v->type == jbvString)
		put_str(b, v->str, v->len);
	else if (v->type == jbvNumeric)
		appendStringInfoString(b, pgstub_numeric_text(v->num));
	else
		appendStringInfoString(b, v->b ? "true" : "false");
}

/* microseconds since 2000-01-01 UTC as ISO 8601 (H. Hinnant's civil_from_days) */
#define DAY_US INT64CONST(86400000000)
#define EDGE_US ((15 * 60 + 59) * INT64CONST(60000000))	/* the largest zone offset, 15:59 */

static void
put_time(StringInfo b, TimestampTz t)
{
	/* an offset keeps the year within 0001..9999, where timestamptz_in's ISO form is */
	const char *zone = t < -730119 * DAY_US ? "+15:59" : t >= 2921940 * DAY_US ? "-15:59" : "Z";
	int64		lt = t + (zone[0] == '+' ? EDGE_US : zone[0] == '-' ? -EDGE_US : 0);
	int64		days = lt / DAY_US,
				us = lt % DAY_US;
	int64		z,
				era;
	unsigned	doe,
				yoe,
				doy,
				mp,
				d,
				m;
	int64		y;

	if (us < 0)
	{
		us += DAY_US;
		days--;
	}
	z = days + 10957 + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (int64) yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	appendStringInfo(b, "\"%04lld-%02u-%02u %02lld:%02lld:%02lld.%06lld%s\"", (long long) y, m, d,
					 (long long) (us / INT64CONST(3600000000)),
					 (long long) (us / 60000000 % 60), (long long) (us / 1000000 % 60),
					 (long long) (us % 1000000), zone);
}

static const char *const kind_text[] = {"exclude", "multiplier", "bonus", "per_unit"};
static const char *const cap_text[] = {NULL, "day", "week", "month", "year", "ever"};
static const char *const day_text[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static char *
write_back(const Rule *r)
{
	StringInfoData b;
	int			i,
				j;
	bool		first;

	initStringInfo(&b);
	appendStringInfo(&b, "{\"kind\": \"%s\", \"priority\": %d", kind_text[r->kind], r->priority);
	if (r->name)
	{
		appendStringInfoString(&b, ", \"name\": ");
		put_str(&b, r->name, (int) strlen(r->name));
	}
	if (r->group)
	{
		appendStringInfoString(&b, ", \"group\": ");
		put_str(&b, r->group, (int) strlen(r->group));
	}
	if (r->factor)
		appendStringInfo(&b, ", \"multiplier\": %s", pgstub_numeric_text(r->factor));
	if (r->points)
		appendStringInfo(&b, ", \"points\": %s", pgstub_numeric_text(r->points));
	if (r->kind == RK_PER_UNIT)
		appendStringInfo(&b, ", \"per\": \"%s\"", r->per_qty ? "qty" : "amount");
	if (r->min_spend)
		appendStringInfo(&b, ", \"min_spend\": %s", pgstub_numeric_text(r->min_spend));
	if (r->segment_id)
		appendStringInfo(&b, ", \"segment_id\": %lld", (long long) r->segment_id);
	if (r->cap != CAP_NONE)
		appendStringInfo(&b, ", \"cap\": {\"period\": \"%s\", \"points\": %lld}", cap_text[r->cap],
						 (long long) r->cap_points);
	if (r->has_hours)
		appendStringInfo(&b, ", \"hours\": {\"from\": \"%02d:%02d\", \"to\": \"%02d:%02d\"}",
						 r->from_min / 60, r->from_min % 60, r->to_min / 60, r->to_min % 60);
	if (r->days)
	{
		appendStringInfoString(&b, ", \"days\": [");
		for (i = 0, first = true; i < 7; i++)
			if (r->days & (1 << i))
			{
				appendStringInfo(&b, "%s\"%s\"", first ? "" : ", ", day_text[i]);
				first = false;
			}
		appendStringInfoString(&b, "]");
	}
	if (r->has_from)
	{
		appendStringInfoString(&b, ", \"valid_from\": ");
		put_time(&b, r->valid_from);
	}
	if (r->has_to)
	{
		appendStringInfoString(&b, ", \"valid_to\": ");
		put_time(&b, r->valid_to);
	}
	if (r->ntiers)
	{
		appendStringInfoString(&b, ", \"tiers\": [");
		for (i = 0; i < r->ntiers; i++)
		{
			appendStringInfoString(&b, i ? ", " : "");
			put_str(&b, r->tiers[i], (int) strlen(r->tiers[i]));
		}
		appendStringInfoString(&b, "]");
	}
	if (r->match)
	{
		appendStringInfoString(&b, ", \"match\": {");
		for (i = 0; i < r->nmatch; i++)
		{
			appendStringInfoString(&b, i ? ", " : "");
			put_str(&b, r->match[i].key, r->match[i].keylen);
			appendStringInfoString(&b, ": [");
			for (j = 0; j < r->match[i].n; j++)
			{
				appendStringInfoString(&b, j ? ", " : "");
				put_scalar(&b, &r->match[i].v[j]);
			}
			appendStringInfoString(&b, "]");
		}
		appendStringInfoString(&b, "}");
	}
	appendStringInfoString(&b, "}");
	return b.data;
}

static bool
same_num(Numeric a, Numeric b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || ly_num_cmp(a, b) == 0);
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

static bool
same(const Rule *a, const Rule *b)
{
	int			i,
				j;

	if (!(a->kind == b->kind && same_num(a->factor, b->factor) && same_num(a->points, b->points) &&
		  a->per_qty == b->per_qty && a->nmatch == b->nmatch && a->has_from == b->has_from &&
		  (!a->has_from || a->valid_from == b->valid_from) && a->has_to == b->has_to &&
		  (!a->has_to || a->valid_to == b->valid_to) && a->days == b->days &&
		  a->has_hours == b->has_hours && a->from_min == b->from_min && a->to_min == b->to_min &&
		  same_num(a->min_spend, b->min_spend) && a->ntiers == b->ntiers &&
		  a->segment_id == b->segment_id && a->cap == b->cap && a->cap_points == b->cap_points &&
		  same_str(a->group, b->group) && same_str(a->name, b->name) && a->priority == b->priority))
		return false;
	for (i = 0; i < a->ntiers; i++)
		if (strcmp(a->tiers[i], b->tiers[i]) != 0)
			return false;
	for (i = 0; i < a->nmatch; i++)
	{
		Match	   *x = &a->match[i],
				   *y = &b->match[i];

		if (x->keylen != y->keylen || memcmp(x->key, y->key, x->keylen) != 0 || x->n != y->n)
			return false;
		for (j = 0; j < x->n; j++)
		{
			MatchValue *u = &x->v[j],
					   *v = &y->v[j];

			if (u->type != v->type ||
				(u->type == jbvString && (u->len != v->len || memcmp(u->str, v->str, u->len) != 0)) ||
				(u->type == jbvNumeric && ly_num_cmp(u->num, v->num) != 0) ||
				(u->type == jbvBool && u->b != v->b))
				return false;
		}
	}
	return true;
}

static void
check_document(Jsonb *doc)
{
	Rule		r,
				again;
	Call		c;
	char	   *text;
	Jsonb	   *doc2;

	memset(&r, 0, sizeof(r));
	c.in = doc;
	c.out = &r;
	if (!pgstub_try(call_parse, &c))
	{
		if (getenv("FUZZ_TRACE"))
			fprintf(stderr, "refused: %s\n", pgstub_message);
		if (JB_ROOT_IS_OBJECT(doc))
			must(pgstub_sqlstate == LY_INVALID_RULE, "a refusal is LY100");
		else
			must(pgstub_sqlstate == LY_INVALID_JSON, "a definition that is no object is LY035");
		must(pgstub_message[0] != '\0', "a refusal has a message");
		return;
	}
	must(JB_ROOT_IS_OBJECT(doc), "only an object is accepted");
	check_ranges(&r);
	text = write_back(&r);
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "accepted: %s\n", text);
	doc2 = pgstub_parse_json(text, strlen(text));
	must(doc2 != NULL, "the written-back definition is JSON");
	memset(&again, 0, sizeof(again));
	c.in = doc2;
	c.out = &again;
	if (!pgstub_try(call_parse, &c))
		fprintf(stderr, "written back refused: %s\n%s\n", pgstub_message, text);
	must(pgstub_sqlstate == 0, "the written-back definition is accepted");
	must(same(&r, &again), "writing back is a fixed point");
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Jsonb	   *doc = pgstub_parse_json((const char *) data, size);
	char	   *gen;

	/* the input as JSON text, when jsonb would take it */
	if (doc != NULL)
		check_document(doc);
	/* the input as choices in the rule grammar */
	gen = gen_document(data, size);
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "generated: %s\n", gen);
	doc = pgstub_parse_json(gen, strlen(gen));
	must(doc != NULL, "a generated document is JSON");
	check_document(doc);
	pgstub_reset();
	return 0;
}
