/*
 * engagement.c: stamp cards, challenges and badges (issue 4).
 *
 * Both hooks run inside earn and reverse, with the member locked, after the
 * purchase or refund entry is written and before the member is saved. The member
 * lock is what makes a card fill, or a challenge complete, exactly once: two
 * purchases of one member never run these hooks at the same time.
 *
 * Earn replays never reach the hooks, so whatever a purchase writes here is
 * written once. Ledger entries written here (award entries for the points a
 * full card or a completed challenge pays) carry keys derived from the purchase
 * key ("<key>/stamp-card/<code>", "<key>/challenge/<code>"), unique per member
 * like every key, and point back to the purchase with ref_entry_id. Refunds find
 * what a purchase gave through the stamp log and the challenge credits, never
 * through keys, and give back progress only: a reward paid stays paid.
 *
 * Programs without cards or challenges pay nothing on earn: each backend keeps
 * a small cache of which programs have any, dropped when the definitions change.
 */
#include "loyalty.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* a hostile qty must not write a million vouchers: stamps per purchase and card */
#define MAX_STAMPS_PER_PURCHASE 1000

/* ---- which programs have cards or challenges (per-backend cache) ---- */

typedef struct EngFlags
{
	int64		program_id;		/* hash key */
	bool		cards;
	bool		challenges;
} EngFlags;

static HTAB *flags_cache = NULL;
static MemoryContext flags_cxt = NULL;
static Oid	card_relid = InvalidOid;
static Oid	challenge_relid = InvalidOid;
static bool flags_callback = false;

static void
flags_reset(Datum arg, Oid relid)
{
	(void) arg;
	if (relid != InvalidOid && relid != card_relid && relid != challenge_relid)
		return;
	if (flags_cxt)
		MemoryContextReset(flags_cxt);
	flags_cache = NULL;
	card_relid = challenge_relid = InvalidOid;
}

static bool
flags_open(void)
{
	Oid			nsp;
	HASHCTL		ctl;

	if (flags_cache != NULL)
		return true;
	if (!flags_callback)
	{
		CacheRegisterRelcacheCallback(flags_reset, (Datum) 0);
		flags_callback = true;
	}
	nsp = get_namespace_oid("loyalty", true);
	if (!OidIsValid(nsp))
		return false;
	card_relid = get_relname_relid("stamp_card", nsp);
	challenge_relid = get_relname_relid("challenge", nsp);
	if (!OidIsValid(card_relid) || !OidIsValid(challenge_relid))
		return false;
	if (flags_cxt == NULL)
		flags_cxt = AllocSetContextCreate(CacheMemoryContext, "loyalty engagement cache",
										  ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(EngFlags);
	ctl.hcxt = flags_cxt;
	flags_cache = hash_create("loyalty engagement", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return true;
}

/* any definition, active or not: a refund still takes back what an old card gave */
static LyQuery q_flags = {
	"SELECT EXISTS (SELECT FROM loyalty.stamp_card WHERE program_id = $1), "
	"       EXISTS (SELECT FROM loyalty.challenge WHERE program_id = $1)", 1, {INT8OID}, NULL};

static EngFlags
program_flags(int64 program_id)
{
	EngFlags	f = {program_id, false, false};
	EngFlags   *e;
	Datum		v = Int64GetDatum(program_id);
	bool		isnull;
	bool		cacheable;

	AcceptInvalidationMessages();
	/* as cache.c: a snapshot older than the transaction could predate an invalidation */
	cacheable = !IsolationUsesXactSnapshot() && flags_open();
	if (cacheable && (e = hash_search(flags_cache, &program_id, HASH_FIND, NULL)) != NULL)
		return *e;
	/* a database still on the 1.0 objects (new library, no ALTER EXTENSION UPDATE yet) has none */
	if (!OidIsValid(get_relname_relid("stamp_card", get_namespace_oid("loyalty", true))))
		return f;
	ly_run(&q_flags, &v, NULL, 1);
	f.cards = DatumGetBool(ly_get(0, 1, &isnull));
	f.challenges = DatumGetBool(ly_get(0, 2, &isnull));
	if (cacheable && (flags_cache != NULL || flags_open()))
	{
		e = hash_search(flags_cache, &program_id, HASH_ENTER, NULL);
		*e = f;
	}
	return f;
}

/* ---- derived ledger entries ---- */

static LyQuery q_key_taken = {
	"SELECT FROM loyalty.entry WHERE member_id = $1 AND idempotency_key = $2", 2, {INT8OID, TEXTOID}, NULL};

/*
 * An award entry derived from a purchase: the points (if any) become a lot
 * available at once with the program's expiry, like award(). Its key is
 * "<purchase key>/<suffix>"; should the application already have used that key
 * for something else, "#2", "#3"... is appended: the hook never runs twice for
 * one purchase and refunds find the entry by id, so any free key will do, and a
 * purchase is never refused over a key it did not choose.
 */
static int64
write_award(Op *op, EntryRow *purchase, int64 entry_id, const char *suffix, int64 points,
			const char *reason, Jsonb *detail)
{
	Member	   *m = op->m;
	NewLot		lot = {0};
	EntryRow	e = {0};
	int			i;

	if (points > 0)
	{
		lot.points = points;
		lot.at = lot.available_at = op->at;
		lot.has_expiry = ly_lot_expiry(m->prog, op->at, &lot.expires_at);
		ly_credit(m, &lot);
		m->lifetime_earned = ly_add_points(m->lifetime_earned, points);
	}
	e.id = entry_id ? entry_id : ly_nextval("loyalty.entry_id_seq");
	e.kind = "award";
	e.points = points;
	e.at = op->at;
	e.key = psprintf("%s/%s", purchase->key, suffix);
	for (i = 2;; i++)
	{
		Datum		v[2] = {Int64GetDatum(m->id), CStringGetTextDatum(e.key)};

		if (ly_run(&q_key_taken, v, NULL, 1) == 0)
			break;
		e.key = psprintf("%s/%s#%d", purchase->key, suffix, i);
	}
	e.request = ly_jsonb(psprintf("{\"derived_from\": " INT64_FORMAT ", \"what\": %s}",
								  purchase->id, ly_json_str(suffix)));
	e.reason = reason;
	e.ref_entry_id = purchase->id;
	e.detail = detail;
	ly_insert_entry(m, &e);
	if (points > 0)
		ly_write_lot(m, e.id, &lot);
	return e.id;
}

/* ---- stamp cards ---- */

/*
 * One statement per purchase: the stamps it gives on each active card of the
 * program, logged and added to the member's cards, with the cards' new counts.
 * A card counts purchases whose attrs contain its attrs_match and whose amount
 * reaches min_amount; per purchase it gives 1 (if line_match is set, only when a
 * line matches), per line 1 for each matching line, per qty the sum of the
 * matching lines' qty (whole units; a line without qty counts 1).
 */
static LyQuery q_card_stamps = {
	"WITH lines AS ("
	"  SELECT l FROM jsonb_array_elements(CASE WHEN jsonb_typeof($2 -> 'lines') = 'array' "
	"                                          THEN $2 -> 'lines' ELSE '[]' END) AS l "
	"   WHERE jsonb_typeof(l) = 'object'), "
	"hit AS ("
	"  SELECT c.id, c.code, c.stamps_needed, c.reward_points, c.reward_id, "
	"         least(CASE c.per "
	"           WHEN 'purchase' THEN CASE WHEN c.line_match IS NULL "
	"                                       OR EXISTS (SELECT FROM lines WHERE l @> c.line_match) THEN 1 ELSE 0 END "
	"           WHEN 'line' THEN (SELECT count(*) FROM lines WHERE l @> coalesce(c.line_match, '{}')) "
	"           ELSE (SELECT coalesce(sum(CASE WHEN NOT l ? 'qty' THEN 1 "
	"                                          WHEN jsonb_typeof(l -> 'qty') = 'number' AND (l ->> 'qty')::numeric >= 1 "
	"                                          THEN least(floor((l ->> 'qty')::numeric), $4) ELSE 0 END), 0) "
	"                   FROM lines WHERE l @> coalesce(c.line_match, '{}')) END, $4)::integer AS n "
	"    FROM loyalty.stamp_card c "
	"   WHERE c.program_id = $1 AND c.active AND $2 @> c.attrs_match AND $3 >= c.min_amount), "
	"log AS ("
	"  INSERT INTO loyalty.stamp (member_id, entry_id, card_id, purchase_entry_id, at, stamps) "
	"  SELECT $5, $6, hit.id, $6, $7, hit.n FROM hit WHERE hit.n > 0), "
	"card AS ("
	"  INSERT INTO loyalty.member_stamp_card AS s (member_id, card_id, stamps, completed, updated_at) "
	"  SELECT $5, hit.id, hit.n, 0, $7 FROM hit WHERE hit.n > 0 "
	"  ON CONFLICT (member_id, card_id) DO UPDATE SET stamps = s.stamps + excluded.stamps, "
	"                                                 updated_at = excluded.updated_at "
	"  RETURNING s.card_id, s.stamps, s.completed) "
	"SELECT hit.id, hit.code, hit.stamps_needed, hit.reward_points, hit.reward_id, card.stamps, card.completed "
	"  FROM hit JOIN card ON card.card_id = hit.id ORDER BY hit.id",
	7, {INT8OID, JSONBOID, NUMERICOID, INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID}, NULL};

/* the cards this purchase filled, on the member's card and in its log row */
static LyQuery q_card_completed = {
	"WITH log AS (UPDATE loyalty.stamp SET completed = $3, reward_entry_id = $4, voucher_ids = $5 "
	"              WHERE member_id = $1 AND purchase_entry_id = $6 AND entry_id = $6 AND card_id = $2) "
	"UPDATE loyalty.member_stamp_card SET completed = completed + $3 WHERE member_id = $1 AND card_id = $2",
	6, {INT8OID, INT8OID, INT4OID, INT8OID, INT8ARRAYOID, INT8OID}, NULL};

static LyQuery q_insert_stamp = {
	"INSERT INTO loyalty.stamp (member_id, entry_id, card_id, purchase_entry_id, at, stamps) "
	"VALUES ($1, $2, $3, $4, $5, $6)", 6,
	{INT8OID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT4OID}, NULL};

typedef struct CardHit
{
	int64		id;
	char	   *code;
	int64		needed;
	int64		reward_points;	/* 0: a catalog reward */
	int64		reward_id;
	int64		stamps;			/* the member's net stamps on the card, this purchase's included */
	int64		completed;
} CardHit;

static void
stamp_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	Member	   *m = op->m;
	Datum		v[9];
	char		n[9];
	uint64		nrows;
	uint64		i;
	CardHit    *hits;

	v[0] = Int64GetDatum(m->prog->id);
	v[1] = JsonbPGetDatum(attrs);
	v[2] = NumericGetDatum(purchase->amount);
	v[3] = Int32GetDatum(MAX_STAMPS_PER_PURCHASE);
	v[4] = Int64GetDatum(m->id);
	v[5] = Int64GetDatum(purchase->id);
	v[6] = TimestampTzGetDatum(op->at);
	nrows = ly_run(&q_card_stamps, v, NULL, 0);
	if (nrows == 0)
		return;
	/* copy the rows out: every query below replaces SPI_tuptable */
	hits = palloc0(sizeof(CardHit) * nrows);
	for (i = 0; i < nrows; i++)
	{
		hits[i].id = ly_get_int64(i, 1);
		hits[i].code = ly_get_text(i, 2);
		hits[i].needed = ly_get_int64(i, 3);
		if (!ly_get_int64_null(i, 4, &hits[i].reward_points))
			hits[i].reward_points = 0;
		if (!ly_get_int64_null(i, 5, &hits[i].reward_id))
			hits[i].reward_id = 0;
		hits[i].stamps = ly_get_int64(i, 6);
		hits[i].completed = ly_get_int64(i, 7);
	}

	for (i = 0; i < nrows; i++)
	{
		CardHit    *c = &hits[i];
		int64		stamps = c->stamps;
		int64		completed = c->completed;
		int			done = 0;
		int64		reward_entry = 0;
		int64	   *vouchers = NULL;
		int			k;

		/* every full card pays once; a debt left by a refund is paid off first */
		if (c->reward_points > 0)
		{
			while (stamps - (completed + done) * c->needed >= c->needed)
				done++;
			if (done > 0)
				reward_entry = write_award(op, purchase, 0, psprintf("stamp-card/%s", c->code),
										   c->reward_points * done, psprintf("stamp card %s", c->code),
										   ly_jsonb(psprintf("{\"stamp_card\": %s, \"cards\": %d, \"purchase_entry\": " INT64_FORMAT "}",
															 ly_json_str(c->code), done, purchase->id)));
		}
		else
		{
			/* a card waits, full, while its reward is out of stock or unavailable */
			int64		entry_id = ly_nextval("loyalty.entry_id_seq");
			StringInfoData ids;

			vouchers = palloc(sizeof(int64) * (MAX_STAMPS_PER_PURCHASE + 1));
			while (stamps - (completed + done) * c->needed >= c->needed && done <= MAX_STAMPS_PER_PURCHASE)
			{
				int64		vid = ly_issue_free_voucher(m, c->reward_id, entry_id, op->at);

				if (vid == 0)
					break;
				vouchers[done++] = vid;
			}
			if (done > 0)
			{
				initStringInfo(&ids);
				for (k = 0; k < done; k++)
					appendStringInfo(&ids, "%s" INT64_FORMAT, k ? ", " : "", vouchers[k]);
				reward_entry = write_award(op, purchase, entry_id, psprintf("stamp-card/%s", c->code), 0,
										   psprintf("stamp card %s", c->code),
										   ly_jsonb(psprintf("{\"stamp_card\": %s, \"cards\": %d, \"purchase_entry\": " INT64_FORMAT
															 ", \"vouchers\": [%s]}",
															 ly_json_str(c->code), done, purchase->id, ids.data)));
			}
		}
		if (done > 0)
		{
			memset(n, ' ', sizeof(n));
			v[0] = Int64GetDatum(m->id);
			v[1] = Int64GetDatum(c->id);
			v[2] = Int32GetDatum(done);
			v[3] = Int64GetDatum(reward_entry);
			if (vouchers)
				v[4] = ly_int8_array(vouchers, done);
			else
				n[4] = 'n';
			v[5] = Int64GetDatum(purchase->id);
			ly_run(&q_card_completed, v, n, 0);
		}

		for (k = 0; k < done; k++)
		{
			ly_outbox_emit(m->prog->id, m->id, "stamp_card_completed", op->at,
						   ly_jsonb(psprintf("{\"stamp_card\": %s, \"card_number\": " INT64_FORMAT
											 ", \"purchase_entry\": " INT64_FORMAT ", \"reward_entry\": " INT64_FORMAT
											 ", \"points\": " INT64_FORMAT ", \"voucher_id\": %s}",
											 ly_json_str(c->code), completed + k + 1, purchase->id, reward_entry,
											 c->reward_points,
											 vouchers ? psprintf(INT64_FORMAT, vouchers[k]) : "null")));
			if (vouchers)
				ly_outbox_emit(m->prog->id, m->id, "voucher_issued", op->at,
							   ly_jsonb(psprintf("{\"voucher_id\": " INT64_FORMAT ", \"source\": \"stamp_card\", "
												 "\"stamp_card\": %s}", vouchers[k], ly_json_str(c->code))));
		}
	}
}

/* what a purchase gave on each card, and what refunds took back so far */
static LyQuery q_purchase_stamps = {
	"SELECT s.card_id, c.min_amount, "
	"       coalesce(sum(s.stamps) FILTER (WHERE s.stamps > 0), 0), "
	"       coalesce(-sum(s.stamps) FILTER (WHERE s.stamps < 0), 0) "
	"  FROM loyalty.stamp s JOIN loyalty.stamp_card c ON c.id = s.card_id "
	" WHERE s.member_id = $1 AND s.purchase_entry_id = $2 "
	" GROUP BY s.card_id, c.min_amount ORDER BY s.card_id", 2, {INT8OID, INT8OID}, NULL};

/*
 * The purchase's amount and what earlier refunds took of it (this refund's entry
 * excluded, so the answer is the same whether or not it is written yet).
 */
static LyQuery q_refunded = {
	"SELECT e.amount, (SELECT coalesce(sum(r.amount), 0) FROM loyalty.entry r "
	"                   WHERE r.member_id = e.member_id AND r.ref_entry_id = e.id AND r.kind = 'reverse' "
	"                     AND r.id <> $3) "
	"  FROM loyalty.entry e WHERE e.member_id = $1 AND e.id = $2", 3, {INT8OID, INT8OID, INT8OID}, NULL};

static LyQuery q_take_stamps = {
	"UPDATE loyalty.member_stamp_card SET stamps = stamps - $3, updated_at = $4 "
	" WHERE member_id = $1 AND card_id = $2", 4, {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}, NULL};

/*
 * A refund takes back, cumulatively, the purchase's stamps in proportion to the
 * money refunded (whole stamps, rounded down), and all of them once the
 * purchase is fully refunded or what is kept falls below the card's min_amount.
 * Rewards already paid stay paid: the member's count goes down, so the card in
 * hand may go below zero (a debt the next stamps pay off before a card fills).
 */
static void
stamp_refund(Op *op, EntryRow *refund, int64 purchase_id, Numeric amount, bool full)
{
	Member	   *m = op->m;
	Datum		v[6];
	uint64		nrows;
	uint64		i;
	Numeric		paid;
	Numeric		refunded;
	Numeric		kept;
	int64	   *card;
	Numeric    *min_amount;
	int64	   *given;
	int64	   *taken;

	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(purchase_id);
	nrows = ly_run(&q_purchase_stamps, v, NULL, 0);
	if (nrows == 0)
		return;
	card = palloc(sizeof(int64) * nrows);
	min_amount = palloc(sizeof(Numeric) * nrows);
	given = palloc(sizeof(int64) * nrows);
	taken = palloc(sizeof(int64) * nrows);
	for (i = 0; i < nrows; i++)
	{
		card[i] = ly_get_int64(i, 1);
		min_amount[i] = ly_get_numeric(i, 2);
		given[i] = ly_get_int64(i, 3);
		taken[i] = ly_get_int64(i, 4);
	}
	v[2] = Int64GetDatum(refund->id);
	ly_run(&q_refunded, v, NULL, 1);
	paid = ly_get_numeric(0, 1);
	refunded = ly_num_add(ly_get_numeric(0, 2), amount);
	kept = ly_num_sub(paid, refunded);

	for (i = 0; i < nrows; i++)
	{
		int64		due;

		if (full || ly_num_cmp(kept, min_amount[i]) < 0 || ly_num_cmp(paid, ly_num_zero()) <= 0)
			due = given[i];
		else
			due = ly_numeric_points(ly_div_rounded(ly_num_mul(int64_to_numeric(given[i]), refunded),
												   paid, ROUND_FLOOR), "the stamps to take back");
		due -= taken[i];
		if (due <= 0)
			continue;
		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(card[i]);
		v[2] = Int64GetDatum(due);
		v[3] = TimestampTzGetDatum(op->at);
		ly_run(&q_take_stamps, v, NULL, 0);

		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(refund->id);
		v[2] = Int64GetDatum(card[i]);
		v[3] = Int64GetDatum(purchase_id);
		v[4] = TimestampTzGetDatum(op->at);
		v[5] = Int32GetDatum((int32) -due);
		ly_run(&q_insert_stamp, v, NULL, 0);
	}
}

/* ---- challenges ---- */

/*
 * One statement per purchase: the active challenges it counts for, each with the
 * period instance that contains it (the calendar month or week, from Monday, in
 * the program's time zone; the fixed window; or all time) and its bucket (the
 * store, attrs.store, for distinct stores; the local week for streaks). For each:
 * the purchase's credit (what its refunds will take back), the purchase in its
 * bucket, and the progress, returned with whether the bucket is new.
 */
static LyQuery q_challenges = {
	"WITH hit AS ("
	"  SELECT c.id, c.code, c.goal, c.target, c.reward_points, c.badge, w.ps, w.pe, "
	"         CASE c.goal "
	"           WHEN 'stores' THEN CASE WHEN jsonb_typeof($2 -> 'store') IN ('string', 'number') THEN $2 ->> 'store' END "
	"           WHEN 'streak_weeks' THEN to_char(date_trunc('week', $3 AT TIME ZONE $4), 'YYYY-MM-DD') END AS bucket "
	"    FROM loyalty.challenge c, LATERAL ("
	"         SELECT CASE c.period "
	"                  WHEN 'month' THEN date_trunc('month', $3 AT TIME ZONE $4) AT TIME ZONE $4 "
	"                  WHEN 'week' THEN date_trunc('week', $3 AT TIME ZONE $4) AT TIME ZONE $4 "
	"                  WHEN 'fixed' THEN c.starts_at ELSE '-infinity'::timestamptz END AS ps, "
	"                CASE c.period "
	"                  WHEN 'month' THEN (date_trunc('month', $3 AT TIME ZONE $4) + interval '1 month') AT TIME ZONE $4 "
	"                  WHEN 'week' THEN (date_trunc('week', $3 AT TIME ZONE $4) + interval '7 days') AT TIME ZONE $4 "
	"                  WHEN 'fixed' THEN c.ends_at ELSE 'infinity'::timestamptz END AS pe) w "
	"   WHERE c.program_id = $1 AND c.active AND $2 @> c.attrs_match AND $5 >= c.min_amount "
	"     AND (c.period <> 'fixed' OR ($3 >= c.starts_at AND $3 < c.ends_at))), "
	"credit AS ("
	"  INSERT INTO loyalty.challenge_credit (member_id, purchase_entry_id, challenge_id, period_start, amount, bucket) "
	"  SELECT $6, $7, hit.id, hit.ps, $5, hit.bucket FROM hit), "
	"tally AS ("
	"  INSERT INTO loyalty.challenge_tally AS t (member_id, challenge_id, period_start, bucket, purchases) "
	"  SELECT $6, hit.id, hit.ps, hit.bucket, 1 FROM hit WHERE hit.bucket IS NOT NULL "
	"  ON CONFLICT (member_id, challenge_id, period_start, bucket) DO UPDATE SET purchases = t.purchases + 1 "
	"  RETURNING t.challenge_id, t.purchases = 1 AS fresh), "
	"progress AS ("
	"  INSERT INTO loyalty.challenge_progress AS p (member_id, challenge_id, period_start, period_end, purchases, spend) "
	"  SELECT $6, hit.id, hit.ps, hit.pe, 1, $5 FROM hit "
	"  ON CONFLICT (member_id, challenge_id, period_start) "
	"  DO UPDATE SET purchases = p.purchases + 1, spend = p.spend + excluded.spend "
	"  RETURNING p.challenge_id, p.purchases, p.spend, p.stores, p.streak, p.completed_at IS NOT NULL AS completed) "
	"SELECT hit.id, hit.code, hit.goal, hit.target, hit.reward_points, hit.badge, hit.ps, hit.pe, "
	"       progress.purchases, progress.spend, progress.stores, progress.streak, progress.completed, "
	"       coalesce(tally.fresh, false) "
	"  FROM hit JOIN progress ON progress.challenge_id = hit.id "
	"  LEFT JOIN tally ON tally.challenge_id = hit.id ORDER BY hit.id",
	7, {INT8OID, JSONBOID, TIMESTAMPTZOID, TEXTOID, NUMERICOID, INT8OID, INT8OID}, NULL};

static LyQuery q_tally = {
	"INSERT INTO loyalty.challenge_tally AS t (member_id, challenge_id, period_start, bucket, purchases) "
	"VALUES ($1, $2, $3, $4, $5) "
	"ON CONFLICT (member_id, challenge_id, period_start, bucket) "
	"DO UPDATE SET purchases = t.purchases + excluded.purchases RETURNING purchases",
	5, {INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID, INT4OID}, NULL};

/* distinct stores, and the longest run of consecutive weeks (gaps and islands) */
static LyQuery q_recount = {
	"UPDATE loyalty.challenge_progress p SET "
	"  stores = (SELECT count(*) FROM loyalty.challenge_tally t "
	"             WHERE t.member_id = $1 AND t.challenge_id = $2 AND t.period_start = $3 AND t.purchases > 0 "
	"               AND $4 = 'stores'), "
	"  streak = (SELECT coalesce(max(n), 0) FROM ("
	"             SELECT count(*) AS n FROM ("
	"               SELECT t.bucket::date - 7 * row_number() OVER (ORDER BY t.bucket::date)::integer AS island "
	"                 FROM loyalty.challenge_tally t "
	"                WHERE t.member_id = $1 AND t.challenge_id = $2 AND t.period_start = $3 "
	"                  AND t.purchases > 0 AND $4 = 'streak_weeks') w GROUP BY island) r) "
	" WHERE p.member_id = $1 AND p.challenge_id = $2 AND p.period_start = $3 "
	"RETURNING p.stores, p.streak", 4, {INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID}, NULL};

static LyQuery q_badge = {
	"INSERT INTO loyalty.member_badge (member_id, badge, challenge_id, awarded_at, purchase_entry_id) "
	"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id, badge) DO NOTHING RETURNING badge",
	5, {INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT8OID}, NULL};

static LyQuery q_complete = {
	"UPDATE loyalty.challenge_progress SET completed_at = $4, completed_by = $5, reward_entry_id = $6 "
	" WHERE member_id = $1 AND challenge_id = $2 AND period_start = $3 AND completed_at IS NULL",
	6, {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL};

typedef struct ChallengeHit
{
	int64		id;
	char	   *code;
	char	   *goal;
	Numeric		target;
	int64		reward_points;	/* 0: none */
	char	   *badge;			/* NULL: none */
	TimestampTz ps;
	TimestampTz pe;
	int64		purchases;		/* the progress, this purchase included */
	Numeric		spend;
	int64		stores;
	int64		streak;
	bool		completed;		/* before this purchase */
	bool		fresh;			/* its store or week had no purchase yet */
} ChallengeHit;

/* Re-count a period's distinct stores or streak after a bucket went from 0 to 1 or back. */
static void
recount(Member *m, int64 challenge_id, TimestampTz ps, const char *goal, int64 *stores, int64 *streak)
{
	Datum		v[4] = {Int64GetDatum(m->id), Int64GetDatum(challenge_id), TimestampTzGetDatum(ps),
						CStringGetTextDatum(goal)};

	ly_run(&q_recount, v, NULL, 1);
	*stores = ly_get_int64(0, 1);
	*streak = ly_get_int64(0, 2);
}

/* +1 or -1 purchase in a bucket; true when the bucket became non-empty or empty */
static bool
tally(Member *m, int64 challenge_id, TimestampTz ps, const char *bucket, int delta)
{
	Datum		v[5] = {Int64GetDatum(m->id), Int64GetDatum(challenge_id), TimestampTzGetDatum(ps),
						CStringGetTextDatum(bucket), Int32GetDatum(delta)};
	int64		now;

	ly_run(&q_tally, v, NULL, 1);
	now = ly_get_int64(0, 1);
	return delta > 0 ? now == 1 : now == 0;
}

static void
complete_challenge(Op *op, EntryRow *purchase, ChallengeHit *c)
{
	Member	   *m = op->m;
	Datum		v[6];
	char		n[6];
	int64		reward_entry = 0;
	bool		new_badge = false;

	if (c->reward_points > 0)
		reward_entry = write_award(op, purchase, 0, psprintf("challenge/%s", c->code), c->reward_points,
								   psprintf("challenge %s", c->code),
								   ly_jsonb(psprintf("{\"challenge\": %s, \"period_start\": %s, \"purchase_entry\": " INT64_FORMAT "}",
													 ly_json_str(c->code), ly_json_str(timestamptz_to_str(c->ps)),
													 purchase->id)));
	if (c->badge)
	{
		v[0] = Int64GetDatum(m->id);
		v[1] = CStringGetTextDatum(c->badge);
		v[2] = Int64GetDatum(c->id);
		v[3] = TimestampTzGetDatum(op->at);
		v[4] = Int64GetDatum(purchase->id);
		new_badge = ly_run(&q_badge, v, NULL, 1) == 1;
	}
	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(c->id);
	v[2] = TimestampTzGetDatum(c->ps);
	v[3] = TimestampTzGetDatum(op->at);
	v[4] = Int64GetDatum(purchase->id);
	v[5] = Int64GetDatum(reward_entry);
	if (!reward_entry)
		n[5] = 'n';
	if (ly_run(&q_complete, v, n, 0) != 1)
		elog(ERROR, "loyalty: challenge %s of member " INT64_FORMAT " completed twice", c->code, m->id);
	ly_outbox_emit(m->prog->id, m->id, "challenge_completed", op->at,
				   ly_jsonb(psprintf("{\"challenge\": %s, \"period_start\": %s, \"period_end\": %s, "
									 "\"purchase_entry\": " INT64_FORMAT ", \"points\": " INT64_FORMAT
									 ", \"reward_entry\": %s, \"badge\": %s, \"new_badge\": %s}",
									 ly_json_str(c->code), ly_json_str(timestamptz_to_str(c->ps)),
									 ly_json_str(timestamptz_to_str(c->pe)), purchase->id, c->reward_points,
									 reward_entry ? psprintf(INT64_FORMAT, reward_entry) : "null",
									 ly_json_str(c->badge), new_badge ? "true" : "false")));
}

static void
challenge_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	Member	   *m = op->m;
	Datum		v[7];
	uint64		nrows;
	uint64		i;
	bool		isnull;
	ChallengeHit *hits;

	v[0] = Int64GetDatum(m->prog->id);
	v[1] = JsonbPGetDatum(attrs);
	v[2] = TimestampTzGetDatum(op->at);
	v[3] = CStringGetTextDatum(m->prog->s.timezone);
	v[4] = NumericGetDatum(purchase->amount);
	v[5] = Int64GetDatum(m->id);
	v[6] = Int64GetDatum(purchase->id);
	nrows = ly_run(&q_challenges, v, NULL, 0);
	if (nrows == 0)
		return;
	/* copy the rows out: every query below replaces SPI_tuptable */
	hits = palloc0(sizeof(ChallengeHit) * nrows);
	for (i = 0; i < nrows; i++)
	{
		hits[i].id = ly_get_int64(i, 1);
		hits[i].code = ly_get_text(i, 2);
		hits[i].goal = ly_get_text(i, 3);
		hits[i].target = ly_get_numeric(i, 4);
		if (!ly_get_int64_null(i, 5, &hits[i].reward_points))
			hits[i].reward_points = 0;
		hits[i].badge = ly_get_text(i, 6);
		hits[i].ps = DatumGetTimestampTz(ly_get(i, 7, &isnull));
		hits[i].pe = DatumGetTimestampTz(ly_get(i, 8, &isnull));
		hits[i].purchases = ly_get_int64(i, 9);
		hits[i].spend = ly_get_numeric(i, 10);
		hits[i].stores = ly_get_int64(i, 11);
		hits[i].streak = ly_get_int64(i, 12);
		hits[i].completed = DatumGetBool(ly_get(i, 13, &isnull));
		hits[i].fresh = DatumGetBool(ly_get(i, 14, &isnull));
	}

	for (i = 0; i < nrows; i++)
	{
		ChallengeHit *c = &hits[i];
		Numeric		value;

		/* a store or week counted for the first time: distinct stores or streak may grow */
		if (c->fresh)
			recount(m, c->id, c->ps, c->goal, &c->stores, &c->streak);
		if (c->completed)
			continue;
		if (strcmp(c->goal, "purchases") == 0)
			value = int64_to_numeric(c->purchases);
		else if (strcmp(c->goal, "spend") == 0)
			value = c->spend;
		else if (strcmp(c->goal, "stores") == 0)
			value = int64_to_numeric(c->stores);
		else
			value = int64_to_numeric(c->streak);
		if (ly_num_cmp(value, c->target) >= 0)
			complete_challenge(op, purchase, c);
	}
}

static LyQuery q_purchase_credits = {
	"SELECT cr.challenge_id, cr.period_start, cr.amount, cr.refunded, cr.bucket, cr.counted, c.goal, c.min_amount "
	"  FROM loyalty.challenge_credit cr JOIN loyalty.challenge c ON c.id = cr.challenge_id "
	" WHERE cr.member_id = $1 AND cr.purchase_entry_id = $2 ORDER BY cr.challenge_id", 2, {INT8OID, INT8OID}, NULL};

static LyQuery q_progress_take = {
	"UPDATE loyalty.challenge_progress SET spend = spend - $4, purchases = purchases - $5 "
	" WHERE member_id = $1 AND challenge_id = $2 AND period_start = $3",
	5, {INT8OID, INT8OID, TIMESTAMPTZOID, NUMERICOID, INT4OID}, NULL};

static LyQuery q_credit_take = {
	"UPDATE loyalty.challenge_credit SET refunded = refunded + $4, counted = counted AND NOT $5 "
	" WHERE member_id = $1 AND purchase_entry_id = $2 AND challenge_id = $3",
	5, {INT8OID, INT8OID, INT8OID, NUMERICOID, BOOLOID}, NULL};

/*
 * A refund takes its money off the spend of every challenge the purchase counted
 * for, and the purchase itself (its count, its store, its week) once it is fully
 * refunded or what is kept falls below the challenge's min_amount. A challenge
 * already completed stays completed: its reward is not taken back, and it is not
 * paid again if the progress climbs back over the target.
 */
static void
challenge_refund(Op *op, int64 purchase_id, Numeric amount, bool full)
{
	Member	   *m = op->m;
	Datum		v[5];
	uint64		nrows;
	uint64		i;
	bool		isnull;
	typedef struct
	{
		int64		challenge_id;
		TimestampTz ps;
		Numeric		amount;
		Numeric		refunded;
		char	   *bucket;
		bool		counted;
		char	   *goal;
		Numeric		min_amount;
	}			Credit;
	Credit	   *cr;

	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(purchase_id);
	nrows = ly_run(&q_purchase_credits, v, NULL, 0);
	if (nrows == 0)
		return;
	cr = palloc0(sizeof(Credit) * nrows);
	for (i = 0; i < nrows; i++)
	{
		cr[i].challenge_id = ly_get_int64(i, 1);
		cr[i].ps = DatumGetTimestampTz(ly_get(i, 2, &isnull));
		cr[i].amount = ly_get_numeric(i, 3);
		cr[i].refunded = ly_get_numeric(i, 4);
		cr[i].bucket = ly_get_text(i, 5);
		cr[i].counted = DatumGetBool(ly_get(i, 6, &isnull));
		cr[i].goal = ly_get_text(i, 7);
		cr[i].min_amount = ly_get_numeric(i, 8);
	}
	for (i = 0; i < nrows; i++)
	{
		Numeric		left = ly_num_sub(cr[i].amount, cr[i].refunded);
		Numeric		x = ly_num_cmp(amount, left) < 0 ? amount : left;
		bool		gone = cr[i].counted &&
			(full || ly_num_cmp(ly_num_sub(left, x), cr[i].min_amount) < 0);
		int64		stores;
		int64		streak;

		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(cr[i].challenge_id);
		v[2] = TimestampTzGetDatum(cr[i].ps);
		v[3] = NumericGetDatum(x);
		v[4] = Int32GetDatum(gone ? 1 : 0);
		ly_run(&q_progress_take, v, NULL, 0);
		if (gone && cr[i].bucket && tally(m, cr[i].challenge_id, cr[i].ps, cr[i].bucket, -1))
			recount(m, cr[i].challenge_id, cr[i].ps, cr[i].goal, &stores, &streak);
		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(purchase_id);
		v[2] = Int64GetDatum(cr[i].challenge_id);
		v[3] = NumericGetDatum(x);
		v[4] = BoolGetDatum(gone);
		ly_run(&q_credit_take, v, NULL, 0);
	}
}

/* ---- the hooks ---- */

void
ly_engagement_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	EngFlags	f = program_flags(op->m->prog->id);

	if (f.cards)
		stamp_purchase(op, purchase, attrs);
	if (f.challenges)
		challenge_purchase(op, purchase, attrs);
}

void
ly_engagement_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
					 bool full)
{
	EngFlags	f = program_flags(op->m->prog->id);

	if (f.cards)
		stamp_refund(op, refund, purchase_entry_id, refunded_amount, full);
	if (f.challenges)
		challenge_refund(op, purchase_entry_id, refunded_amount, full);
}
