/*
 * rules.c: earning rules, evaluated by earn in C.
 *
 * A rule is one of four kinds:
 *   exclude     matching lines (or the whole purchase) earn nothing at all;
 *   multiplier  matching lines earn x times their base points;
 *   bonus       a fixed number of points once per matching purchase;
 *   per_unit    points per currency unit (or per item) of the matching lines.
 * Conditions: attribute matches (equals or in-list, on the line first and then
 * the purchase's attrs), valid_from/valid_to, days of week and hours of day in
 * the program's time zone, min_spend, tiers, segment. Caps bound what a rule
 * gives a member per local day, week, month, year or ever.
 *
 * Stacking, in this order: exclusions first; then multipliers, per line, in
 * priority order (higher first, then older first), each multiplying what the
 * line has so far (within a stacking group only the highest multiplier for the
 * line applies); then additive rules (bonus, per_unit; within a group only the
 * one giving the most points). Additive points are never multiplied. Caps apply
 * per rule to that rule's own points.
 *
 * Parsed rules are cached per program per backend and dropped when loyalty.rule
 * changes (the statement trigger sends a relcache invalidation, as cache.c).
 */
#include "loyalty.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "rules_parse.h"

typedef struct RuleSet
{
	int64		program_id;		/* hash key */
	int			n;
	Rule	   *rules;			/* exclusions, multipliers, then additive; by priority, id */
} RuleSet;

/* named tiers must exist when a rule is added (not when stored rules load) */
static LyQuery q_tier_exists = {
	"SELECT 1 FROM loyalty.tier WHERE program_id = $1 AND code = $2", 2, {INT8OID, TEXTOID}, NULL};

static bool
tier_exists(const char *code, void *arg)
{
	Datum		a[2] = {Int64GetDatum(*(int64 *) arg), CStringGetTextDatum(code)};

	return ly_run(&q_tier_exists, a, NULL, 1) == 1;
}

/* ------------------------------------------------------------------------
 * the per-backend cache
 * ------------------------------------------------------------------------ */

static HTAB *rule_cache = NULL;
static MemoryContext rule_cxt = NULL;
static Oid	rule_relid = InvalidOid;
static bool rules_stale = false;
static bool callback_registered = false;

/* Only mark: a set in use by the running call must not vanish under it. */
static void
rules_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == rule_relid)
		rules_stale = true;
}

static LyQuery q_rules = {
	"SELECT id, code, name, kind, definition, ended_at FROM loyalty.rule WHERE program_id = $1",
	1, {INT8OID}, NULL};

static int
rule_order(const void *a, const void *b)
{
	const Rule *x = a;
	const Rule *y = b;
	int			px = x->kind == RK_PER_UNIT ? RK_BONUS : x->kind;
	int			py = y->kind == RK_PER_UNIT ? RK_BONUS : y->kind;

	if (px != py)
		return px - py;
	if (x->priority != y->priority)
		return y->priority - x->priority;
	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* Read and parse a program's rules into cxt. */
static RuleSet *
load_rules(int64 program_id, MemoryContext cxt)
{
	RuleSet    *rs;
	Datum		arg = Int64GetDatum(program_id);
	uint64		n = ly_run(&q_rules, &arg, NULL, 0);
	SPITupleTable *tt = SPI_tuptable;
	uint64		i;
	MemoryContext old;

	/* after a query SPI is back in its procedure context: switch now */
	old = MemoryContextSwitchTo(cxt);
	rs = palloc0(sizeof(RuleSet));

	rs->program_id = program_id;
	rs->rules = palloc0(sizeof(Rule) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
	{
		Rule	   *r = &rs->rules[rs->n++];
		bool		isnull;
		Datum		d;

		SPI_tuptable = tt;		/* ly_rule_parse runs no query without a program id */
		r->id = ly_get_int64(i, 1);
		r->code = ly_get_text(i, 2);
		d = ly_get(i, 5, &isnull);
		ly_rule_parse(DatumGetJsonbPCopy(d), r, NULL, NULL);
		r->name = ly_get_text(i, 3);
		d = ly_get(i, 6, &isnull);
		r->has_end = !isnull;
		if (!isnull)
			r->ended_at = DatumGetTimestampTz(d);
	}
	qsort(rs->rules, rs->n, sizeof(Rule), rule_order);
	MemoryContextSwitchTo(old);
	return rs;
}

typedef struct RuleCacheEntry
{
	int64		program_id;
	RuleSet    *rs;
} RuleCacheEntry;

static RuleSet *
program_rules(int64 program_id)
{
	RuleCacheEntry *e;
	RuleSet    *rs;
	MemoryContext setcxt;
	bool		found;

	AcceptInvalidationMessages();
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(rules_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (rule_cxt == NULL)
		rule_cxt = AllocSetContextCreate(CacheMemoryContext, "loyalty rule cache", ALLOCSET_SMALL_SIZES);
	if (rules_stale || rule_cache == NULL)
	{
		HASHCTL		ctl;
		Oid			nsp = get_namespace_oid("loyalty", false);

		/* no set is in use between calls: dropping them all is safe here */
		MemoryContextReset(rule_cxt);
		rules_stale = false;
		rule_relid = get_relname_relid("rule", nsp);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(RuleCacheEntry);
		ctl.hcxt = rule_cxt;
		rule_cache = hash_create("loyalty rules", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	/* REPEATABLE READ: a snapshot may predate a consumed invalidation (see cache.c) */
	if (!IsolationUsesXactSnapshot())
	{
		e = hash_search(rule_cache, &program_id, HASH_FIND, NULL);
		if (e != NULL)
			return e->rs;
	}
	setcxt = AllocSetContextCreate(rule_cxt, "loyalty rule set", ALLOCSET_SMALL_SIZES);
	rs = load_rules(program_id, setcxt);
	if (rules_stale || IsolationUsesXactSnapshot())
	{
		/* changed while we read, or not cacheable: use it for this call only */
		MemoryContextSetParent(setcxt, CurrentMemoryContext);
		return rs;
	}
	e = hash_search(rule_cache, &program_id, HASH_ENTER, &found);
	e->rs = rs;
	return rs;
}

/* ------------------------------------------------------------------------
 * add_rule, end_rule
 * ------------------------------------------------------------------------ */

static LyQuery q_program_id = {
	"SELECT id FROM loyalty.program WHERE code = $1 AND loyalty.caller_may_use(tenant)", 1, {TEXTOID}, NULL};

/* a program the caller may not use is reported as unknown (tenancy.c) */
static int64
program_id_of(const char *code)
{
	Datum		a = CStringGetTextDatum(code);

	if (ly_run(&q_program_id, &a, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program \"%s\" does not exist", code)));
	return ly_get_int64(0, 1);
}

static LyQuery q_insert_rule = {
	"INSERT INTO loyalty.rule (program_id, code, name, kind, definition) VALUES ($1, $2, $3, $4, $5) "
	"ON CONFLICT (program_id, code) DO NOTHING RETURNING id", 5,
	{INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}, NULL};

/* add_rule(program, code, definition): validate and store an earning rule */
PG_FUNCTION_INFO_V1(loyalty_add_rule);
Datum
loyalty_add_rule(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	char	   *code = ly_arg_name(fcinfo, 1, "code");
	Jsonb	   *def = ly_arg_object(fcinfo, 2, "definition", false);
	Rule		r;
	int64		pid;
	int64		id;
	Datum		v[5];

	memset(&r, 0, sizeof(r));
	SPI_connect();
	pid = program_id_of(program);
	ly_rule_parse(def, &r, tier_exists, &pid);
	v[0] = Int64GetDatum(pid);
	v[1] = CStringGetTextDatum(code);
	v[2] = CStringGetTextDatum(r.name ? r.name : code);
	v[3] = CStringGetTextDatum(kind_names[r.kind]);
	v[4] = JsonbPGetDatum(def);
	if (ly_run(&q_insert_rule, v, NULL, 0) != 1)
		ereport(ERROR,
				(errcode(LY_DUPLICATE),
				 errmsg("program \"%s\" already has a rule \"%s\"", program, code),
				 errhint("Rules are never replaced: end it with loyalty.end_rule and add one with a new code.")));
	id = ly_get_int64(0, 1);
	SPI_finish();
	PG_RETURN_INT64(id);
}

static LyQuery q_end_rule = {
	"UPDATE loyalty.rule r SET ended_at = $3 "
	"  FROM loyalty.program p WHERE p.id = r.program_id AND p.code = $1 AND r.code = $2 "
	"   AND r.ended_at IS NULL RETURNING r.id", 3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}, NULL};

static LyQuery q_rule_ended = {
	"SELECT r.ended_at FROM loyalty.rule r JOIN loyalty.program p ON p.id = r.program_id "
	" WHERE p.code = $1 AND r.code = $2", 2, {TEXTOID, TEXTOID}, NULL};

/* end_rule(program, code, at): the rule no longer applies to purchases dated at or after `at` */
PG_FUNCTION_INFO_V1(loyalty_end_rule);
Datum
loyalty_end_rule(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	char	   *code = ly_arg_name(fcinfo, 1, "code");
	TimestampTz at = ly_arg_at(fcinfo, 2);
	Datum		v[3];
	bool		isnull;

	SPI_connect();
	(void) program_id_of(program);
	v[0] = CStringGetTextDatum(program);
	v[1] = CStringGetTextDatum(code);
	v[2] = TimestampTzGetDatum(at);
	if (ly_run(&q_end_rule, v, NULL, 0) != 1)
	{
		if (ly_run(&q_rule_ended, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_RULE),
					 errmsg("program \"%s\" has no rule \"%s\"", program, code)));
		ereport(ERROR,
				(errcode(LY_RULE_ENDED),
				 errmsg("rule \"%s\" already ended", code),
				 errdetail("It ended at %s.", timestamptz_to_str(DatumGetTimestampTz(ly_get(0, 1, &isnull))))));
	}
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(at);
}

/* ------------------------------------------------------------------------
 * evaluation
 * ------------------------------------------------------------------------ */

typedef struct Line
{
	JsonbContainer *obj;		/* the line's object; NULL for a purchase without lines */
	Numeric		amount;
	int64		qty;
	Numeric		raw;			/* amount x points_per_unit x tier multiplier */
	int			excluded_by;	/* rule index, -1 if none */
	int64		base;
	int64		points;			/* base + what rules gave this line */
} Line;

static bool
value_equals(JsonbValue *a, MatchValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvString:
			return a->val.string.len == b->len && memcmp(a->val.string.val, b->str, b->len) == 0;
		case jbvNumeric:
			return ly_num_cmp(a->val.numeric, b->num) == 0;
		case jbvBool:
			return a->val.boolean == b->b;
		default:
			return false;
	}
}

/* The line's attribute, else the purchase's. */
static JsonbValue *
attr_of(Line *l, JsonbContainer *purchase, Match *m, JsonbValue *buf)
{
	JsonbValue *v = NULL;

	if (l->obj)
		v = getKeyJsonValueFromContainer(l->obj, m->key, m->keylen, buf);
	if (v == NULL)
		v = getKeyJsonValueFromContainer(purchase, m->key, m->keylen, buf);
	return v;
}

static bool
line_matches(Rule *r, Line *l, JsonbContainer *purchase)
{
	int			i,
				j;

	for (i = 0; i < r->nmatch; i++)
	{
		JsonbValue	buf;
		JsonbValue *v = attr_of(l, purchase, &r->match[i], &buf);
		bool		hit = false;

		if (v == NULL)
			return false;
		for (j = 0; j < r->match[i].n && !hit; j++)
			hit = value_equals(v, &r->match[i].v[j]);
		if (!hit)
			return false;
	}
	return true;
}

/* Purchase-level conditions: dates, days, hours (local), tier, segment. */
static bool
rule_active(Rule *r, Member *m, TimestampTz at, struct pg_tm *tm, int wday)
{
	int			i;

	if ((r->has_end && at >= r->ended_at) || (r->has_from && at < r->valid_from) ||
		(r->has_to && at >= r->valid_to))
		return false;
	if (r->days && !(r->days & (1 << wday)))
		return false;
	if (r->has_hours)
	{
		int			now = tm->tm_hour * 60 + tm->tm_min;

		if (r->from_min < r->to_min ? (now < r->from_min || now >= r->to_min)
			: (now < r->from_min && now >= r->to_min))
			return false;
	}
	if (r->ntiers)
	{
		const char *held = ly_tier_code(m);
		bool		ok = false;

		for (i = 0; i < r->ntiers && !ok; i++)
			ok = strcmp(r->tiers[i], held) == 0;
		if (!ok)
			return false;
	}
	return true;
}

static TimestampTz
local_to_ts(struct pg_tm *tm, pg_tz *tz)
{
	int			off = DetermineTimeZoneOffset(tm, tz);
	TimestampTz r;

	if (tm2timestamp(tm, 0, &off, &r) != 0)
		ereport(ERROR,
				(errcode(LY_INVALID_TIMESTAMP),
				 errmsg("timestamp out of range")));
	return r;
}

/* The start of the cap period containing the purchase, in the program's zone. */
static TimestampTz
cap_start(CapPeriod c, struct pg_tm *local, int wday, pg_tz *tz)
{
	struct pg_tm tm = *local;
	int			j;

	if (c == CAP_EVER)
		return DT_NOBEGIN;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (c == CAP_WEEK)
	{
		/* ISO weeks: from Monday 00:00 */
		j = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - (wday + 6) % 7;
		j2date(j, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	}
	else if (c == CAP_MONTH)
		tm.tm_mday = 1;
	else if (c == CAP_YEAR)
		tm.tm_mon = tm.tm_mday = 1;
	return local_to_ts(&tm, tz);
}

static char *
json_time(TimestampTz t)
{
	return ly_json_str(JsonEncodeDateTime(NULL, TimestampTzGetDatum(t), TIMESTAMPTZOID, NULL));
}

static Datum
ts_array(TimestampTz *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, TIMESTAMPTZOID, sizeof(TimestampTz),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static int64
round_points(Numeric n, Rounding r, const char *what)
{
	return ly_numeric_points(ly_div_rounded(n, int64_to_numeric(1), r), what);
}

/*
 * Book what fits of `want` under a rule's cap in its period, and return it: one
 * single-row update (the SET expressions see the old usage), or an insert for the
 * first use in the period. The member's lock makes the read and the write one step.
 */
static LyQuery q_use = {
	"UPDATE loyalty.rule_usage u SET points = u.points + least($4, greatest($5 - u.points, 0)), "
	"       last_given = least($4, greatest($5 - u.points, 0)) "
	" WHERE u.member_id = $1 AND u.rule_id = $2 AND u.period_start = $3 RETURNING u.last_given",
	5, {INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL};

/* the first use in a period (no one else writes this member's rows: we hold its lock) */
static LyQuery q_use_first = {
	"INSERT INTO loyalty.rule_usage (member_id, rule_id, period_start, points, last_given) "
	"VALUES ($1, $2, $3, least($4, $5), least($4, $5)) RETURNING last_given",
	5, {INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL};

/* Lines of a basket: an array of objects with amount (>= 0) and qty (>= 1, default 1). */
static Line *
parse_lines(JsonbValue *lv, Numeric amount, int *nlines)
{
	int			n,
				i;
	Line	   *lines;
	Numeric		sum = ly_num_zero();

	if (!is_container(lv, false))
		ereport(ERROR,
				(errcode(LY_INVALID_LINES),
				 errmsg("attrs.lines must be a JSON array of line objects")));
	n = JsonContainerSize(lv->val.binary.data);
	if (n < 1 || n > MAX_LINES)
		ereport(ERROR,
				(errcode(LY_INVALID_LINES),
				 errmsg("attrs.lines must have 1 to %d lines", MAX_LINES)));
	lines = palloc0(sizeof(Line) * n);
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(lv->val.binary.data, i);
		JsonbValue	buf;
		JsonbValue *a;
		JsonbValue *q;
		Numeric		t;

		if (!is_container(e, true))
			ereport(ERROR,
					(errcode(LY_INVALID_LINES),
					 errmsg("line %d of attrs.lines is not a JSON object", i + 1)));
		lines[i].obj = e->val.binary.data;
		a = getKeyJsonValueFromContainer(lines[i].obj, "amount", 6, &buf);
		if (a == NULL || a->type != jbvNumeric || numeric_is_nan(a->val.numeric) ||
			numeric_is_inf(a->val.numeric) || ly_num_cmp(a->val.numeric, ly_num_zero()) < 0)
			ereport(ERROR,
					(errcode(LY_INVALID_LINES),
					 errmsg("line %d of attrs.lines needs an \"amount\": a finite number of 0 or more", i + 1)));
		lines[i].amount = DatumGetNumericCopy(NumericGetDatum(a->val.numeric));
		sum = ly_num_add(sum, lines[i].amount);
		q = getKeyJsonValueFromContainer(lines[i].obj, "qty", 3, &buf);
		lines[i].qty = 1;
		if (q != NULL)
		{
			if (q->type != jbvNumeric || numeric_is_nan(q->val.numeric) || numeric_is_inf(q->val.numeric))
				t = NULL;
			else
				t = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(q->val.numeric),
														Int32GetDatum(0)));
			if (t == NULL || ly_num_cmp(t, q->val.numeric) != 0 ||
				ly_num_cmp(t, int64_to_numeric(1)) < 0 || ly_num_cmp(t, int64_to_numeric(1000000)) > 0)
				ereport(ERROR,
						(errcode(LY_INVALID_LINES),
						 errmsg("line %d of attrs.lines: \"qty\" must be a whole number from 1 to 1000000", i + 1)));
			lines[i].qty = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(t)));
		}
	}
	if (ly_num_cmp(sum, amount) != 0)
		ereport(ERROR,
				(errcode(LY_INVALID_LINES),
				 errmsg("the lines add up to %s, not to the purchase amount %s", ly_json_num(sum),
						ly_json_num(amount)),
				 errhint("Line amounts are what each line cost (qty included); they must add up to amount.")));
	*nlines = n;
	return lines;
}

/*
 * Points of a purchase under the program's rules. Writes cap usage (the caller
 * holds the member's lock) and appends the detail keys to *detail.
 */
int64
ly_rules_earn(Member *m, Numeric amount, Jsonb *attrs, TimestampTz at, Numeric tier_multiplier,
			  StringInfo detail)
{
	Program    *p = m->prog;
	RuleSet    *rs;
	JsonbValue	buf;
	JsonbValue *lv;
	Line	   *lines;
	int			nl;
	bool		basket;
	int			i,
				j,
				k;
	Numeric		rate = ly_num_mul(p->s.points_per_unit, tier_multiplier);
	int64		total = 0;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	int			wday;
	bool	   *active;
	int64	  **contrib;		/* [rule][line]: points the rule gave the line */
	bool	  **hit;			/* [rule][line]: the rule applies to the line */
	bool	   *lost;			/* [line * n + rule]: lost to a group rival */
	int64	   *given;			/* per rule */
	int64	   *bonus;			/* per rule, not tied to a line */
	Numeric    *spend;			/* per rule: amount of the lines it applied to */
	int64	   *capped;
	TimestampTz *period;
	int			napplied = 0;
	int			nexcluded = 0;
	StringInfoData why;

	lv = getKeyJsonValueFromContainer(&attrs->root, "lines", 5, &buf);
	basket = lv != NULL;
	if (basket)
		lines = parse_lines(lv, amount, &nl);
	else
	{
		nl = 1;
		lines = palloc0(sizeof(Line));
		lines[0].amount = amount;
		lines[0].qty = 1;
	}
	rs = program_rules(p->id);

	if (rs->n == 0 && !basket)
		return round_points(ly_num_mul(amount, rate), p->s.rounding, "the points earned");

	if (timestamp2tm(at, &tzoff, &tm, &fsec, NULL, p->tz) != 0)
		ereport(ERROR, (errcode(LY_INVALID_TIMESTAMP), errmsg("timestamp out of range")));
	wday = j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday));

	active = palloc0(sizeof(bool) * (rs->n + 1));
	contrib = palloc0(sizeof(int64 *) * (rs->n + 1));
	hit = palloc0(sizeof(bool *) * (rs->n + 1));
	lost = palloc0(sizeof(bool) * (rs->n * nl + 1));
	given = palloc0(sizeof(int64) * (rs->n + 1));
	bonus = palloc0(sizeof(int64) * (rs->n + 1));
	spend = palloc0(sizeof(Numeric) * (rs->n + 1));
	capped = palloc0(sizeof(int64) * (rs->n + 1));
	period = palloc0(sizeof(TimestampTz) * (rs->n + 1));
	for (i = 0; i < rs->n; i++)
		active[i] = rule_active(&rs->rules[i], m, at, &tm, wday);

	/* 1. exclusions */
	for (k = 0; k < nl; k++)
	{
		lines[k].excluded_by = -1;
		for (i = 0; i < rs->n && rs->rules[i].kind == RK_EXCLUDE; i++)
			if (active[i] && line_matches(&rs->rules[i], &lines[k], &attrs->root) &&
				(!rs->rules[i].segment_id || ly_member_in_segment(m, rs->rules[i].segment_id, at)))
			{
				lines[k].excluded_by = i;
				nexcluded++;
				break;
			}
	}

	/* which lines each rule applies to, and min_spend over them */
	for (i = 0; i < rs->n; i++)
	{
		Rule	   *r = &rs->rules[i];
		Numeric		matched = ly_num_zero();

		contrib[i] = palloc0(sizeof(int64) * nl);
		hit[i] = palloc0(sizeof(bool) * nl);
		if (r->kind == RK_EXCLUDE || !active[i])
			continue;
		active[i] = false;
		for (k = 0; k < nl; k++)
			if (lines[k].excluded_by < 0 && line_matches(r, &lines[k], &attrs->root))
			{
				hit[i][k] = true;
				matched = ly_num_add(matched, lines[k].amount);
				active[i] = true;
			}
		if (active[i] && r->min_spend && ly_num_cmp(matched, r->min_spend) < 0)
			active[i] = false;
		/* segments last: membership may cost a query (segments.c) */
		if (active[i] && r->segment_id && !ly_member_in_segment(m, r->segment_id, at))
			active[i] = false;
	}

	/* 2. base points and multipliers, per line */
	for (k = 0; k < nl; k++)
	{
		Line	   *l = &lines[k];
		Numeric		cum;

		if (l->excluded_by >= 0)
			continue;
		l->raw = ly_num_mul(l->amount, rate);
		l->base = l->points = round_points(l->raw, p->s.rounding, "the points earned");
		cum = l->raw;
		for (i = 0; i < rs->n; i++)
		{
			Rule	   *r = &rs->rules[i];
			int64		after;

			if (r->kind != RK_MULTIPLIER || !active[i] || !hit[i][k])
				continue;
			if (r->group)
			{
				/* best only within the group, for this line (ties: the first in order) */
				bool		beaten = false;

				for (j = 0; j < rs->n && !beaten; j++)
					beaten = j != i && rs->rules[j].kind == RK_MULTIPLIER && active[j] && hit[j][k] &&
						rs->rules[j].group && strcmp(rs->rules[j].group, r->group) == 0 &&
						(ly_num_cmp(rs->rules[j].factor, r->factor) > 0 ||
						 (ly_num_cmp(rs->rules[j].factor, r->factor) == 0 && j < i));
				if (beaten)
				{
					lost[k * rs->n + i] = true;
					continue;
				}
			}
			cum = ly_num_mul(cum, r->factor);
			after = round_points(cum, p->s.rounding, "the points earned");
			contrib[i][k] = after - l->points;
			l->points = after;
		}
	}
	/* a multiplier that lost to a group rival on a line did not apply there */
	for (i = 0; i < rs->n; i++)
		if (rs->rules[i].kind == RK_MULTIPLIER && active[i])
		{
			bool		any = false;

			for (k = 0; k < nl; k++)
			{
				if (lost[k * rs->n + i])
					hit[i][k] = false;
				any |= hit[i][k];
			}
			active[i] = any;
		}

	/* 3. additive rules: per_unit per line, bonus once per purchase */
	for (i = 0; i < rs->n; i++)
	{
		Rule	   *r = &rs->rules[i];

		if (!active[i])
			continue;
		if (r->kind == RK_BONUS)
			bonus[i] = ly_numeric_points(r->points, "a bonus");
		else if (r->kind == RK_PER_UNIT)
			for (k = 0; k < nl; k++)
				if (hit[i][k])
					contrib[i][k] = r->per_qty
						? round_points(ly_num_mul(int64_to_numeric(lines[k].qty), r->points), p->s.rounding,
									   "a per-unit bonus")
						: round_points(ly_num_mul(lines[k].amount, r->points), p->s.rounding,
									   "a per-unit bonus");
	}
	for (i = 0; i < rs->n; i++)
	{
		if (!active[i] || rs->rules[i].kind == RK_EXCLUDE)
			continue;
		given[i] = bonus[i];
		spend[i] = ly_num_zero();
		for (k = 0; k < nl; k++)
			if (hit[i][k])
			{
				given[i] = ly_add_points(given[i], contrib[i][k]);
				spend[i] = ly_num_add(spend[i], lines[k].amount);
			}
	}
	/* additive groups: only the rule giving the most (ties: the first in order) */
	for (i = 0; i < rs->n; i++)
	{
		Rule	   *r = &rs->rules[i];

		if (!active[i] || !r->group || (r->kind != RK_BONUS && r->kind != RK_PER_UNIT))
			continue;
		for (j = 0; j < rs->n; j++)
			if (j != i && active[j] && rs->rules[j].group && strcmp(rs->rules[j].group, r->group) == 0 &&
				(rs->rules[j].kind == RK_BONUS || rs->rules[j].kind == RK_PER_UNIT) &&
				(given[j] > given[i] || (given[j] == given[i] && j < i)))
			{
				active[i] = false;
				break;
			}
	}

	/* 4. caps: each capped rule gets what fits, booked at once */
	for (i = 0; i < rs->n; i++)
	{
		Rule	   *r = &rs->rules[i];
		Datum		v[5];
		int64		room;

		if (!active[i] || r->cap == CAP_NONE || given[i] <= 0)
			continue;
		period[i] = cap_start(r->cap, &tm, wday, p->tz);
		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(r->id);
		v[2] = TimestampTzGetDatum(period[i]);
		v[3] = Int64GetDatum(given[i]);
		v[4] = Int64GetDatum(r->cap_points);
		if (ly_run(&q_use, v, NULL, 0) != 1 && ly_run(&q_use_first, v, NULL, 0) != 1)
			elog(ERROR, "loyalty: cap usage of rule " INT64_FORMAT " not booked", r->id);
		room = ly_get_int64(0, 1);
		if (given[i] > room)
		{
			/* cut the bonus first, then lines from the last */
			int64		cut = given[i] - room;

			capped[i] = cut;
			given[i] = room;
			if (bonus[i] >= cut)
				bonus[i] -= cut, cut = 0;
			else
				cut -= bonus[i], bonus[i] = 0;
			for (k = nl - 1; k >= 0 && cut > 0; k--)
			{
				int64		c = Min(contrib[i][k], cut);

				contrib[i][k] -= c;
				cut -= c;
				if (r->kind == RK_MULTIPLIER)
					lines[k].points -= c;
			}
		}
	}

	/* 5. totals: a line has its base, its multipliers' and its per-unit points */
	for (k = 0; k < nl; k++)
	{
		if (lines[k].excluded_by >= 0)
			continue;
		for (i = 0; i < rs->n; i++)
			if (active[i] && rs->rules[i].kind == RK_PER_UNIT)
				lines[k].points = ly_add_points(lines[k].points, contrib[i][k]);
		total = ly_add_points(total, lines[k].points);
	}
	for (i = 0; i < rs->n; i++)
		if (active[i] && rs->rules[i].kind == RK_BONUS)
			total = ly_add_points(total, bonus[i]);

	/* 6. detail: base, each rule applied, lines, and the explanation */
	{
		int64		base = 0;

		for (k = 0; k < nl; k++)
			if (lines[k].excluded_by < 0)
				base += lines[k].base;
		initStringInfo(&why);
		appendStringInfo(&why, INT64_FORMAT " points: " INT64_FORMAT " base", total, base);
		appendStringInfo(detail, ", \"base_points\": " INT64_FORMAT ", \"rules\": [", base);
		for (i = 0; i < rs->n; i++)
		{
			Rule	   *r = &rs->rules[i];

			if (!active[i] || r->kind == RK_EXCLUDE)
				continue;
			appendStringInfo(detail, "%s{\"rule\": " INT64_FORMAT ", \"code\": %s, \"kind\": \"%s\", "
							 "\"points\": " INT64_FORMAT ", \"spend\": %s",
							 napplied++ ? ", " : "", r->id, ly_json_str(r->code), kind_names[r->kind],
							 given[i], ly_json_num(spend[i]));
			if (r->kind == RK_MULTIPLIER)
				appendStringInfo(detail, ", \"multiplier\": %s", ly_json_num(r->factor));
			if (r->cap != CAP_NONE)
				appendStringInfo(detail, ", \"cap_period\": %s, \"period_start\": %s",
								 ly_json_str(cap_names[r->cap]), json_time(period[i]));
			if (capped[i])
				appendStringInfo(detail, ", \"capped\": " INT64_FORMAT, capped[i]);
			appendStringInfoChar(detail, '}');
			appendStringInfo(&why, "; +" INT64_FORMAT " %s", given[i], r->name);
			if (r->kind == RK_MULTIPLIER)
				appendStringInfo(&why, " (x%s)", ly_json_num(r->factor));
			if (capped[i])
				appendStringInfo(&why, " (capped, " INT64_FORMAT " over the %s limit)", capped[i],
								 cap_names[r->cap]);
		}
		appendStringInfoChar(detail, ']');
		if (nexcluded > 0)
		{
			appendStringInfo(detail, ", \"excluded\": [");
			for (k = 0, j = 0; k < nl; k++)
				if (lines[k].excluded_by >= 0)
				{
					Rule	   *r = &rs->rules[lines[k].excluded_by];

					appendStringInfo(detail, "%s{\"line\": %d, \"rule\": " INT64_FORMAT ", \"code\": %s}",
									 j++ ? ", " : "", basket ? k + 1 : 0, r->id, ly_json_str(r->code));
					if (basket)
						appendStringInfo(&why, "; line %d earns nothing (%s)", k + 1, r->name);
					else
						appendStringInfo(&why, "; earns nothing (%s)", r->name);
				}
			appendStringInfoChar(detail, ']');
		}
		if (basket)
		{
			appendStringInfoString(detail, ", \"lines\": [");
			for (k = 0; k < nl; k++)
			{
				bool		first = true;

				appendStringInfo(detail, "%s{\"line\": %d, \"amount\": %s, \"qty\": " INT64_FORMAT
								 ", \"points\": " INT64_FORMAT ", \"rules\": {",
								 k ? ", " : "", k + 1, ly_json_num(lines[k].amount), lines[k].qty,
								 lines[k].points);
				for (i = 0; i < rs->n; i++)
					if (active[i] && hit[i][k] && rs->rules[i].kind != RK_BONUS && contrib[i][k] > 0)
					{
						appendStringInfo(detail, "%s\"" INT64_FORMAT "\": " INT64_FORMAT,
										 first ? "" : ", ", rs->rules[i].id, contrib[i][k]);
						first = false;
					}
				appendStringInfoString(detail, "}}");
			}
			appendStringInfoChar(detail, ']');
		}
		appendStringInfo(detail, ", \"explanation\": %s", ly_json_str(why.data));
	}
	return total;
}

/* ------------------------------------------------------------------------
 * refunds: which rules gave the points taken back; cap usage returned
 * ------------------------------------------------------------------------ */

static LyQuery q_prior_rules = {
	"SELECT (x ->> 'rule')::bigint, -sum((x ->> 'points')::bigint)::bigint "
	"  FROM loyalty.entry r CROSS JOIN LATERAL jsonb_array_elements(r.detail -> 'rules') x "
	" WHERE r.member_id = $1 AND r.ref_entry_id = $2 AND r.kind = 'reverse' AND r.detail ? 'rules' "
	" GROUP BY 1", 2, {INT8OID, INT8OID}, NULL};

static LyQuery q_unuse = {
	"UPDATE loyalty.rule_usage u SET points = greatest(u.points - t.n, 0) "
	"  FROM unnest($2::bigint[], $3::timestamptz[], $4::bigint[]) AS t(r, p, n) "
	" WHERE u.member_id = $1 AND u.rule_id = t.r AND u.period_start = t.p",
	4, {INT8OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID}, NULL};

static int64
jint(JsonbContainer *c, const char *key, bool *found)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), &buf);

	if (found)
		*found = v != NULL;
	if (v == NULL || v->type != jbvNumeric)
		return 0;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

static char *
jtext(JsonbContainer *c, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), &buf);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A JSON whole number from 0 to 10^9, else -1. */
static int64
whole(JsonbValue *v)
{
	Numeric		n;

	if (v == NULL || v->type != jbvNumeric)
		return -1;
	n = v->val.numeric;
	if (numeric_is_nan(n) || numeric_is_inf(n) || ly_num_cmp(n, ly_num_zero()) < 0 ||
		ly_num_cmp(n, int64_to_numeric(1000000000)) > 0 ||
		ly_num_cmp(n, DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(n),
														  Int32GetDatum(0)))) != 0)
		return -1;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
}

/* floor(p * num / den), exactly */
static int64
share(int64 p, Numeric num, Numeric den)
{
	return ly_numeric_points(ly_div_rounded(ly_num_mul(int64_to_numeric(p), num), den, ROUND_FLOOR),
							 "a rule's share");
}

/*
 * Split `due` (the points this refund takes back) over the rules of the
 * purchase: a full refund takes what is left of each; otherwise each rule its
 * share (cumulative, rounded down) or, for line returns, what those lines got
 * from it (cand, by rule id). Rounding leftovers count against the base points.
 * Cap usage goes back to the period the purchase booked it in.
 */
void
ly_rules_refund(Member *m, int64 purchase_entry_id, Jsonb *purchase_detail, int64 earned,
				int64 due, bool full, Numeric cumulative, Numeric paid, RuleTake *cand,
				StringInfo detail)
{
	JsonbValue	buf;
	JsonbValue *rv = getKeyJsonValueFromContainer(&purchase_detail->root, "rules", 5, &buf);
	int			n,
				i,
				np;
	uint64		u,
				nprior;
	int64	   *prior;
	int64	   *take;
	int64		left = due;
	int64	   *ids;
	int64	   *pts;
	TimestampTz *starts;
	int			nu = 0;
	bool		first = true;
	Datum		v[4];
	StringInfoData why;

	(void) earned;
	if (rv == NULL || !is_container(rv, false) || (n = JsonContainerSize(rv->val.binary.data)) == 0)
		return;
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(purchase_entry_id);
	nprior = ly_run(&q_prior_rules, v, NULL, 0);
	prior = palloc0(sizeof(int64) * n);
	take = palloc0(sizeof(int64) * n);
	ids = palloc(sizeof(int64) * n);
	pts = palloc(sizeof(int64) * n);
	starts = palloc(sizeof(TimestampTz) * n);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *r = getIthJsonbValueFromContainer(rv->val.binary.data, i)->val.binary.data;
		int64		id = jint(r, "rule", NULL);

		for (u = 0; u < nprior; u++)
			if (ly_get_int64(u, 1) == id)
				prior[i] = ly_get_int64(u, 2);
	}
	for (i = 0; i < n; i++)
	{
		JsonbContainer *r = getIthJsonbValueFromContainer(rv->val.binary.data, i)->val.binary.data;
		int64		id = jint(r, "rule", NULL);
		int64		given = jint(r, "points", NULL);
		int64		rest = Max(given - prior[i], 0);
		int64		t;

		if (full)
			t = rest;
		else if (cand)
		{
			t = 0;
			for (np = 0; np < cand->n; np++)
				if (cand->rule[np] == id)
					t += cand->points[np];
		}
		else
			t = share(given, cumulative, paid) - prior[i];
		t = Max(Min(t, rest), 0);
		t = Min(t, left);
		left -= t;
		take[i] = t;
		if (t > 0)
		{
			char	   *ps = jtext(r, "period_start");

			if (ps)
			{
				ids[nu] = id;
				pts[nu] = t;
				starts[nu++] = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(ps),
																	   ObjectIdGetDatum(InvalidOid),
																	   Int32GetDatum(-1)));
			}
		}
	}
	if (nu > 0)
	{
		v[1] = ly_int8_array(ids, nu);
		v[2] = ts_array(starts, nu);
		v[3] = ly_int8_array(pts, nu);
		ly_run(&q_unuse, v, NULL, 0);
	}
	initStringInfo(&why);
	appendStringInfo(&why, INT64_FORMAT " points back: " INT64_FORMAT " base", due, left);
	appendStringInfoString(detail, ", \"rules\": [");
	for (i = 0; i < n; i++)
	{
		JsonbContainer *r = getIthJsonbValueFromContainer(rv->val.binary.data, i)->val.binary.data;

		if (take[i] == 0)
			continue;
		appendStringInfo(detail, "%s{\"rule\": " INT64_FORMAT ", \"code\": %s, \"points\": " INT64_FORMAT "}",
						 first ? "" : ", ", jint(r, "rule", NULL), ly_json_str(jtext(r, "code")), -take[i]);
		appendStringInfo(&why, "; " INT64_FORMAT " %s", take[i], jtext(r, "code"));
		first = false;
	}
	appendStringInfoChar(detail, ']');
	appendStringInfo(detail, ", \"explanation\": %s", ly_json_str(why.data));
}

/* ------------------------------------------------------------------------
 * line returns
 * ------------------------------------------------------------------------ */

static LyQuery q_prior_lines = {
	"SELECT (x ->> 'line')::integer, sum((x ->> 'qty')::bigint)::bigint "
	"  FROM loyalty.entry r CROSS JOIN LATERAL jsonb_array_elements(r.detail -> 'returned_lines') x "
	" WHERE r.member_id = $1 AND r.ref_entry_id = $2 AND r.kind = 'reverse' AND r.detail ? 'returned_lines' "
	" GROUP BY 1", 2, {INT8OID, INT8OID}, NULL};

/* a share of a line's amount, to the line amount's decimals (at least 2) */
static Numeric
money_round(Numeric n, Numeric like)
{
	int32		scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(like)));

	return DatumGetNumeric(DirectFunctionCall2(numeric_round, NumericGetDatum(n),
											   Int32GetDatum(Max(scale, 2))));
}

static void
bad_return(const char *msg, int line)
{
	ereport(ERROR,
			(errcode(LY_INVALID_RETURN),
			 errmsg(msg, line)));
}

/*
 * The lines a reverse_lines call returns: [{"line": N, "qty": Q}] (qty
 * defaults to what is left of the line). Sets the money refunded, the points
 * those lines got (cumulative share of each line, so returning a line in parts
 * adds up to the line), and what each rule gave them; appends
 * "returned_lines" to *detail.
 */
void
ly_lines_return(Member *m, int64 purchase_entry_id, Jsonb *purchase_detail, Jsonb *ret,
				Numeric *amount, int64 *points, RuleTake *cand, StringInfo detail)
{
	JsonbValue	buf;
	JsonbValue *lv = getKeyJsonValueFromContainer(&purchase_detail->root, "lines", 5, &buf);
	JsonbContainer *pl;
	int			nl,
				nr,
				i,
				k;
	int64	   *returned;
	bool	   *seen;
	uint64		u,
				nprior;
	Datum		v[2];
	Numeric		total = ly_num_zero();
	int64		pts = 0;

	if (lv == NULL || !is_container(lv, false))
		ereport(ERROR,
				(errcode(LY_INVALID_RETURN),
				 errmsg("the purchase has no lines"),
				 errhint("reverse_lines returns lines of a purchase earned with attrs.lines; use reverse for an amount.")));
	if (!JB_ROOT_IS_ARRAY(ret) || JB_ROOT_IS_SCALAR(ret))
		ereport(ERROR,
				(errcode(LY_INVALID_RETURN),
				 errmsg("lines must be a JSON array such as [{\"line\": 1}, {\"line\": 3, \"qty\": 1}]")));
	pl = lv->val.binary.data;
	nl = JsonContainerSize(pl);
	nr = JsonContainerSize(&ret->root);
	if (nr < 1 || nr > MAX_LINES)
		ereport(ERROR,
				(errcode(LY_INVALID_RETURN),
				 errmsg("lines must name 1 to %d lines", MAX_LINES)));
	returned = palloc0(sizeof(int64) * nl);
	seen = palloc0(sizeof(bool) * nl);
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(purchase_entry_id);
	nprior = ly_run(&q_prior_lines, v, NULL, 0);
	for (u = 0; u < nprior; u++)
	{
		int64		ln = ly_get_int64(u, 1);

		if (ln >= 1 && ln <= nl)
			returned[ln - 1] = ly_get_int64(u, 2);
	}
	cand->n = 0;
	cand->rule = palloc(sizeof(int64) * 64);
	cand->points = palloc(sizeof(int64) * 64);
	appendStringInfoString(detail, ", \"returned_lines\": [");
	for (i = 0; i < nr; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(&ret->root, i);
		JsonbContainer *line;
		JsonbContainer *c;
		int64		ln;
		int64		qty;
		int64		lqty;
		int64		lpts;
		Numeric		lamount;
		Numeric		before;
		Numeric		after;
		Numeric		nq;
		JsonbValue	b2;
		JsonbValue *rules;
		JsonbIterator *it;
		JsonbValue	rv;
		JsonbIteratorToken tok;
		int64		got;

		if (!is_container(e, true))
			bad_return("element %d of lines is not a JSON object", i + 1);
		c = e->val.binary.data;
		ln = whole(getKeyJsonValueFromContainer(c, "line", 4, &b2));
		if (ln < 0)
			bad_return("element %d of lines needs \"line\": a line number of the purchase", i + 1);
		if (ln < 1 || ln > nl)
			ereport(ERROR,
					(errcode(LY_INVALID_RETURN),
					 errmsg("the purchase has no line " INT64_FORMAT, ln),
					 errdetail("It has %d lines.", nl)));
		if (seen[ln - 1])
			bad_return("line %d is named twice", (int) ln);
		seen[ln - 1] = true;
		line = getIthJsonbValueFromContainer(pl, ln - 1)->val.binary.data;
		lqty = jint(line, "qty", NULL);
		lpts = jint(line, "points", NULL);
		{
			JsonbValue *a = getKeyJsonValueFromContainer(line, "amount", 6, &b2);

			lamount = DatumGetNumericCopy(NumericGetDatum(a->val.numeric));
		}
		{
			JsonbValue *q = getKeyJsonValueFromContainer(c, "qty", 3, &b2);

			qty = q ? whole(q) : lqty - returned[ln - 1];
		}
		if (qty < 1 || qty > lqty - returned[ln - 1])
			ereport(ERROR,
					(errcode(LY_INVALID_RETURN),
					 errmsg("line " INT64_FORMAT " has " INT64_FORMAT " of " INT64_FORMAT " items left to return",
							ln, lqty - returned[ln - 1], lqty),
					 errdetail("The return asked for " INT64_FORMAT ".", qty)));
		/* cumulative shares, so a line returned in parts adds up to the whole line */
		nq = int64_to_numeric(lqty);
		before = DatumGetNumeric(DirectFunctionCall2(numeric_div, NumericGetDatum(ly_num_mul(lamount, int64_to_numeric(returned[ln - 1]))), NumericGetDatum(nq)));
		after = returned[ln - 1] + qty == lqty ? lamount
			: DatumGetNumeric(DirectFunctionCall2(numeric_div, NumericGetDatum(ly_num_mul(lamount, int64_to_numeric(returned[ln - 1] + qty))), NumericGetDatum(nq)));
		if (returned[ln - 1] == 0)
			before = ly_num_zero();
		else
			before = money_round(before, lamount);
		if (returned[ln - 1] + qty != lqty)
			after = money_round(after, lamount);
		total = ly_num_add(total, ly_num_sub(after, before));
		got = share(lpts, int64_to_numeric(returned[ln - 1] + qty), nq) -
			share(lpts, int64_to_numeric(returned[ln - 1]), nq);
		pts += got;
		rules = getKeyJsonValueFromContainer(line, "rules", 5, &b2);
		if (rules && is_container(rules, true))
		{
			it = JsonbIteratorInit(rules->val.binary.data);
			while ((tok = JsonbIteratorNext(&it, &rv, true)) != WJB_DONE)
			{
				int64		rid;
				int64		rp;

				if (tok != WJB_KEY)
					continue;
				rid = strtoi64(pnstrdup(rv.val.string.val, rv.val.string.len), NULL, 10);
				tok = JsonbIteratorNext(&it, &rv, true);
				rp = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(rv.val.numeric)));
				if (cand->n % 64 == 0 && cand->n > 0)
				{
					cand->rule = repalloc(cand->rule, sizeof(int64) * (cand->n + 64));
					cand->points = repalloc(cand->points, sizeof(int64) * (cand->n + 64));
				}
				cand->rule[cand->n] = rid;
				cand->points[cand->n++] = share(rp, int64_to_numeric(returned[ln - 1] + qty), nq) -
					share(rp, int64_to_numeric(returned[ln - 1]), nq);
			}
		}
		appendStringInfo(detail, "%s{\"line\": " INT64_FORMAT ", \"qty\": " INT64_FORMAT ", \"amount\": %s, "
						 "\"points\": " INT64_FORMAT "}", i ? ", " : "", ln, qty,
						 ly_json_num(ly_num_sub(after, before)), got);
	}
	appendStringInfoChar(detail, ']');
	(void) k;
	*amount = total;
	*points = pts;
}
