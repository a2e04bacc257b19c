/*
 * segments.c: member segments (issue 4).
 *
 * A segment is a conjunction of criteria over a member's history: tier,
 * lifetime visits, tenure, recency (days since the last purchase), frequency
 * (purchases in the last N days), spend (lifetime or last N days) and
 * favourite category. The rules engine asks ly_member_in_segment during an
 * earn, so it must be cheap:
 *   - segments are cached per backend (dropped by a relcache invalidation of
 *     loyalty.segment, like the program cache);
 *   - tier, lifetime spend and visits come from the locked member row;
 *   - windowed figures come from loyalty.purchase_day, a per-member, per-local-day,
 *     per-category rollup kept by the purchase and refund hooks, read by
 *     primary-key range scans. It is only written for programs that have
 *     segments, and add_segment fills it from the ledger for a program's
 *     first segment (see lock_program).
 */
#include "loyalty.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct Segment
{
	int64		id;
	int64		program_id;
	int			ntiers;
	char	  **tiers;
	int			recency_min;	/* -1: none */
	int			recency_max;
	int			freq_days;		/* 0: no frequency criterion */
	int			freq_min;
	int			freq_max;
	int			spend_days;		/* 0: lifetime */
	Numeric		spend_min;		/* NULL: none */
	Numeric		spend_max;
	int			ncats;
	char	  **cats;
	int			cat_days;		/* 0: all time */
	int			tenure_min;
	int			tenure_max;
	int64		visits_min;		/* -1: none */
	int64		visits_max;
} Segment;

static MemoryContext seg_cxt = NULL;
static Segment *segs = NULL;
static int	nsegs = -1;			/* -1: not loaded */
static Oid	segment_relid = InvalidOid;
static bool seg_callback = false;

static void
seg_reset(Datum arg, Oid relid)
{
	(void) arg;
	/* not knowing our relation's oid yet, any invalidation drops the cache */
	if (relid != InvalidOid && OidIsValid(segment_relid) && relid != segment_relid)
		return;
	/* freed at the next load, not here: an evaluation may be using a segment */
	nsegs = -1;
}

static LyQuery q_segments = {
	"SELECT id, program_id, tiers, recency_min_days, recency_max_days, frequency_days, "
	"       frequency_min, frequency_max, spend_days, spend_min, spend_max, categories, "
	"       category_days, tenure_min_days, tenure_max_days, visits_min, visits_max "
	"  FROM loyalty.segment ORDER BY id", 0, {0}, NULL};

static int
int_or(uint64 row, int col, int dflt)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

static char **
text_array(uint64 row, int col, int *n)
{
	bool		isnull;
	Datum		d = ly_get(row, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;
	int			i;

	*n = 0;
	if (isnull)
		return NULL;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * (*n > 0 ? *n : 1));
	for (i = 0; i < *n; i++)
		out[i] = TextDatumGetCString(elems[i]);
	return out;
}

/* Load every segment (there are few) once per backend, until loyalty.segment changes. */
static void
load_segments(void)
{
	uint64		i;
	MemoryContext old;

	AcceptInvalidationMessages();
	if (nsegs >= 0 && !IsolationUsesXactSnapshot())
		return;
	if (!seg_callback)
	{
		CacheRegisterRelcacheCallback(seg_reset, (Datum) 0);
		seg_callback = true;
	}
	if (seg_cxt == NULL)
		seg_cxt = AllocSetContextCreate(CacheMemoryContext, "loyalty segments", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(seg_cxt);
	/* looked up at each load: the extension may have been dropped and created again */
	segment_relid = get_relname_relid("segment", get_namespace_oid("loyalty", false));
	ly_run(&q_segments, NULL, NULL, 0);
	old = MemoryContextSwitchTo(seg_cxt);
	segs = palloc0(sizeof(Segment) * (SPI_processed > 0 ? SPI_processed : 1));
	for (i = 0; i < SPI_processed; i++)
	{
		Segment    *s = &segs[i];
		bool		isnull;
		Datum		d;

		s->id = ly_get_int64(i, 1);
		s->program_id = ly_get_int64(i, 2);
		s->tiers = text_array(i, 3, &s->ntiers);
		s->recency_min = int_or(i, 4, -1);
		s->recency_max = int_or(i, 5, -1);
		s->freq_days = int_or(i, 6, 0);
		s->freq_min = int_or(i, 7, -1);
		s->freq_max = int_or(i, 8, -1);
		s->spend_days = int_or(i, 9, 0);
		d = ly_get(i, 10, &isnull);
		s->spend_min = isnull ? NULL : DatumGetNumericCopy(d);
		d = ly_get(i, 11, &isnull);
		s->spend_max = isnull ? NULL : DatumGetNumericCopy(d);
		s->cats = text_array(i, 12, &s->ncats);
		s->cat_days = int_or(i, 13, 0);
		s->tenure_min = int_or(i, 14, -1);
		s->tenure_max = int_or(i, 15, -1);
		d = ly_get(i, 16, &isnull);
		s->visits_min = isnull ? -1 : DatumGetInt64(d);
		d = ly_get(i, 17, &isnull);
		s->visits_max = isnull ? -1 : DatumGetInt64(d);
	}
	nsegs = (int) SPI_processed;
	MemoryContextSwitchTo(old);
}

static bool
program_has_segments(int64 program_id)
{
	int			i;

	load_segments();
	for (i = 0; i < nsegs; i++)
		if (segs[i].program_id == program_id)
			return true;
	return false;
}

/* ---- evaluation ---- */

/* windowed figures from the rollup; days counted in the program's calendar */
static LyQuery q_window = {
	"SELECT coalesce(sum(purchases), 0)::bigint, coalesce(sum(spend), 0) FROM loyalty.purchase_day "
	" WHERE member_id = $1 AND day > ($2 AT TIME ZONE $3)::date - $4 AND day <= ($2 AT TIME ZONE $3)::date",
	4, {INT8OID, TIMESTAMPTZOID, TEXTOID, INT4OID}, NULL};

static LyQuery q_last_purchase = {
	"SELECT ($2 AT TIME ZONE $3)::date - max(day) FROM loyalty.purchase_day "
	" WHERE member_id = $1 AND purchases > 0 AND day <= ($2 AT TIME ZONE $3)::date",
	3, {INT8OID, TIMESTAMPTZOID, TEXTOID}, NULL};

static LyQuery q_favourite = {
	"SELECT category FROM loyalty.purchase_day "
	" WHERE member_id = $1 AND category <> '' AND day <= ($2 AT TIME ZONE $3)::date "
	"   AND ($4 = 0 OR day > ($2 AT TIME ZONE $3)::date - $4) "
	" GROUP BY category HAVING sum(spend) > 0 "
	" ORDER BY sum(spend) DESC, sum(purchases) DESC, category LIMIT 1",
	4, {INT8OID, TIMESTAMPTZOID, TEXTOID, INT4OID}, NULL};

static LyQuery q_tenure = {
	"SELECT ($2 AT TIME ZONE $3)::date - (enrolled_at AT TIME ZONE $3)::date "
	"  FROM loyalty.member WHERE id = $1", 3, {INT8OID, TIMESTAMPTZOID, TEXTOID}, NULL};

static bool
in_range_int(int64 v, int64 lo, int64 hi)
{
	return (lo < 0 || v >= lo) && (hi < 0 || v <= hi);
}

static bool
in_range_num(Numeric v, Numeric lo, Numeric hi)
{
	return (lo == NULL || ly_num_cmp(v, lo) >= 0) && (hi == NULL || ly_num_cmp(v, hi) <= 0);
}

/*
 * Does the member (fields of the member row) belong to segment s at `at`?
 * Cheap criteria first; a query only for criteria that need one.
 */
static bool
evaluate(Segment *s, int64 member_id, const char *tz, const char *tier, Numeric lifetime_spend,
		 int64 visits, TimestampTz at)
{
	Datum		v[4];
	bool		isnull;

	if (s->ntiers > 0)
	{
		int			i;
		bool		found = false;

		for (i = 0; i < s->ntiers && !found; i++)
			found = strcmp(s->tiers[i], tier) == 0;
		if (!found)
			return false;
	}
	if (!in_range_int(visits, s->visits_min, s->visits_max))
		return false;
	if (s->spend_days == 0 && !in_range_num(lifetime_spend, s->spend_min, s->spend_max))
		return false;

	v[0] = Int64GetDatum(member_id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = CStringGetTextDatum(tz);
	if (s->tenure_min >= 0 || s->tenure_max >= 0)
	{
		if (ly_run(&q_tenure, v, NULL, 1) != 1)
			return false;
		if (!in_range_int(DatumGetInt32(ly_get(0, 1, &isnull)), s->tenure_min, s->tenure_max))
			return false;
	}
	if (s->recency_min >= 0 || s->recency_max >= 0)
	{
		Datum		d;

		ly_run(&q_last_purchase, v, NULL, 1);
		d = ly_get(0, 1, &isnull);
		if (isnull)
		{
			/* never bought: as lapsed as can be, never recent */
			if (s->recency_max >= 0)
				return false;
		}
		else if (!in_range_int(DatumGetInt32(d), s->recency_min, s->recency_max))
			return false;
	}
	if (s->freq_days > 0)
	{
		v[3] = Int32GetDatum(s->freq_days);
		ly_run(&q_window, v, NULL, 1);
		if (!in_range_int(ly_get_int64(0, 1), s->freq_min, s->freq_max))
			return false;
	}
	if (s->spend_days > 0)
	{
		v[3] = Int32GetDatum(s->spend_days);
		ly_run(&q_window, v, NULL, 1);
		if (!in_range_num(ly_get_numeric(0, 2), s->spend_min, s->spend_max))
			return false;
	}
	if (s->ncats > 0)
	{
		char	   *fav;
		int			i;
		bool		found = false;

		v[3] = Int32GetDatum(s->cat_days);
		if (ly_run(&q_favourite, v, NULL, 1) != 1)
			return false;
		fav = ly_get_text(0, 1);
		for (i = 0; i < s->ncats && !found; i++)
			found = strcmp(s->cats[i], fav) == 0;
		if (!found)
			return false;
	}
	return true;
}

static Segment *
find_segment(int64 segment_id)
{
	int			i;

	load_segments();
	for (i = 0; i < nsegs; i++)
		if (segs[i].id == segment_id)
			return &segs[i];
	return NULL;
}

/* Called by the rules engine with the member locked (inside SPI). */
bool
ly_member_in_segment(Member *m, int64 segment_id, TimestampTz at)
{
	Segment    *s = find_segment(segment_id);

	if (s == NULL || s->program_id != m->prog->id)
		return false;
	return evaluate(s, m->id, m->prog->s.timezone, ly_tier_code(m), m->lifetime_spend,
					m->lifetime_visits, at);
}

static LyQuery q_member_row = {
	"SELECT m.program_id, p.timezone, t.code, m.lifetime_spend, m.lifetime_visits "
	"  FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id "
	"  JOIN loyalty.tier t ON t.id = m.tier_id WHERE m.id = $1", 1, {INT8OID}, NULL};

/* in_segment(member, segment, at): the same test for reading functions, without locking */
PG_FUNCTION_INFO_V1(loyalty_in_segment);
Datum
loyalty_in_segment(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	int64		segment_id = ly_arg_id(fcinfo, 1, "segment");
	TimestampTz at = ly_arg_at(fcinfo, 2);
	Segment    *s;
	Datum		arg = Int64GetDatum(member_id);
	bool		result = false;

	SPI_connect();
	if (ly_run(&q_member_row, &arg, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_MEMBER),
				 errmsg("member %lld does not exist", (long long) member_id)));
	{
		int64		program_id = ly_get_int64(0, 1);
		char	   *tz = ly_get_text(0, 2);
		char	   *tier = ly_get_text(0, 3);
		Numeric		spend = ly_get_numeric(0, 4);
		int64		visits = ly_get_int64(0, 5);

		s = find_segment(segment_id);
		if (s == NULL)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_SEGMENT),
					 errmsg("segment %lld does not exist", (long long) segment_id)));
		if (s->program_id == program_id)
			result = evaluate(s, member_id, tz, tier, spend, visits, at);
	}
	SPI_finish();
	PG_RETURN_BOOL(result);
}

/* ---- the rollup ---- */

static LyQuery q_add_day = {
	"INSERT INTO loyalty.purchase_day AS d (member_id, day, category, purchases, spend) "
	"VALUES ($1, ($2 AT TIME ZONE $3)::date, $4, 1, $5) "
	"ON CONFLICT (member_id, day, category) DO UPDATE "
	"   SET purchases = d.purchases + 1, spend = d.spend + excluded.spend",
	5, {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NUMERICOID}, NULL};

/* a purchase's category: attrs.category if a string of 1 to 512 bytes, else '' */
static char *
category_of(Jsonb *attrs)
{
	JsonbValue	key;
	JsonbValue *v;

	if (attrs == NULL || !JB_ROOT_IS_OBJECT(attrs))
		return "";
	key.type = jbvString;
	key.val.string.val = "category";
	key.val.string.len = 8;
	v = findJsonbValueFromContainer(&attrs->root, JB_FOBJECT, &key);
	if (v == NULL || v->type != jbvString || v->val.string.len == 0 || v->val.string.len > LY_MAX_NAME)
		return "";
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Every purchase and refund holds a shared lock keyed by its program until it
 * commits; a program's first add_segment takes it exclusively before filling the
 * rollup from the ledger, so it waits for the purchases in flight and the ones
 * after it see the segment and keep the rollup themselves: none is missed or
 * counted twice. Only that program's purchases pause, for the time of the fill.
 * The key is pg_advisory_xact_lock(int4, int4)'s, first key 0x4C5A in its high
 * half. False before the 1.1 schema.
 */
static bool
lock_program(int64 program_id)
{
	LOCKTAG		tag;

	if (!ly_growth_installed())
		return false;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 (uint32) (0x4C5A0000 | (((uint64) program_id >> 32) & 0xFFFF)),
						 (uint32) ((uint64) program_id & 0xFFFFFFFF), 2);
	(void) LockAcquire(&tag, ShareLock, false, false);
	return true;
}

void
ly_segment_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	Datum		v[5];

	if (!lock_program(op->m->prog->id) || !program_has_segments(op->m->prog->id) || purchase->amount == NULL)
		return;
	v[0] = Int64GetDatum(op->m->id);
	v[1] = TimestampTzGetDatum(purchase->at);
	v[2] = CStringGetTextDatum(op->m->prog->s.timezone);
	v[3] = CStringGetTextDatum(category_of(attrs));
	v[4] = NumericGetDatum(purchase->amount);
	ly_run(&q_add_day, v, NULL, 0);
}

static LyQuery q_refund_day = {
	"UPDATE loyalty.purchase_day d "
	"   SET purchases = d.purchases - CASE WHEN $3 THEN 1 ELSE 0 END, spend = d.spend - $4 "
	"  FROM loyalty.entry e "
	" WHERE e.member_id = $1 AND e.id = $2 AND d.member_id = $1 "
	"   AND d.day = (e.at AT TIME ZONE $5)::date "
	"   AND d.category = CASE WHEN jsonb_typeof(e.request -> 'attrs' -> 'category') = 'string' "
	"                          AND octet_length(e.request -> 'attrs' ->> 'category') BETWEEN 1 AND 512 "
	"                         THEN e.request -> 'attrs' ->> 'category' ELSE '' END",
	5, {INT8OID, INT8OID, BOOLOID, NUMERICOID, TEXTOID}, NULL};

void
ly_segment_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
				  bool full)
{
	Datum		v[5];

	(void) refund;
	if (!lock_program(op->m->prog->id) || !program_has_segments(op->m->prog->id))
		return;
	v[0] = Int64GetDatum(op->m->id);
	v[1] = Int64GetDatum(purchase_entry_id);
	v[2] = BoolGetDatum(full);
	v[3] = NumericGetDatum(refunded_amount);
	v[4] = CStringGetTextDatum(op->m->prog->s.timezone);
	ly_run(&q_refund_day, v, NULL, 0);
}

/* ---- rewards for a segment ---- */

static LyQuery q_reward_segment = {
	"SELECT rs.segment_id, s.code FROM loyalty.reward_segment rs "
	"  JOIN loyalty.segment s ON s.id = rs.segment_id WHERE rs.reward_id = $1", 1, {INT8OID}, NULL};

/* redeem_reward calls this (member locked): a reward set for a segment is for its members only */
void
ly_check_reward_segment(Member *m, int64 reward_id, const char *reward, TimestampTz at)
{
	Datum		v = Int64GetDatum(reward_id);
	int64		segment_id;
	char	   *code;

	if (!ly_growth_installed() || ly_run(&q_reward_segment, &v, NULL, 1) != 1)
		return;
	segment_id = ly_get_int64(0, 1);
	code = ly_get_text(0, 2);
	if (!ly_member_in_segment(m, segment_id, at))
		ereport(ERROR,
				(errcode(LY_REWARD_SEGMENT),
				 errmsg("reward \"%s\" is for members of segment \"%s\"", reward, code)));
}
