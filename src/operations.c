/*
 * operations.c: the money-like operations (earn, award, redeem, reverse,
 * adjust, transfer) and the ledger entries they write.
 *
 * Each operation: checks its arguments, locks its member(s), replays or
 * refuses a used idempotency key, sweeps the member to the business time,
 * computes the new balances in memory, then writes the entry, its lots and
 * draws, and the member row. Any error aborts the whole transaction, so
 * nothing partial is ever written.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* ---- ledger entries ---- */

static LyQuery q_insert_entry = {
	"INSERT INTO loyalty.entry (member_id, id, kind, points, at, idempotency_key, request, "
	"       amount, reason, ref_entry_id, counterparty_id, qualifying, qualifying_at, detail, "
	"       available_after, pending_after, tier_after) "
	"VALUES ($1, $2, $3::loyalty.entry_kind, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, 0), "
	"        $13, $14, $15, $16, $17)", 17,
	{INT8OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, JSONBOID, NUMERICOID,
	 TEXTOID, INT8OID, INT8OID, NUMERICOID, TIMESTAMPTZOID, JSONBOID, INT8OID, INT8OID, TEXTOID}, NULL};

/* The 17 values of q_insert_entry: the receipt columns are the member's balances right now. */
static void
entry_values(Member *m, EntryRow *e, Datum *v, char *n)
{
	memset(n, ' ', 17);
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(e->id);
	v[2] = CStringGetTextDatum(e->kind);
	v[3] = Int64GetDatum(e->points);
	v[4] = TimestampTzGetDatum(e->at);
#define OPT(i, cond, datum) do { if (cond) v[i] = (datum); else { v[i] = (Datum) 0; n[i] = 'n'; } } while (0)
	OPT(5, e->key != NULL, CStringGetTextDatum(e->key));
	OPT(6, e->request != NULL, JsonbPGetDatum(e->request));
	OPT(7, e->amount != NULL, NumericGetDatum(e->amount));
	OPT(8, e->reason != NULL, CStringGetTextDatum(e->reason));
	OPT(9, e->ref_entry_id != 0, Int64GetDatum(e->ref_entry_id));
	OPT(10, e->counterparty_id != 0, Int64GetDatum(e->counterparty_id));
	OPT(11, e->qualifying != NULL, NumericGetDatum(e->qualifying));
	OPT(12, e->qualifying != NULL, TimestampTzGetDatum(e->qualifying_at));
	OPT(13, e->detail != NULL, JsonbPGetDatum(e->detail));
#undef OPT
	v[14] = Int64GetDatum(m->available);
	v[15] = Int64GetDatum(m->pending);
	v[16] = CStringGetTextDatum(ly_tier_code(m));
}

static void
note_last_entry(Member *m, EntryRow *e)
{
	if (!m->has_last_entry || e->at > m->last_entry_at)
	{
		m->last_entry_at = e->at;
		m->has_last_entry = true;
	}
}

/* Write an entry; its receipt columns are the member's balances right now. */
void
ly_insert_entry(Member *m, EntryRow *e)
{
	Datum		v[17];
	char		n[17];

	entry_values(m, e, v, n);
	if (!(ly_batch_active && ly_batch_defer_entry(m->id, e->key, v, n)))
		ly_run(&q_insert_entry, v, n, 0);
	note_last_entry(m, e);
}

/*
 * A credit's entry, its lot (if any) and the member row in one statement:
 * what ly_insert_entry, ly_write_lot and ly_save_member write, for one
 * executor start instead of three. The member's lock is held from the lock
 * query to commit, so every statement saved shortens what a busy member's
 * queue waits for (bench: hot member). $1..$17 are q_insert_entry's, $18..$24
 * q_insert_lot's $3..$8 and whether to write it, $25..$48 q_save_member's
 * $2..$25.
 */
static LyQuery q_write_credit = {
	"WITH e AS ("
	"  INSERT INTO loyalty.entry (member_id, id, kind, points, at, idempotency_key, request, "
	"         amount, reason, ref_entry_id, counterparty_id, qualifying, qualifying_at, detail, "
	"         available_after, pending_after, tier_after) "
	"  VALUES ($1, $2, $3::loyalty.entry_kind, $4, $5, $6, $7, $8, $9, $10, $11, "
	"          coalesce($12, 0), $13, $14, $15, $16, $17)), "
	"l AS ("
	"  INSERT INTO loyalty.lot (member_id, entry_id, at, points, remaining, available_at, "
	"         expires_at, source_lot, state) "
	"  SELECT $1, $2, $18, $19, $19, $20, $21, $22, $23 WHERE $24) "
	"UPDATE loyalty.member SET tier_id = $25, tier_since = $26, available = $27, pending = $28, "
	"       lifetime_earned = $29, redeemed = $30, expired = $31, qualifying = $32, "
	"       lifetime_spend = $33, lifetime_visits = $34, last_activity_at = $35, "
	"       last_entry_at = $36, next_transition_at = $37, q_start = $38, q_oldest = $39, "
	"       q_asof = $40, tier_review_at = $41, grace_until = $42, pinned_tier_id = $43, "
	"       pinned_until = $44, granted_tier_id = $45, granted_until = $46, grace_tier_id = $47, "
	"       earned_tier_id = $48 "
	" WHERE id = $1", 48,
	{INT8OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID, JSONBOID, NUMERICOID,
	 TEXTOID, INT8OID, INT8OID, NUMERICOID, TIMESTAMPTZOID, JSONBOID, INT8OID, INT8OID, TEXTOID,
	 TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, CHAROID, BOOLOID,
	 INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	 NUMERICOID, NUMERICOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	 TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	 INT8OID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL};

/*
 * Write a credit entry, its lot (NULL: none) and the member, as
 * ly_insert_entry + ly_write_lot + ly_save_member would (earn_batch buffers
 * those three, so it keeps them).
 */
static void
write_credit(Member *m, EntryRow *e, NewLot *lot)
{
	Datum		v[48];
	char		n[48];
	Datum		mv[LY_MEMBER_COLUMNS];
	char		mn[LY_MEMBER_COLUMNS];

	if (ly_batch_active)
	{
		ly_insert_entry(m, e);
		if (lot)
			ly_write_lot(m, e->id, lot);
		ly_save_member(m);
		return;
	}
	entry_values(m, e, v, n);
	note_last_entry(m, e);
	if (lot)
	{
		Datum		lv[8];
		char		ln[8];

		ly_lot_values(m, e->id, lot, lv, ln);
		memcpy(v + 17, lv + 2, sizeof(Datum) * 6);
		memcpy(n + 17, ln + 2, 6);
	}
	else
	{
		memset(v + 17, 0, sizeof(Datum) * 6);
		memset(n + 17, 'n', 6);
	}
	v[23] = BoolGetDatum(lot != NULL);
	n[23] = ' ';
	ly_member_save_values(m, mv, mn);	/* after note_last_entry: it saves last_entry_at */
	memcpy(v + 24, mv + 1, sizeof(Datum) * (LY_MEMBER_COLUMNS - 1));
	memcpy(n + 24, mn + 1, LY_MEMBER_COLUMNS - 1);
	if (ly_run(&q_write_credit, v, n, 0) != 1)
		elog(ERROR, "loyalty: member " INT64_FORMAT " not updated", m->id);
}

/* A new entry of this operation: its id, kind, points, business time, key and request. */
void
ly_entry_init(EntryRow *e, Op *op, const char *kind, int64 points)
{
	e->id = ly_nextval("loyalty.entry_id_seq");
	e->kind = kind;
	e->points = points;
	e->at = op->at;
	e->key = op->key;
	e->request = op->request;
}

/* ---- the shape every operation shares ---- */

static LyQuery q_find_key = {
	"SELECT id, kind::text, coalesce(request, '{}'), points, available_after, pending_after, tier_after, amount "
	"  FROM loyalty.entry WHERE member_id = $1 AND idempotency_key = $2", 2, {INT8OID, TEXTOID}, NULL};

/*
 * earn's request is {"amount": ..., "attrs": ...}, but an earn entry already
 * keeps the amount in its own column, and most purchases come without attrs:
 * it stores only {"attrs": ...}, or {} for no attrs (40 bytes less per earn;
 * readers of request -> 'attrs' see the same). The full form is built back
 * only to compare a replay or to report a reused key.
 */
static Jsonb *
earn_request(Numeric amount, Jsonb *attrs)
{
	return ly_jsonb(psprintf("{\"amount\": %s, \"attrs\": %s}", ly_json_num(amount),
							 attrs ? JsonbToCString(NULL, &attrs->root, VARSIZE(attrs)) : "{}"));
}

/* What an earn entry stores as its request: NULL (none; {} before 1.1) if no attrs. */
static Jsonb *
earn_stored_request(Jsonb *attrs)
{
	if (JB_ROOT_COUNT(attrs) == 0)
		return NULL;
	return ly_jsonb(psprintf("{\"attrs\": %s}", JsonbToCString(NULL, &attrs->root, VARSIZE(attrs))));
}

/* The full request of an operation (earn builds it on demand). */
static Jsonb *
op_request(Op *op)
{
	if (op->request == NULL && op->earn_attrs != NULL)
		op->request = earn_request(op->earn_amount, op->earn_attrs);
	return op->request;
}

/* The full request of a stored entry: an earn stored since 1.1 lacks its amount. */
static Jsonb *
stored_request(const char *kind, Jsonb *req, Numeric amount)
{
	JsonbValue	buf;
	JsonbValue *attrs;

	if (strcmp(kind, "earn") != 0 || amount == NULL ||
		getKeyJsonValueFromContainer(&req->root, "amount", 6, &buf) != NULL)
		return req;				/* another kind, or an earn written by 1.0 */
	attrs = getKeyJsonValueFromContainer(&req->root, "attrs", 5, &buf);
	return earn_request(amount, attrs ? JsonbValueToJsonb(attrs) : NULL);
}

/*
 * Has this member used the key before? Same operation and arguments: fill
 * the original receipt (a replay). Anything else: refuse. Called with the
 * member locked, so two sessions racing on one key see each other's entry.
 */
bool
ly_op_replayed(Op *op, int64 member_id)
{
	Datum		v[2] = {Int64GetDatum(member_id), CStringGetTextDatum(op->key)};
	char	   *kind;
	Jsonb	   *req;
	Jsonb	   *mine;
	bool		isnull;
	bool		no_amount;
	Datum		amount;

	/* earn_batch knows which keys of the member it processes exist */
	if (ly_batch_active && ly_batch_key_unused(member_id, op->key))
		return false;
	if (ly_run(&q_find_key, v, NULL, 1) != 1)
		return false;
	kind = ly_get_text(0, 2);
	amount = ly_get(0, 8, &no_amount);
	req = stored_request(kind, DatumGetJsonbP(ly_get(0, 3, &isnull)),
						 no_amount ? NULL : DatumGetNumeric(amount));
	mine = op_request(op);
	if (strcmp(kind, op->kind) != 0 ||
		!DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(req), JsonbPGetDatum(mine))))
		ereport(ERROR,
				(errcode(LY_KEY_REUSED),
				 errmsg("idempotency key \"%s\" was already used with different arguments", op->key),
				 errdetail("The key was first used by %s with %s; this call is %s with %s.",
						   kind, JsonbToCString(NULL, &req->root, VARSIZE(req)),
						   op->kind, JsonbToCString(NULL, &mine->root, VARSIZE(mine))),
				 errhint("Use a new key for a new operation.")));
	op->r.entry_id = ly_get_int64(0, 1);
	op->r.member_id = member_id;
	op->r.points = ly_get_int64(0, 4);
	op->r.available = ly_get_int64(0, 5);
	op->r.pending = ly_get_int64(0, 6);
	op->r.tier = MemoryContextStrdup(op->callcxt, ly_get_text(0, 7));
	op->r.replayed = true;
	return true;
}

/* Lock, replay check, sweep. Returns false when the call is a replay. */
bool
ly_op_begin(Op *op, int64 member_id)
{
	SweepStats	st = {0};

	bool		key_unused = false;

	/* earn_batch serves the lock from its buffer and knows its keys: the plain lock there */
	if (ly_batch_active)
		op->m = ly_lock_member(member_id, NULL);
	else
		op->m = ly_lock_member_key(member_id, op->key, &key_unused);
	if (!key_unused && ly_op_replayed(op, member_id))
		return false;
	ly_sweep(op->m, op->at, &st);
	return true;
}

void
ly_op_receipt(Op *op, int64 entry_id, int64 points)
{
	op->r.entry_id = entry_id;
	op->r.member_id = op->m->id;
	op->r.points = points;
	op->r.available = op->m->available;
	op->r.pending = op->m->pending;
	op->r.tier = MemoryContextStrdup(op->callcxt, ly_tier_code(op->m));
	op->r.replayed = false;
}

/* The seven receipt columns, first in every result that carries a receipt. */
void
ly_receipt_values(Receipt *r, Datum *v, bool *n)
{
	memset(n, 0, sizeof(bool) * 7);
	v[0] = Int64GetDatum(r->entry_id);
	v[1] = Int64GetDatum(r->member_id);
	v[2] = Int64GetDatum(r->points);
	v[3] = Int64GetDatum(r->available);
	v[4] = Int64GetDatum(r->pending);
	v[5] = CStringGetTextDatum(r->tier);
	v[6] = BoolGetDatum(r->replayed);
}

Datum
ly_receipt_datum(FunctionCallInfo fcinfo, Receipt *r)
{
	TupleDesc	tupdesc;
	Datum		v[7];
	bool		n[7];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: receipt type expected");
	ly_receipt_values(r, v, n);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n));
}

void
ly_op_init(Op *op, const char *kind, char *key, TimestampTz at)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->key = key;
	op->at = at;
	op->callcxt = CurrentMemoryContext;
}

/* JSON text of a value for the request fingerprint */
char *
ly_json_num(Numeric n)
{
	return n ? DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))) : "null";
}

char *
ly_json_str(const char *s)
{
	StringInfoData buf;

	if (s == NULL)
		return "null";
	initStringInfo(&buf);
	escape_json(&buf, s);
	return buf.data;
}

static Numeric
basis_contribution(Program *p, int64 points, Numeric amount, int visits)
{
	switch (p->s.tier_basis)
	{
		case BASIS_SPEND:
			return amount;
		case BASIS_VISITS:
			return int64_to_numeric(visits);
		case BASIS_POINTS:
		default:
			return int64_to_numeric(points);
	}
}

/* Count a contribution in the qualifying figure, and promote on a purchase. */
static void
apply_qualifying(Member *m, Numeric contribution, TimestampTz contribution_at, TimestampTz at,
				 bool may_promote)
{
	Numeric		q = ly_qualifying_at(m, at, contribution, contribution_at);

	if (may_promote)
		ly_promote(m, q, at);
}

/*
 * Take `want` points back (a refund, a negative adjustment): from first_lot if
 * given, then from the lots available at `at` (later points were not there to
 * take, as for a spending debit); what is missing follows negative_balance:
 * deny refuses, allow books it as a debt lot, clamp drops it. Returns the
 * points actually moved; *shortfall is what was missing.
 */
static int64
take_back(Member *m, int64 want, int64 first_lot, TimestampTz at, DrawList *dl, NewLot *debt,
		  int64 *shortfall, const char *what)
{
	NegativePolicy policy = m->prog->s.negative_balance;
	int64		taken = 0;
	int64		budget;

	if (first_lot)
		taken += ly_draw_from_lot(m, first_lot, want, dl);
	/* what can still be taken without the balance going below zero */
	budget = Max(m->available, 0);
	if (policy == NEG_DENY && want - taken > budget)
		ereport(ERROR,
				(errcode(LY_NEGATIVE_BALANCE),
				 errmsg("%s would make the balance negative", what),
				 errdetail("It takes back " INT64_FORMAT " points; " INT64_FORMAT " are left to take.",
						   want, taken + budget),
				 errhint("The program's negative_balance setting is deny.")));
	taken += ly_draw_available(m, (policy == NEG_CLAMP ? Min(want - taken, budget) : want - taken),
							   first_lot, at, dl);
	*shortfall = want - taken;
	/* points not there yet at `at` cannot be taken back at `at` either */
	if (policy == NEG_DENY && *shortfall > 0)
		ereport(ERROR,
				(errcode(LY_NEGATIVE_BALANCE),
				 errmsg("%s would make the balance negative at %s", what, timestamptz_to_str(at)),
				 errdetail("It takes back " INT64_FORMAT " points; " INT64_FORMAT " were there to take at that time.",
						   want, taken),
				 errhint("The program's negative_balance setting is deny.")));
	if (*shortfall > 0 && policy == NEG_ALLOW)
	{
		debt->points = -*shortfall;
		debt->at = debt->available_at = at;
		ly_credit(m, debt);
		return want;
	}
	return taken;
}

/* Write a debit: its entry, the lots it drew from, its debt lot if any, the member. */
static void
write_debit(Op *op, EntryRow *e, DrawList *dl, NewLot *debt)
{
	Member	   *m = op->m;

	ly_insert_entry(m, e);
	ly_write_draws(m, e->id, op->at, dl);
	if (debt && debt->points)
		ly_write_lot(m, e->id, debt);
	ly_save_member(m);
	ly_op_receipt(op, e->id, e->points);
}

void
ly_insufficient(Member *m, int64 want)
{
	ereport(ERROR,
			(errcode(LY_INSUFFICIENT_POINTS),
			 errmsg("insufficient points"),
			 errdetail("Requested: " INT64_FORMAT " points. Available: " INT64_FORMAT " points.",
					   want, m->available)));
}

/*
 * Draw a spending debit (redeem, transfer, reward) of `want` points dated
 * `at`: only points available at `at` can be spent, so a debit dated before
 * the credits it would need fails as insufficient, nothing written. The
 * current balance is checked first (no query); the time rule costs nothing
 * more than the lot query every debit already makes.
 */
void
ly_draw_debit(Member *m, int64 want, TimestampTz at, DrawList *dl)
{
	int64		got;

	if (want > m->available)
		ly_insufficient(m, want);
	got = ly_draw_available(m, want, 0, at, dl);
	if (got == want)
		return;
	if (dl->later == 0)
		elog(ERROR, "loyalty: lots of member " INT64_FORMAT " do not cover its available balance", m->id);
	ereport(ERROR,
			(errcode(LY_INSUFFICIENT_POINTS),
			 errmsg("insufficient points at %s", timestamptz_to_str(at)),
			 errdetail("Requested: " INT64_FORMAT " points. Available at that time: " INT64_FORMAT
					   " points (" INT64_FORMAT " now).", want, got, m->available + got),
			 errhint("Points credited or released after a debit's business time cannot be spent by it.")));
}

/* ---- earn ---- */

/* attrs.partner: the partner that issues (and funds) the points, with its price now */
static void
partner_detail(Program *p, Jsonb *attrs, StringInfo out)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(&attrs->root, "partner", 7, &buf);
	char	   *code;
	Numeric		price;

	if (v == NULL)
		return;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PARTNER),
				 errmsg("attrs.partner must be a partner code (a JSON string)")));
	code = pnstrdup(v->val.string.val, v->val.string.len);
	(void) ly_partner(p->id, code, &price);
	appendStringInfo(out, ", \"partner\": %s, \"partner_price\": %s", ly_json_str(code), ly_json_num(price));
}

/*
 * An earn's detail without what the entry or a default already says (issue 8:
 * a plain earn stored 81 bytes of it): "tier", the tier held before the
 * purchase, only when it is not the entry's tier_after; "multiplier" and
 * "points_per_unit" only when not 1. statement() puts them back (70_reading.sql),
 * so it shows every earn as before; entries written by 1.0 carry all three.
 * "promoted_to": the tier this purchase reached (tier_earned), as before.
 * NULL when nothing is left (a plain earn).
 */
static Jsonb *
earn_detail(const char *tier_before, const char *tier_earned, const char *tier_after,
			Numeric multiplier, Numeric points_per_unit, const char *extra)
{
	StringInfoData d;
	char	   *mult = ly_json_num(multiplier);
	char	   *ppu = ly_json_num(points_per_unit);

	initStringInfo(&d);
	if (strcmp(tier_before, tier_after) != 0)
		appendStringInfo(&d, ", \"tier\": %s", ly_json_str(tier_before));
	if (strcmp(mult, "1") != 0)
		appendStringInfo(&d, ", \"multiplier\": %s", mult);
	if (strcmp(ppu, "1") != 0)
		appendStringInfo(&d, ", \"points_per_unit\": %s", ppu);
	if (strcmp(tier_before, tier_earned) != 0)
		appendStringInfo(&d, ", \"promoted_to\": %s", ly_json_str(tier_earned));
	appendStringInfoString(&d, extra);
	/* nothing left: NULL (8 bytes less than {} in the row); every part starts with ", " */
	return d.len > 0 ? ly_jsonb(psprintf("{%s}", d.data + 2)) : NULL;
}

/* earn(member, amount, idempotency_key, at, attrs): points for a purchase */
PG_FUNCTION_INFO_V1(loyalty_earn);
Datum
loyalty_earn(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	Numeric		amount = ly_arg_amount(fcinfo, 1, "amount", false);
	Op			op;
	Jsonb	   *attrs;
	Member	   *m;
	Program    *p;
	Numeric		multiplier;
	int64		points;
	NewLot		lot = {0};
	EntryRow	e = {0};
	const char *tier_before;
	const char *tier_earned;
	StringInfoData extra;

	ly_op_init(&op, "earn", ly_arg_key(fcinfo, 2), ly_arg_at(fcinfo, 3));
	attrs = ly_arg_object(fcinfo, 4, "attrs", true);
	/* the request is built only if a replay must be compared (earn_request) */
	op.earn_amount = amount;
	op.earn_attrs = attrs;

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		m = op.m;
		p = m->prog;
		/* the multiplier of the tier held before this purchase */
		multiplier = p->tiers[m->tier].multiplier;
		initStringInfo(&extra);
		partner_detail(p, attrs, &extra);
		/* base points, earning rules and basket lines (rules.c) */
		points = ly_rules_earn(m, amount, attrs, op.at, multiplier, &extra);

		ly_note_activity(m, op.at);
		m->lifetime_earned = ly_add_points(m->lifetime_earned, points);
		m->lifetime_spend = ly_num_add(m->lifetime_spend, amount);
		m->lifetime_visits += 1;
		tier_before = ly_tier_code(m);
		apply_qualifying(m, basis_contribution(p, points, amount, 1), op.at, op.at, true);

		if (points > 0)
		{
			lot.points = points;
			lot.at = op.at;
			lot.available_at = p->s.pending_days > 0 ? ly_add_days(op.at, p->s.pending_days, p->tz) : op.at;
			lot.has_expiry = ly_lot_expiry(p, lot.available_at, &lot.expires_at);
			ly_credit(m, &lot);
		}

		ly_entry_init(&e, &op, "earn", points);
		e.request = earn_stored_request(attrs);
		e.amount = amount;
		e.qualifying = basis_contribution(p, points, amount, 1);
		e.qualifying_at = op.at;
		tier_earned = ly_tier_code(m);
		/* before the entry, so its receipt columns (what a replay returns) count what the hooks paid */
		ly_after_purchase(&op, &e, attrs);
		/* after the hooks: whether "tier" is the entry's tier_after is known only now */
		e.detail = earn_detail(tier_before, tier_earned, ly_tier_code(m), multiplier,
							   p->s.points_per_unit, extra.data);
		write_credit(m, &e, points > 0 ? &lot : NULL);
		ly_op_receipt(&op, e.id, points);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* ---- award and adjust: credits (and, for adjust, debits) by reason ---- */

/*
 * Write a credit entry of `kind` (award, adjust, subscribe, renew): the points
 * (if any) become a lot available at once, with the program's expiry.
 */
void
ly_write_credit(Op *op, const char *kind, int64 points, const char *reason, Numeric amount,
				Jsonb *detail)
{
	Member	   *m = op->m;
	NewLot		lot = {0};
	EntryRow	e = {0};

	if (points > 0)
	{
		lot.points = points;
		lot.at = op->at;
		lot.available_at = op->at;
		lot.has_expiry = ly_lot_expiry(m->prog, op->at, &lot.expires_at);
		ly_credit(m, &lot);
		m->lifetime_earned = ly_add_points(m->lifetime_earned, points);
	}

	ly_entry_init(&e, op, kind, points);
	e.reason = reason;
	e.amount = amount;
	e.detail = detail;
	write_credit(m, &e, points > 0 ? &lot : NULL);
	ly_op_receipt(op, e.id, points);
}

/* award(member, points, reason, idempotency_key, at): bonus points */
PG_FUNCTION_INFO_V1(loyalty_award);
Datum
loyalty_award(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	int64		points = ly_arg_points(fcinfo, 1, "points", false);
	char	   *reason;
	Op			op;

	if (PG_ARGISNULL(2))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("reason must not be null")));
	reason = ly_arg_reason(fcinfo, 2, true);
	ly_op_init(&op, "award", ly_arg_key(fcinfo, 3), ly_arg_at(fcinfo, 4));
	op.request = ly_jsonb(psprintf("{\"points\": " INT64_FORMAT ", \"reason\": %s}", points, ly_json_str(reason)));

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		ly_note_activity(op.m, op.at);
		ly_write_credit(&op, "award", points, reason, NULL, NULL);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* adjust(member, points, reason, idempotency_key, at): staff correction */
PG_FUNCTION_INFO_V1(loyalty_adjust);
Datum
loyalty_adjust(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	int64		points = ly_arg_points(fcinfo, 1, "points", true);
	char	   *reason = ly_arg_reason(fcinfo, 2, true);
	Op			op;

	ly_op_init(&op, "adjust", ly_arg_key(fcinfo, 3), ly_arg_at(fcinfo, 4));
	op.request = ly_jsonb(psprintf("{\"points\": " INT64_FORMAT ", \"reason\": %s}", points, ly_json_str(reason)));

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		ly_note_activity(op.m, op.at);
		if (points > 0)
			ly_write_credit(&op, "adjust", points, reason, NULL, NULL);
		else
		{
			Member	   *m = op.m;
			DrawList	dl = {0};
			NewLot		debt = {0};
			EntryRow	e = {0};
			int64		shortfall;
			int64		moved;

			moved = take_back(m, -points, 0, op.at, &dl, &debt, &shortfall, "this adjustment");
			m->redeemed = ly_add_points(m->redeemed, moved);

			ly_entry_init(&e, &op, "adjust", -moved);
			e.reason = reason;
			if (moved != -points)
				e.detail = ly_jsonb(psprintf("{\"requested\": " INT64_FORMAT ", \"clamped\": " INT64_FORMAT "}",
											 points, -points - moved));
			write_debit(&op, &e, &dl, &debt);
		}
		/* who moved money by hand, and why (replays write nothing) */
		ly_audit("adjust", op.m->prog->id, op.m->id, reason,
				 ly_jsonb(psprintf("{\"points\": " INT64_FORMAT ", \"entry_id\": " INT64_FORMAT
								   ", \"idempotency_key\": %s}", op.r.points, op.r.entry_id,
								   ly_json_str(op.key))));
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* ---- redeem ---- */

/* Spend points; at a partner when partner is not NULL (it is owed for them). */
static Datum
do_redeem(FunctionCallInfo fcinfo, int64 member_id, int64 points, char *key, TimestampTz at,
		  char *reason, char *partner)
{
	Op			op;

	ly_op_init(&op, "redeem", key, at);
	op.request = ly_jsonb(partner
						  ? psprintf("{\"points\": " INT64_FORMAT ", \"reason\": %s, \"partner\": %s}",
									 points, ly_json_str(reason), ly_json_str(partner))
						  : psprintf("{\"points\": " INT64_FORMAT ", \"reason\": %s}", points, ly_json_str(reason)));

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		Member	   *m = op.m;
		DrawList	dl = {0};
		EntryRow	e = {0};

		if (partner)
		{
			Numeric		price;

			(void) ly_partner(m->prog->id, partner, &price);
			e.detail = ly_jsonb(psprintf("{\"partner\": %s, \"partner_price\": %s}",
										 ly_json_str(partner), ly_json_num(price)));
		}
		ly_draw_debit(m, points, op.at, &dl);
		ly_note_activity(m, op.at);
		m->redeemed = ly_add_points(m->redeemed, points);

		ly_entry_init(&e, &op, "redeem", -points);
		e.reason = reason;
		write_debit(&op, &e, &dl, NULL);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* redeem(member, points, idempotency_key, at, reason): spend points */
PG_FUNCTION_INFO_V1(loyalty_redeem);
Datum
loyalty_redeem(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	int64		points = ly_arg_points(fcinfo, 1, "points", false);
	char	   *reason = ly_arg_reason(fcinfo, 4, false);
	char	   *key = ly_arg_key(fcinfo, 2);
	TimestampTz at = ly_arg_at(fcinfo, 3);

	return do_redeem(fcinfo, member_id, points, key, at, reason, NULL);
}

/* partner_redeem(member, points, partner, idempotency_key, at, reason): spend points at a partner */
PG_FUNCTION_INFO_V1(loyalty_partner_redeem);
Datum
loyalty_partner_redeem(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	int64		points = ly_arg_points(fcinfo, 1, "points", false);
	char	   *partner = ly_arg_name(fcinfo, 2, "partner");
	char	   *reason = ly_arg_reason(fcinfo, 5, false);
	char	   *key = ly_arg_key(fcinfo, 3);
	TimestampTz at = ly_arg_at(fcinfo, 4);

	return do_redeem(fcinfo, member_id, points, key, at, reason, partner);
}

/* ---- reverse ---- */

static LyQuery q_purchase = {
	"SELECT e.id, e.points, e.amount, e.at, "
	"       (SELECT l.id FROM loyalty.lot l WHERE l.member_id = e.member_id AND l.entry_id = e.id), "
	"       (SELECT coalesce(sum(r.amount), 0) FROM loyalty.entry r "
	"         WHERE r.member_id = e.member_id AND r.ref_entry_id = e.id AND r.kind = 'reverse'), "
	"       (SELECT coalesce(sum((r.detail ->> 'points_due')::bigint), 0)::bigint FROM loyalty.entry r "
	"         WHERE r.member_id = e.member_id AND r.ref_entry_id = e.id AND r.kind = 'reverse'), "
	"       coalesce(e.detail, '{}') "
	"  FROM loyalty.entry e WHERE e.member_id = $1 AND e.idempotency_key = $2 AND e.kind = 'earn'",
	2, {INT8OID, TEXTOID}, NULL};

/*
 * A refund of part of a purchase: `amount` of money (NULL: all that is left), or
 * `lines` of a basket purchase (their money and exactly their points).
 */
static Datum
do_reverse(FunctionCallInfo fcinfo, int64 member_id, char *original_key, Numeric amount,
		   Jsonb *lines, char *key, TimestampTz at)
{
	Op			op;

	ly_op_init(&op, "reverse", key, at);
	op.request = lines
		? ly_jsonb(psprintf("{\"original_key\": %s, \"lines\": %s}", ly_json_str(original_key),
							JsonbToCString(NULL, &lines->root, VARSIZE(lines))))
		: ly_jsonb(psprintf("{\"original_key\": %s, \"amount\": %s}",
							ly_json_str(original_key), ly_json_num(amount)));

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		Member	   *m = op.m;
		Program    *p = m->prog;
		Datum		v[2] = {Int64GetDatum(member_id), CStringGetTextDatum(original_key)};
		int64		orig_id;
		int64		earned;
		Numeric		paid;
		TimestampTz bought_at;
		int64		orig_lot;
		Numeric		refunded;
		int64		due_before;
		Numeric		left;
		Numeric		cumulative;
		bool		full;
		int64		due;
		int64		shortfall;
		int64		moved;
		DrawList	dl = {0};
		NewLot		debt = {0};
		EntryRow	e = {0};
		bool		isnull;
		Numeric		contribution;
		Jsonb	   *orig_detail;
		StringInfoData extra;
		RuleTake	cand = {0};
		int64		line_points = 0;
		JsonbValue	jb;
		JsonbValue *pv;

		if (ly_run(&q_purchase, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_PURCHASE),
					 errmsg("member " INT64_FORMAT " has no purchase with idempotency key \"%s\"",
							member_id, original_key),
					 errhint("original_key is the idempotency key of the earn being refunded.")));
		orig_id = ly_get_int64(0, 1);
		earned = ly_get_int64(0, 2);
		paid = ly_get_numeric(0, 3);
		bought_at = DatumGetTimestampTz(ly_get(0, 4, &isnull));
		(void) ly_get_int64_null(0, 5, &orig_lot);
		refunded = ly_get_numeric(0, 6);
		due_before = ly_get_int64(0, 7);
		orig_detail = DatumGetJsonbPCopy(ly_get(0, 8, &isnull));

		if (op.at < bought_at)
			ereport(ERROR,
					(errcode(LY_INVALID_TIMESTAMP),
					 errmsg("a refund cannot be dated before the purchase it refunds"),
					 errdetail("The purchase is dated %s.", timestamptz_to_str(bought_at))));
		initStringInfo(&extra);
		if (lines)
			ly_lines_return(m, orig_id, orig_detail, lines, &amount, &line_points, &cand, &extra);
		left = ly_num_sub(paid, refunded);
		if (amount == NULL)
		{
			if (ly_num_cmp(left, ly_num_zero()) <= 0)
				ereport(ERROR,
						(errcode(LY_REFUND_EXCEEDS),
						 errmsg("purchase \"%s\" is already fully refunded", original_key)));
			amount = left;
		}
		else if (ly_num_cmp(amount, left) > 0)
			ereport(ERROR,
					(errcode(LY_REFUND_EXCEEDS),
					 errmsg("refund exceeds what is left of purchase \"%s\"", original_key),
					 errdetail("The purchase was %s, %s is already refunded; %s was asked.",
							   ly_json_num(paid), ly_json_num(refunded), ly_json_num(amount))));
		cumulative = ly_num_add(refunded, amount);
		full = ly_num_cmp(cumulative, paid) == 0;

		/*
		 * Points due, cumulatively, so partial refunds never add up to more than
		 * earned: by amount, the purchase's share; by lines, those lines' points
		 * (never more than is left); the last refund takes exactly the rest.
		 */
		if (full)
			due = earned - due_before;
		else if (lines)
			due = Min(line_points, earned - due_before);
		else
			due = ly_numeric_points(ly_div_rounded(ly_num_mul(int64_to_numeric(earned), cumulative),
												   paid, p->s.rounding), "the points to take back") - due_before;
		due = Max(due, 0);
		/* which rules gave the points taken back; cap usage given back (rules.c) */
		ly_rules_refund(m, orig_id, orig_detail, earned, due, full, cumulative, paid,
						lines ? &cand : NULL, &extra);
		pv = getKeyJsonValueFromContainer(&orig_detail->root, "partner", 7, &jb);
		if (pv != NULL && pv->type == jbvString)
		{
			JsonbValue	jb2;
			JsonbValue *pp = getKeyJsonValueFromContainer(&orig_detail->root, "partner_price", 13, &jb2);

			appendStringInfo(&extra, ", \"partner\": %s, \"partner_price\": %s",
							 ly_json_str(pnstrdup(pv->val.string.val, pv->val.string.len)),
							 pp && pp->type == jbvNumeric ? ly_json_num(pp->val.numeric) : "0");
		}

		moved = take_back(m, due, orig_lot, op.at, &dl, &debt, &shortfall, "this refund");
		m->lifetime_earned -= moved;
		m->lifetime_spend = ly_num_sub(m->lifetime_spend, amount);
		if (full)
			m->lifetime_visits -= 1;
		contribution = DatumGetNumeric(DirectFunctionCall1(numeric_uminus,
			NumericGetDatum(basis_contribution(p, due, amount, full ? 1 : 0))));
		apply_qualifying(m, contribution, bought_at, op.at, false);

		ly_entry_init(&e, &op, "reverse", -moved);
		e.amount = amount;
		e.ref_entry_id = orig_id;
		e.qualifying = contribution;
		e.qualifying_at = bought_at;
		e.detail = ly_jsonb(psprintf("{\"original_entry\": " INT64_FORMAT ", \"points_due\": " INT64_FORMAT
									 ", \"from_pending\": " INT64_FORMAT ", \"debt\": " INT64_FORMAT
									 ", \"clamped\": " INT64_FORMAT ", \"full_refund\": %s%s}",
									 orig_id, due, dl.from_pending,
									 debt.points ? -debt.points : (int64) 0,
									 p->s.negative_balance == NEG_CLAMP ? shortfall : (int64) 0,
									 full ? "true" : "false", extra.data));
		ly_after_refund(&op, &e, orig_id, amount, full);	/* before the entry: see earn */
		ly_insert_entry(m, &e);
		ly_write_draws(m, e.id, op.at, &dl);
		if (debt.points)
			ly_write_lot(m, e.id, &debt);
		ly_save_member(m);
		ly_op_receipt(&op, e.id, e.points);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* reverse(member, original_key, amount, idempotency_key, at): a refund */
PG_FUNCTION_INFO_V1(loyalty_reverse);
Datum
loyalty_reverse(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *original_key;
	Numeric		amount = ly_arg_amount(fcinfo, 2, "amount", true);
	char	   *key;
	TimestampTz at;

	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("original_key must not be null")));
	original_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	key = ly_arg_key(fcinfo, 3);
	at = ly_arg_at(fcinfo, 4);
	return do_reverse(fcinfo, member_id, original_key, amount, NULL, key, at);
}

/* reverse_lines(member, original_key, lines, idempotency_key, at): return lines of a basket */
PG_FUNCTION_INFO_V1(loyalty_reverse_lines);
Datum
loyalty_reverse_lines(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *original_key;
	Jsonb	   *lines;
	char	   *key;
	TimestampTz at;

	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("original_key must not be null")));
	original_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (PG_ARGISNULL(2))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("lines must not be null")));
	lines = PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_ARRAY(lines) || JB_ROOT_IS_SCALAR(lines))
		ereport(ERROR,
				(errcode(LY_INVALID_RETURN),
				 errmsg("lines must be a JSON array such as [{\"line\": 1}, {\"line\": 3, \"qty\": 1}]")));
	key = ly_arg_key(fcinfo, 3);
	at = ly_arg_at(fcinfo, 4);
	return do_reverse(fcinfo, member_id, original_key, NULL, lines, key, at);
}

/* ---- transfer ---- */

/* transfer(from_member, to_member, points, idempotency_key, at): move points */
PG_FUNCTION_INFO_V1(loyalty_transfer);
Datum
loyalty_transfer(PG_FUNCTION_ARGS)
{
	int64		from_id = ly_arg_id(fcinfo, 0, "from_member");
	int64		to_id = ly_arg_id(fcinfo, 1, "to_member");
	int64		points = ly_arg_points(fcinfo, 2, "points", false);
	Op			op;
	Member	   *from;
	Member	   *to;
	SweepStats	st = {0};

	ly_op_init(&op, "transfer_out", ly_arg_key(fcinfo, 3), ly_arg_at(fcinfo, 4));
	op.request = ly_jsonb(psprintf("{\"to_member\": " INT64_FORMAT ", \"points\": " INT64_FORMAT "}", to_id, points));
	if (from_id == to_id)
		ereport(ERROR,
				(errcode(LY_INVALID_TRANSFER),
				 errmsg("cannot transfer points from a member to itself")));

	SPI_connect();
	/* lock both members in id order, so opposite transfers cannot deadlock */
	if (from_id < to_id)
	{
		from = ly_lock_member(from_id, NULL);
		to = ly_lock_member(to_id, from->prog);
	}
	else
	{
		to = ly_lock_member(to_id, NULL);
		from = ly_lock_member(from_id, to->prog);
	}
	if (from->prog->id != to->prog->id)
		ereport(ERROR,
				(errcode(LY_INVALID_TRANSFER),
				 errmsg("cannot transfer points between programs"),
				 errdetail("Member " INT64_FORMAT " and member " INT64_FORMAT " belong to different programs.",
						   from_id, to_id)));
	op.m = from;
	if (!ly_op_replayed(&op, from_id))
	{
		DrawList	dl = {0};
		NewLot	   *lots;
		EntryRow	out = {0};
		EntryRow	in = {0};
		int			i;

		ly_sweep(from, op.at, &st);
		ly_sweep(to, op.at, &st);
		ly_note_activity(from, op.at);
		ly_note_activity(to, op.at);
		ly_draw_debit(from, points, op.at, &dl);
		from->redeemed = ly_add_points(from->redeemed, points);

		/* the receiver's lots keep the expiry dates of the lots they came from */
		lots = palloc0(sizeof(NewLot) * dl.n);
		for (i = 0; i < dl.n; i++)
		{
			lots[i].points = dl.d[i].points;
			lots[i].at = lots[i].available_at = op.at;
			lots[i].has_expiry = dl.d[i].has_expiry;
			lots[i].expires_at = dl.d[i].expires_at;
			lots[i].source_lot = dl.d[i].lot_id;
			ly_credit(to, &lots[i]);
		}
		to->lifetime_earned = ly_add_points(to->lifetime_earned, points);

		ly_entry_init(&out, &op, "transfer_out", -points);
		out.counterparty_id = to_id;
		ly_insert_entry(from, &out);
		ly_write_draws(from, out.id, op.at, &dl);

		in.id = ly_nextval("loyalty.entry_id_seq");
		in.kind = "transfer_in";
		in.points = points;
		in.at = op.at;
		in.ref_entry_id = out.id;
		in.counterparty_id = from_id;
		ly_insert_entry(to, &in);
		for (i = 0; i < dl.n; i++)
			ly_write_lot(to, in.id, &lots[i]);

		ly_save_member(from);
		ly_save_member(to);
		ly_op_receipt(&op, out.id, -points);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}
