/*
 * fuzz_settings.c: libFuzzer harness for the program settings parser
 * (src/settings.c, compiled unchanged against test/fuzz/pgstub).
 *
 * The input is JSON text. Text the jsonb input function would refuse never
 * reaches the parser and is skipped. For the rest, properties checked:
 *  - no crash, out-of-bounds access, leak or undefined behaviour (ASan, UBSan);
 *  - the parser either accepts, or raises an ERROR with SQLSTATE LY030 and a
 *    message (never another code: a 22003 from numeric_int4 would be a bug);
 *  - what it accepts is within the documented ranges and combinations;
 *  - every top-level key of an accepted document is a known setting;
 *  - normalisation is a fixed point: the accepted settings written back as a
 *    complete document (every key, as the stored program.settings has them)
 *    parse again to exactly the same settings.
 */
#include "loyalty.h"

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

typedef struct Call
{
	Jsonb	   *in;
	Settings   *out;
} Call;

static void
call_parse(void *arg)
{
	Call	   *c = arg;

	ly_parse_settings(c->in, c->out);
}

static const char *const known[] = {
	"points_per_unit", "rounding", "timezone", "pending_days", "expiry", "negative_balance",
	"tier_basis", "tier_window", "downgrade", "grace_days", "tier_retention_periods",
	"cost_per_point", "voucher_refund_expiry",
};


/*
 * Raw JSON mutation rarely reaches a boundary such as "pending_days": 3651, so
 * every input is also read as a stream of choices that builds a document from
 * the settings grammar: known keys (and near-misses), values from the range
 * edges and the enum names, the nested objects with their own keys, wrong
 * types and duplicates.
 */
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

static const char *const values[] = {
	"-1", "0", "1", "2", "10", "11", "12", "1200", "1201", "3650", "3651", "2147483647",
	"2147483648", "-2147483649", "12.0", "12.5", "1e3", "1e-2", "0.0", "-0.0", "1e400", "-1e400",
	"0.000000000000000000001", "\"floor\"", "\"round\"", "\"ceil\"", "\"none\"", "\"rolling\"",
	"\"end_of_period\"", "\"inactivity\"", "\"month\"", "\"quarter\"", "\"year\"", "\"deny\"",
	"\"allow\"", "\"clamp\"", "\"points\"", "\"spend\"", "\"visits\"", "\"lifetime\"",
	"\"calendar_year\"", "\"never\"", "\"period_end\"", "\"one_step\"", "\"original\"", "\"fresh\"",
	"\"UTC\"", "\"Europe/Berlin\"", "\"Mars/Base\"", "\"\"", "\"12\"", "true", "false", "null",
	"[]", "[1]", "{}",
};
static const char *const sub_keys[] = {"policy", "months", "period", "rolling_months", "x"};

static void
gen_value(Choices *ch, StringInfo b, int depth)
{
	unsigned	k = pick(ch, 8);

	if (k == 0 && depth < 3)
	{
		int			i,
					n = (int) pick(ch, 4);

		appendStringInfoString(b, "{");
		for (i = 0; i < n; i++)
		{
			appendStringInfo(b, "%s\"%s\": ", i ? ", " : "", sub_keys[pick(ch, lengthof(sub_keys))]);
			gen_value(ch, b, depth + 1);
		}
		appendStringInfoString(b, "}");
	}
	else
		appendStringInfoString(b, values[pick(ch, lengthof(values))]);
}

static char *
gen_document(const uint8_t *data, size_t size)
{
	Choices		ch = {data, size, 0};
	StringInfoData b;
	int			i,
				n = (int) pick(&ch, 8);

	initStringInfo(&b);
	appendStringInfoString(&b, "{");
	for (i = 0; i < n; i++)
	{
		unsigned	k = pick(&ch, lengthof(known) + 2);

		appendStringInfo(&b, "%s\"%s\": ", i ? ", " : "",
						 k < lengthof(known) ? known[k] : k == lengthof(known) ? "pending_day" : "");
		gen_value(&ch, &b, 0);
	}
	appendStringInfoString(&b, "}");
	return b.data;
}

static void
check_ranges(const Settings *s, Jsonb *doc)
{
	int			i;
	size_t		k;

	must(s->rounding >= 0 && s->rounding < LY_N_ROUNDING, "rounding");
	must(s->expiry_policy >= 0 && s->expiry_policy < LY_N_EXPIRY, "expiry policy");
	must(s->negative_balance >= 0 && s->negative_balance < LY_N_NEGATIVE, "negative_balance");
	must(s->tier_basis >= 0 && s->tier_basis < LY_N_BASIS, "tier_basis");
	must(s->tier_window >= 0 && s->tier_window < LY_N_WINDOW, "tier_window");
	must(s->downgrade >= 0 && s->downgrade < LY_N_DOWNGRADE, "downgrade");
	must(s->pending_days >= 0 && s->pending_days <= 3650, "pending_days range");
	must(s->grace_days >= 0 && s->grace_days <= 3650, "grace_days range");
	must(s->tier_retention_periods >= 0 && s->tier_retention_periods <= 10, "retention range");
	must(s->expiry_months >= 0 && s->expiry_months <= 1200, "expiry months range");
	switch (s->expiry_policy)
	{
		case EXPIRY_NONE:
			must(s->expiry_months == 0, "policy none has no months");
			break;
		case EXPIRY_ROLLING:
		case EXPIRY_INACTIVITY:
			must(s->expiry_months >= 1, "rolling/inactivity need months >= 1");
			break;
		case EXPIRY_END_OF_PERIOD:
			must(s->expiry_period >= PERIOD_MONTH && s->expiry_period <= PERIOD_YEAR,
				 "end_of_period needs a period");
			break;
	}
	if (s->tier_window == WINDOW_ROLLING)
		must(s->tier_window_months >= 1 && s->tier_window_months <= 1200, "rolling window months");
	else
		must(s->tier_window_months == 0, "non-rolling window has no months");
	must(s->timezone != NULL && s->timezone[0] != '\0', "timezone");
	must(s->points_per_unit->kind == 'f' && ly_num_cmp(s->points_per_unit, ly_num_zero()) > 0,
		 "points_per_unit > 0 and finite");
	must(s->cost_per_point->kind == 'f' && ly_num_cmp(s->cost_per_point, ly_num_zero()) >= 0,
		 "cost_per_point >= 0 and finite");
	for (i = 0; doc && i < doc->root.n; i++)
	{
		JsonbValue *key = &doc->root.keys[i];
		bool		found = false;

		for (k = 0; k < lengthof(known); k++)
			found |= strlen(known[k]) == (size_t) key->val.string.len &&
				memcmp(known[k], key->val.string.val, key->val.string.len) == 0;
		must(found, "an accepted document has only known keys");
	}
}

/* The complete normalised document for s (the stored form: every key). */
static char *
write_back(const Settings *s)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, "{\"points_per_unit\": %s, \"rounding\": \"%s\", \"timezone\": \"%s\", "
					 "\"pending_days\": %d, ",
					 pgstub_numeric_text(s->points_per_unit), ly_rounding_name(s->rounding),
					 s->timezone, s->pending_days);
	appendStringInfo(&b, "\"expiry\": {\"policy\": \"%s\"", ly_expiry_name(s->expiry_policy));
	if (s->expiry_policy != EXPIRY_NONE)
		appendStringInfo(&b, ", \"months\": %d", s->expiry_months);
	if (s->expiry_policy == EXPIRY_END_OF_PERIOD)
		appendStringInfo(&b, ", \"period\": \"%s\"", ly_period_name(s->expiry_period));
	appendStringInfo(&b, "}, \"negative_balance\": \"%s\", \"tier_basis\": \"%s\", ",
					 ly_negative_name(s->negative_balance), ly_basis_name(s->tier_basis));
	if (s->tier_window == WINDOW_ROLLING)
		appendStringInfo(&b, "\"tier_window\": {\"rolling_months\": %d}, ", s->tier_window_months);
	else
		appendStringInfo(&b, "\"tier_window\": \"%s\", ", ly_window_name(s->tier_window));
	appendStringInfo(&b, "\"downgrade\": \"%s\", \"grace_days\": %d, \"tier_retention_periods\": %d, "
					 "\"cost_per_point\": %s, \"voucher_refund_expiry\": \"%s\"}",
					 ly_downgrade_name(s->downgrade), s->grace_days, s->tier_retention_periods,
					 pgstub_numeric_text(s->cost_per_point),
					 s->refund_fresh_expiry ? "fresh" : "original");
	return b.data;
}

static bool
same(const Settings *a, const Settings *b)
{
	return ly_num_cmp(a->points_per_unit, b->points_per_unit) == 0 &&
		a->rounding == b->rounding && strcmp(a->timezone, b->timezone) == 0 &&
		a->pending_days == b->pending_days && a->expiry_policy == b->expiry_policy &&
		a->expiry_months == b->expiry_months &&
		(a->expiry_policy != EXPIRY_END_OF_PERIOD || a->expiry_period == b->expiry_period) &&
		a->negative_balance == b->negative_balance && a->tier_basis == b->tier_basis &&
		a->tier_window == b->tier_window && a->tier_window_months == b->tier_window_months &&
		a->downgrade == b->downgrade && a->grace_days == b->grace_days &&
		a->tier_retention_periods == b->tier_retention_periods &&
		ly_num_cmp(a->cost_per_point, b->cost_per_point) == 0 &&
		a->refund_fresh_expiry == b->refund_fresh_expiry;
}

static void
check_document(Jsonb *doc)
{
	Settings	s,
				again;
	Call		c;
	char	   *text;
	Jsonb	   *doc2;

	memset(&s, 0, sizeof(s));
	c.in = doc;
	c.out = &s;
	if (!pgstub_try(call_parse, &c))
	{
		if (getenv("FUZZ_TRACE"))
			fprintf(stderr, "refused: %s\n", pgstub_message);
		must(pgstub_sqlstate == LY_INVALID_SETTING, "a refusal is LY030");
		must(pgstub_message[0] != '\0', "a refusal has a message");
		return;
	}
	text = write_back(&s);
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "accepted: %s\n", text);
	check_ranges(&s, doc);
	doc2 = pgstub_parse_json(text, strlen(text));
	must(doc2 != NULL, "the written-back document is JSON");
	memset(&again, 0, sizeof(again));
	c.in = doc2;
	c.out = &again;
	must(pgstub_try(call_parse, &c), "the written-back document is accepted");
	must(same(&s, &again), "normalisation is a fixed point");
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
	/* the input as choices in the settings grammar */
	gen = gen_document(data, size);
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "generated: %s\n", gen);
	doc = pgstub_parse_json(gen, strlen(gen));
	must(doc != NULL, "a generated document is JSON");
	check_document(doc);
	pgstub_reset();
	return 0;
}
