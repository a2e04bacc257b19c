/*
 * vouchers.c: the rewards catalog and signed voucher codes.
 *
 * redeem_reward spends points, takes one from stock and issues a voucher in
 * one transaction. The code format is in codes.c; its MAC is the first 40 bits
 * of HMAC-SHA256(key, "loyalty-voucher" | version | key id | voucher id).
 *
 * The check character catches every mistyped character and every swap of two
 * neighbours before any lookup; the MAC makes codes impossible to forge or
 * guess without the key (keys live in loyalty.voucher_key, which only the
 * extension's owner can read: the functions here are SECURITY DEFINER).
 * Keys rotate (old codes stay valid until they expire) and can be revoked.
 */
#include "loyalty.h"
#include "codes.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#define ID_BITS		LYC_ID_BITS
#define MAC_BITS	LYC_MAC_BITS
#define KEY_BITS	LYC_KEY_BITS
#define CODE_LEN	LYC_LEN
#define CODE_VERSION LYC_VERSION

/* ---- the code format (codes.c) with its MAC ---- */

static void
code_mac(const unsigned char *secret, int keylen, int key_id, int64 voucher_id, unsigned char *mac)
{
	unsigned char msg[32];
	int			n = 0;
	int			i;

	memcpy(msg, "loyalty-voucher", 15);
	n = 15;
	msg[n++] = CODE_VERSION;
	msg[n++] = (unsigned char) key_id;
	for (i = 7; i >= 0; i--)
		msg[n++] = (unsigned char) ((uint64) voucher_id >> (8 * i));
	ly_hmac_sha256(secret, keylen, msg, n, mac);
}

static uint64
mac_bits(const unsigned char *mac)
{
	uint64		v = 0;
	int			i;

	for (i = 0; i < MAC_BITS / 8; i++)
		v = (v << 8) | mac[i];
	return v;
}

/* The display form of a voucher's code. */
static char *
encode_code(const unsigned char *secret, int keylen, int key_id, int64 voucher_id)
{
	unsigned char mac[32];
	char	   *out = palloc(CODE_LEN + 3);

	code_mac(secret, keylen, key_id, voucher_id, mac);
	lyc_format(mac_bits(mac), key_id, voucher_id, out);
	return out;
}

typedef struct Verdict
{
	const char *status;			/* valid, used, expired, cancelled, malformed, mistyped, forged, revoked */
	int			sqlstate;		/* 0 when valid */
	const char *message;
} Verdict;

static bool
decode_code(const char *text, LycCode *d, Verdict *why)
{
	switch (lyc_parse(text, d))
	{
		case LYC_OK:
			return true;
		case LYC_MALFORMED:
			why->status = "malformed";
			why->sqlstate = LY_CODE_MALFORMED;
			why->message = "voucher code is malformed (a character outside the code alphabet, or the wrong length)";
			return false;
		case LYC_MISTYPED:
			why->status = "mistyped";
			why->sqlstate = LY_CODE_MISTYPED;
			why->message = "voucher code is mistyped (its check character does not match)";
			return false;
		case LYC_BAD_VERSION:
			break;
	}
	why->status = "forged";
	why->sqlstate = LY_CODE_FORGED;
	why->message = "voucher code is not genuine";
	return false;
}

static LyQuery q_key = {
	"SELECT secret, revoked_at IS NOT NULL FROM loyalty.voucher_key WHERE id = $1", 1, {INT4OID}, NULL};

/* Is the code genuine: known key, not revoked, MAC right? */
static bool
verify_code(LycCode *d, Verdict *why)
{
	Datum		arg = Int32GetDatum(d->key_id);
	bool		isnull;
	bytea	   *secret;
	unsigned char mac[32];
	unsigned char want[MAC_BITS / 8];
	unsigned char got[MAC_BITS / 8];
	int			i;

	if (ly_run(&q_key, &arg, NULL, 1) != 1)
	{
		why->status = "forged";
		why->sqlstate = LY_CODE_FORGED;
		why->message = "voucher code is not genuine";
		return false;
	}
	secret = DatumGetByteaPP(ly_get(0, 1, &isnull));
	code_mac((unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret), d->key_id, d->voucher_id, mac);
	for (i = 0; i < MAC_BITS / 8; i++)
	{
		want[i] = mac[i];
		got[i] = (unsigned char) (d->mac >> (8 * (MAC_BITS / 8 - 1 - i)));
	}
	if (!ly_equal_ct(want, got, sizeof(want)))
	{
		why->status = "forged";
		why->sqlstate = LY_CODE_FORGED;
		why->message = "voucher code is not genuine";
		return false;
	}
	if (DatumGetBool(ly_get(0, 2, &isnull)))
	{
		why->status = "revoked";
		why->sqlstate = LY_KEY_REVOKED;
		why->message = "voucher code was signed with a revoked key";
		return false;
	}
	return true;
}

static void
refuse(Verdict *why)
{
	ereport(ERROR, (errcode(why->sqlstate), errmsg("%s", why->message)));
}

/* ---- keys ---- */

static LyQuery q_current_key = {
	"SELECT id, secret FROM loyalty.voucher_key WHERE revoked_at IS NULL ORDER BY id DESC LIMIT 1",
	0, {InvalidOid}, NULL};

static LyQuery q_new_key = {
	"INSERT INTO loyalty.voucher_key (id, secret) "
	"SELECT coalesce(max(id), 0) + 1, $1 FROM loyalty.voucher_key "
	"HAVING coalesce(max(id), 0) < $2 RETURNING id", 2, {BYTEAOID, INT4OID}, NULL};

/*
 * The first key is made by the first redeem, not by the install script: a key row
 * written by CREATE EXTENSION would clash with the dumped keys when pg_restore
 * reloads voucher_key (and a fresh secret there would turn every code forged).
 * Only when there has never been a key: revoking them all still stops issuing.
 */
static LyQuery q_first_key = {
	"INSERT INTO loyalty.voucher_key (id, secret) SELECT 1, $1 "
	" WHERE NOT EXISTS (SELECT FROM loyalty.voucher_key) ON CONFLICT (id) DO NOTHING",
	1, {BYTEAOID}, NULL};

static void
first_key(void)
{
	bytea	   *secret = palloc(VARHDRSZ + 32);
	Datum		v[1];

	SET_VARSIZE(secret, VARHDRSZ + 32);
	ly_random_bytes((unsigned char *) VARDATA(secret), 32);
	v[0] = PointerGetDatum(secret);
	ly_run(&q_first_key, v, NULL, 0);
}

/* rotate_voucher_key(): a new signing key from OpenSSL's CSPRNG; old ones stay valid */
PG_FUNCTION_INFO_V1(loyalty_rotate_voucher_key);
Datum
loyalty_rotate_voucher_key(PG_FUNCTION_ARGS)
{
	bytea	   *secret = palloc(VARHDRSZ + 32);
	Datum		v[2];
	int32		id;

	SET_VARSIZE(secret, VARHDRSZ + 32);
	ly_random_bytes((unsigned char *) VARDATA(secret), 32);
	v[0] = PointerGetDatum(secret);
	v[1] = Int32GetDatum((1 << KEY_BITS) - 1);
	SPI_connect();
	if (ly_run(&q_new_key, v, NULL, 0) != 1)
		ereport(ERROR,
				(errcode(LY_NO_VOUCHER_KEY),
				 errmsg("all %d voucher key ids are used", (1 << KEY_BITS) - 1),
				 errhint("A new code format version is needed to rotate further.")));
	id = (int32) ly_get_int64(0, 1);
	SPI_finish();
	PG_RETURN_INT32(id);
}

/* ---- redeem_reward ---- */

static LyQuery q_reward = {
	"SELECT id, cost_points, stock, valid_from, valid_until, min_tier_id, per_member_limit, "
	"       voucher_valid_days, active, grants "
	"  FROM loyalty.reward WHERE program_id = $1 AND code = $2", 2, {INT8OID, TEXTOID}, NULL};

static LyQuery q_member_vouchers = {
	"SELECT count(*) FROM loyalty.voucher "
	" WHERE member_id = $1 AND reward_id = $2 AND cancelled_at IS NULL", 2, {INT8OID, INT8OID}, NULL};

static LyQuery q_take_stock = {
	"UPDATE loyalty.reward SET stock = stock - 1 WHERE id = $1 AND stock > 0 RETURNING stock", 1,
	{INT8OID}, NULL};

static LyQuery q_insert_voucher = {
	"INSERT INTO loyalty.voucher (member_id, id, reward_id, code, key_id, issued_at, expires_at, "
	"       redeem_entry_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8,
	{INT8OID, INT8OID, INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}, NULL};

static LyQuery q_voucher_of_entry = {
	"SELECT id, code, expires_at FROM loyalty.voucher WHERE member_id = $1 AND redeem_entry_id = $2",
	2, {INT8OID, INT8OID}, NULL};

static Datum
voucher_receipt(FunctionCallInfo fcinfo, Receipt *r, int64 voucher_id, const char *code,
				TimestampTz expires_at)
{
	TupleDesc	tupdesc;
	Datum		v[10];
	bool		n[10] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: voucher_receipt type expected");
	tupdesc = BlessTupleDesc(tupdesc);
	ly_receipt_values(r, v, n);
	v[7] = Int64GetDatum(voucher_id);
	v[8] = CStringGetTextDatum(code);
	v[9] = TimestampTzGetDatum(expires_at);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, v, n));
}

/* redeem_reward(member, reward_code, idempotency_key, at): points for a voucher */
PG_FUNCTION_INFO_V1(loyalty_redeem_reward);
Datum
loyalty_redeem_reward(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *reward = ly_arg_name(fcinfo, 1, "reward_code");
	Op			op;
	int64		voucher_id = 0;
	char	   *code = NULL;
	TimestampTz expires_at = 0;
	Datum		v[8];
	bool		isnull;

	ly_op_init(&op, "redeem", ly_arg_key(fcinfo, 2), ly_arg_at(fcinfo, 3));
	op.request = ly_jsonb(psprintf("{\"reward\": %s}", ly_json_str(reward)));

	SPI_connect();
	if (!ly_op_begin(&op, member_id))
	{
		/* a replay: the voucher that first call issued */
		v[0] = Int64GetDatum(member_id);
		v[1] = Int64GetDatum(op.r.entry_id);
		if (ly_run(&q_voucher_of_entry, v, NULL, 1) != 1)
			elog(ERROR, "loyalty: voucher of entry " INT64_FORMAT " not found", op.r.entry_id);
		voucher_id = ly_get_int64(0, 1);
		code = MemoryContextStrdup(op.callcxt, ly_get_text(0, 2));
		expires_at = DatumGetTimestampTz(ly_get(0, 3, &isnull));
	}
	else
	{
		Member	   *m = op.m;
		Program    *p = m->prog;
		int64		reward_id;
		int64		cost;
		bool		unlimited;
		int64		min_tier;
		int64		limit;
		int			days;
		int			key_id;
		bytea	   *secret;
		DrawList	dl = {0};
		EntryRow	e = {0};
		int			i;

		v[0] = Int64GetDatum(p->id);
		v[1] = CStringGetTextDatum(reward);
		if (ly_run(&q_reward, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_REWARD),
					 errmsg("reward \"%s\" does not exist in the member's program", reward)));
		reward_id = ly_get_int64(0, 1);
		cost = ly_get_int64(0, 2);
		(void) ly_get(0, 3, &unlimited);
		{
			bool		nf, nu;
			TimestampTz from = DatumGetTimestampTz(ly_get(0, 4, &nf));
			TimestampTz until = DatumGetTimestampTz(ly_get(0, 5, &nu));

			if (!DatumGetBool(ly_get(0, 9, &isnull)) || (!nf && op.at < from) || (!nu && op.at >= until))
				ereport(ERROR,
						(errcode(LY_REWARD_UNAVAILABLE),
						 errmsg("reward \"%s\" is not available at this time", reward)));
		}
		if (ly_get_int64_null(0, 6, &min_tier))
		{
			for (i = 0; i < p->ntiers && p->tiers[i].id != min_tier; i++)
				;
			if (i < p->ntiers && ly_num_cmp(p->tiers[m->tier].threshold, p->tiers[i].threshold) < 0)
				ereport(ERROR,
						(errcode(LY_REWARD_TIER),
						 errmsg("reward \"%s\" needs tier \"%s\" or higher", reward, p->tiers[i].code)));
		}
		days = (int) ly_get_int64(0, 8);
		if (ly_get_int64_null(0, 7, &limit))
		{
			v[0] = Int64GetDatum(m->id);
			v[1] = Int64GetDatum(reward_id);
			ly_run(&q_member_vouchers, v, NULL, 1);
			if (ly_get_int64(0, 1) >= limit)
				ereport(ERROR,
						(errcode(LY_REWARD_LIMIT),
						 errmsg("member " INT64_FORMAT " has reached the limit of %lld for reward \"%s\"",
								m->id, (long long) limit, reward)));
		}
		ly_check_reward_segment(m, reward_id, reward, op.at);	/* segments.c */
		/* only points available at op.at pay (no write yet: a later error leaves nothing) */
		ly_draw_debit(m, cost, op.at, &dl);
		/* stock last: the reward's row lock is held only by members who can pay */
		if (!unlimited)
		{
			v[0] = Int64GetDatum(reward_id);
			if (ly_run(&q_take_stock, v, NULL, 0) != 1)
				ereport(ERROR,
						(errcode(LY_OUT_OF_STOCK),
						 errmsg("reward \"%s\" is out of stock", reward)));
		}
		if (ly_run(&q_current_key, NULL, NULL, 1) != 1 &&
			(first_key(), ly_run(&q_current_key, NULL, NULL, 1) != 1))
			ereport(ERROR,
					(errcode(LY_NO_VOUCHER_KEY),
					 errmsg("there is no active voucher key"),
					 errhint("Create one with loyalty.rotate_voucher_key().")));
		key_id = (int) ly_get_int64(0, 1);
		secret = DatumGetByteaPCopy(ly_get(0, 2, &isnull));

		ly_note_activity(m, op.at);
		m->redeemed = ly_add_points(m->redeemed, cost);

		voucher_id = ly_nextval("loyalty.voucher_id_seq");
		if (voucher_id >= ((int64) 1 << ID_BITS))
			elog(ERROR, "loyalty: voucher ids are exhausted for code version %d", CODE_VERSION);
		code = MemoryContextStrdup(op.callcxt,
								   encode_code((unsigned char *) VARDATA_ANY(secret),
											   VARSIZE_ANY_EXHDR(secret), key_id, voucher_id));
		expires_at = ly_add_days(op.at, days, p->tz);

		ly_entry_init(&e, &op, "redeem", -cost);
		e.reason = psprintf("reward %s", reward);
		e.detail = ly_jsonb(psprintf("{\"reward\": %s, \"voucher\": " INT64_FORMAT "}",
									 ly_json_str(reward), voucher_id));
		ly_insert_entry(m, &e);
		ly_write_draws(m, e.id, op.at, &dl);

		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(voucher_id);
		v[2] = Int64GetDatum(reward_id);
		v[3] = CStringGetTextDatum(code);
		v[4] = Int32GetDatum(key_id);
		v[5] = TimestampTzGetDatum(op.at);
		v[6] = TimestampTzGetDatum(expires_at);
		v[7] = Int64GetDatum(e.id);
		ly_run(&q_insert_voucher, v, NULL, 0);
		ly_outbox_emit(p->id, m->id, "voucher_issued", op.at, ly_jsonb(psprintf("{\"voucher_id\": " INT64_FORMAT ", \"reward\": %s, \"points\": " INT64_FORMAT "}", voucher_id, ly_json_str(reward), cost)));
		ly_save_member(m);
		ly_op_receipt(&op, e.id, -cost);
	}
	SPI_finish();
	PG_RETURN_DATUM(voucher_receipt(fcinfo, &op.r, voucher_id, code, expires_at));
}

/* ---- check and use ---- */

/* A voucher by the id its code carries; the key must be the one it was issued under. */
static LyQuery q_voucher = {
	"SELECT v.member_id, r.code, r.name, r.grants, v.issued_at, v.expires_at, v.used_at, "
	"       v.cancelled_at, v.used_key, v.code "
	"  FROM loyalty.voucher v JOIN loyalty.reward r ON r.id = v.reward_id "
	"  JOIN loyalty.program p ON p.id = r.program_id "
	" WHERE v.id = $1 AND v.key_id = $2 AND loyalty.caller_may_use(p.tenant)", 2, {INT8OID, INT4OID}, NULL};

static LyQuery q_voucher_lock = {
	"SELECT v.member_id, r.code, r.name, r.grants, v.issued_at, v.expires_at, v.used_at, "
	"       v.cancelled_at, v.used_key, v.code "
	"  FROM loyalty.voucher v JOIN loyalty.reward r ON r.id = v.reward_id "
	"  JOIN loyalty.program p ON p.id = r.program_id "
	" WHERE v.id = $1 AND v.key_id = $2 AND loyalty.caller_may_use(p.tenant) FOR UPDATE OF v", 2, {INT8OID, INT4OID}, NULL};

/* Decode, verify and read a voucher; the lifecycle verdict is relative to `at`. */
static bool
read_voucher(const char *text, TimestampTz at, bool lock, LycCode *d, Verdict *why)
{
	bool		isnull;

	why->status = "valid";
	why->sqlstate = 0;
	why->message = NULL;
	if (!decode_code(text, d, why) || !verify_code(d, why))
		return false;
	{
		Datum		args[2] = {Int64GetDatum(d->voucher_id), Int32GetDatum(d->key_id)};

		if (ly_run(lock ? &q_voucher_lock : &q_voucher, args, NULL, 1) != 1)
		{
			why->status = "forged";
			why->sqlstate = LY_CODE_FORGED;
			why->message = "voucher code is not genuine";
			return false;
		}
	}
	(void) ly_get(0, 7, &isnull);
	if (!isnull)
	{
		why->status = "used";
		why->sqlstate = LY_VOUCHER_USED;
		why->message = "voucher was already used";
		return true;
	}
	(void) ly_get(0, 8, &isnull);
	if (!isnull)
	{
		why->status = "cancelled";
		why->sqlstate = LY_VOUCHER_CANCELLED;
		why->message = "voucher was cancelled";
		return true;
	}
	if (at >= DatumGetTimestampTz(ly_get(0, 6, &isnull)))
	{
		why->status = "expired";
		why->sqlstate = LY_VOUCHER_EXPIRED;
		why->message = "voucher has expired";
	}
	return true;
}

/* check_voucher(code, at): is it valid, for what, expired, used? Never raises for a bad code. */
PG_FUNCTION_INFO_V1(loyalty_check_voucher);
Datum
loyalty_check_voucher(PG_FUNCTION_ARGS)
{
	char	   *input;
	TimestampTz at = ly_arg_at(fcinfo, 1);
	TupleDesc	tupdesc;
	Datum		v[11];
	bool		n[11];
	LycCode		d;
	Verdict		why;
	bool		found;
	int			i;
	HeapTupleHeader hdr;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("code must not be null")));
	input = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: composite result expected");
	tupdesc = BlessTupleDesc(tupdesc);
	for (i = 0; i < 11; i++)
		n[i] = true;

	SPI_connect();
	found = read_voucher(input, at, false, &d, &why);
	v[0] = CStringGetTextDatum(why.status);
	n[0] = false;
	v[1] = CStringGetTextDatum(why.sqlstate ? unpack_sql_state(why.sqlstate) : "00000");
	n[1] = false;
	if (found)
	{
		v[2] = Int64GetDatum(d.voucher_id);
		n[2] = false;
		for (i = 1; i <= 8; i++)
			v[2 + i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i, &n[2 + i]);
	}
	/* copy the row out of SPI memory before SPI_finish */
	hdr = SPI_returntuple(heap_form_tuple(tupdesc, v, n), tupdesc);
	SPI_finish();
	PG_RETURN_DATUM(PointerGetDatum(hdr));
}

/* use_voucher(code, idempotency_key, at): spend it exactly once */
PG_FUNCTION_INFO_V1(loyalty_use_voucher);
Datum
loyalty_use_voucher(PG_FUNCTION_ARGS)
{
	char	   *input;
	char	   *key = ly_arg_key(fcinfo, 1);
	TimestampTz at = ly_arg_at(fcinfo, 2);
	TupleDesc	tupdesc;
	Datum		v[6];
	bool		n[6] = {0};
	LycCode		d;
	Verdict		why;
	bool		isnull;
	bool		replayed = false;
	TimestampTz used_at = at;
	HeapTupleHeader hdr;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("code must not be null")));
	input = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: composite result expected");
	tupdesc = BlessTupleDesc(tupdesc);

	SPI_connect();
	/* the row lock makes two tills using one voucher at once take turns */
	if (!read_voucher(input, at, true, &d, &why))
		refuse(&why);
	if (why.sqlstate == LY_VOUCHER_USED)
	{
		char	   *used_key = ly_get_text(0, 9);

		used_at = DatumGetTimestampTz(ly_get(0, 7, &isnull));
		if (used_key == NULL || strcmp(used_key, key) != 0)
			ereport(ERROR,
					(errcode(LY_VOUCHER_USED),
					 errmsg("voucher was already used at %s", timestamptz_to_str(used_at))));
		replayed = true;
	}
	else if (why.sqlstate != 0)
		refuse(&why);

	v[0] = Int64GetDatum(d.voucher_id);
	v[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n[1]);
	v[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n[2]);
	v[3] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &n[3]);
	v[4] = TimestampTzGetDatum(used_at);
	v[5] = BoolGetDatum(replayed);
	hdr = SPI_returntuple(heap_form_tuple(tupdesc, v, n), tupdesc);
	if (!replayed)
	{
		static LyQuery q_use = {
			"UPDATE loyalty.voucher SET used_at = $2, used_key = $3, used_recorded_at = clock_timestamp() "
			" WHERE id = $1", 3, {INT8OID, TIMESTAMPTZOID, TEXTOID}, NULL};
		Datum		u[3] = {Int64GetDatum(d.voucher_id), TimestampTzGetDatum(at), CStringGetTextDatum(key)};

		ly_outbox_emit(0, DatumGetInt64(v[1]), "voucher_used", at, ly_jsonb(psprintf("{\"voucher_id\": " INT64_FORMAT ", \"reward\": %s}", d.voucher_id, ly_json_str(TextDatumGetCString(v[2])))));
		ly_run(&q_use, u, NULL, 0);
	}
	SPI_finish();
	PG_RETURN_DATUM(PointerGetDatum(hdr));
}

/* ---- cancel: points and stock go back ---- */

static LyQuery q_voucher_owner = {
	"SELECT v.member_id FROM loyalty.voucher v JOIN loyalty.reward r ON r.id = v.reward_id "
	"  JOIN loyalty.program p ON p.id = r.program_id "
	" WHERE v.id = $1 AND v.key_id = $2 AND loyalty.caller_may_use(p.tenant)", 2, {INT8OID, INT4OID}, NULL};

static LyQuery q_voucher_for_cancel = {
	"SELECT v.reward_id, v.redeem_entry_id, v.used_at, v.cancelled_at, r.stock IS NULL, r.code "
	"  FROM loyalty.voucher v JOIN loyalty.reward r ON r.id = v.reward_id "
	" WHERE v.member_id = $1 AND v.id = $2 FOR UPDATE OF v", 2, {INT8OID, INT8OID}, NULL};

static LyQuery q_redeem_draws = {
	"SELECT d.points, l.expires_at FROM loyalty.lot_draw d "
	"  JOIN loyalty.lot l ON l.member_id = d.member_id AND l.id = d.lot_id "
	" WHERE d.member_id = $1 AND d.entry_id = $2 ORDER BY d.lot_id", 2, {INT8OID, INT8OID}, NULL};

static LyQuery q_restock = {
	"UPDATE loyalty.reward SET stock = stock + 1 WHERE id = $1 AND stock IS NOT NULL", 1,
	{INT8OID}, NULL};

static LyQuery q_mark_cancelled = {
	"UPDATE loyalty.voucher SET cancelled_at = $3, cancel_entry_id = $4 WHERE member_id = $1 AND id = $2",
	4, {INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID}, NULL};

/* cancel_voucher(code, idempotency_key, at, reason): give back the points and the stock */
PG_FUNCTION_INFO_V1(loyalty_cancel_voucher);
Datum
loyalty_cancel_voucher(PG_FUNCTION_ARGS)
{
	char	   *input;
	Op			op;
	char	   *reason = ly_arg_reason(fcinfo, 3, false);
	LycCode		d;
	Verdict		why;
	Datum		v[4];
	int64		member_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("code must not be null")));
	input = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ly_op_init(&op, "reward_refund", ly_arg_key(fcinfo, 1), ly_arg_at(fcinfo, 2));

	SPI_connect();
	/* a voucher of a revoked key can still be cancelled: its points go back */
	if (!decode_code(input, &d, &why) || (!verify_code(&d, &why) && why.sqlstate != LY_KEY_REVOKED))
		refuse(&why);
	op.request = ly_jsonb(psprintf("{\"voucher\": " INT64_FORMAT ", \"reason\": %s}",
								   d.voucher_id, ly_json_str(reason)));
	v[0] = Int64GetDatum(d.voucher_id);
	v[1] = Int32GetDatum(d.key_id);
	if (ly_run(&q_voucher_owner, v, NULL, 1) != 1)
		ereport(ERROR, (errcode(LY_CODE_FORGED), errmsg("voucher code is not genuine")));
	member_id = ly_get_int64(0, 1);

	if (ly_op_begin(&op, member_id))
	{
		Member	   *m = op.m;
		Program    *p = m->prog;
		bool		isnull;
		bool		unlimited;
		int64		reward_id;
		int64		redeem_entry;
		char	   *reward;
		uint64		nd;
		uint64		i;
		NewLot	   *lots;
		int			nlots = 0;
		int64		back = 0;
		int64		lost = 0;
		EntryRow	e = {0};

		v[0] = Int64GetDatum(member_id);
		v[1] = Int64GetDatum(d.voucher_id);
		ly_run(&q_voucher_for_cancel, v, NULL, 1);
		reward_id = ly_get_int64(0, 1);
		redeem_entry = ly_get_int64(0, 2);
		(void) ly_get(0, 3, &isnull);
		if (!isnull)
			ereport(ERROR,
					(errcode(LY_VOUCHER_USED),
					 errmsg("voucher was already used at %s",
							timestamptz_to_str(DatumGetTimestampTz(ly_get(0, 3, &isnull))))));
		(void) ly_get(0, 4, &isnull);
		if (!isnull)
			ereport(ERROR,
					(errcode(LY_VOUCHER_CANCELLED),
					 errmsg("voucher was already cancelled")));
		unlimited = DatumGetBool(ly_get(0, 5, &isnull));
		reward = ly_get_text(0, 6);

		/* the points come back as lots: with their old expiry dates, or fresh ones */
		v[1] = Int64GetDatum(redeem_entry);
		nd = ly_run(&q_redeem_draws, v, NULL, 0);
		lots = palloc0(sizeof(NewLot) * (nd + 1));
		for (i = 0; i < nd; i++)
		{
			int64		pts = ly_get_int64(i, 1);
			TimestampTz exp = DatumGetTimestampTz(ly_get(i, 2, &isnull));

			if (p->s.refund_fresh_expiry)
			{
				back += pts;
				continue;
			}
			if (!isnull && exp <= op.at)
			{
				lost += pts;	/* these would have expired by now anyway */
				continue;
			}
			lots[nlots].points = pts;
			lots[nlots].at = lots[nlots].available_at = op.at;
			lots[nlots].has_expiry = !isnull;
			lots[nlots].expires_at = exp;
			back += pts;
			nlots++;
		}
		if (p->s.refund_fresh_expiry && back > 0)
		{
			lots[0].points = back;
			lots[0].at = lots[0].available_at = op.at;
			lots[0].has_expiry = ly_lot_expiry(p, op.at, &lots[0].expires_at);
			nlots = 1;
		}
		for (i = 0; i < (uint64) nlots; i++)
			ly_credit(m, &lots[i]);
		m->redeemed -= back;

		ly_entry_init(&e, &op, "reward_refund", back);
		e.reason = reason;
		e.ref_entry_id = redeem_entry;
		e.detail = ly_jsonb(psprintf("{\"reward\": %s, \"voucher\": " INT64_FORMAT
									 ", \"expired_before_cancel\": " INT64_FORMAT "}",
									 ly_json_str(reward), d.voucher_id, lost));
		ly_insert_entry(m, &e);
		for (i = 0; i < (uint64) nlots; i++)
			ly_write_lot(m, e.id, &lots[i]);
		if (!unlimited)
		{
			v[0] = Int64GetDatum(reward_id);
			ly_run(&q_restock, v, NULL, 0);
		}
		v[0] = Int64GetDatum(member_id);
		v[1] = Int64GetDatum(d.voucher_id);
		v[2] = TimestampTzGetDatum(op.at);
		v[3] = Int64GetDatum(e.id);
		ly_run(&q_mark_cancelled, v, NULL, 0);
		ly_save_member(m);
		ly_op_receipt(&op, e.id, back);
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* ---- offline verification ---- */

static LyQuery q_outstanding = {
	"SELECT v.id, v.code, r.code, r.grants, v.expires_at "
	"  FROM loyalty.voucher v JOIN loyalty.reward r ON r.id = v.reward_id "
	"  JOIN loyalty.voucher_key k ON k.id = v.key_id "
	" WHERE r.program_id = $1 AND v.used_at IS NULL AND v.cancelled_at IS NULL "
	"   AND v.expires_at > $2 AND k.revoked_at IS NULL ORDER BY v.id", 2,
	{INT8OID, TIMESTAMPTZOID}, NULL};

static LyQuery q_program_id = {
	"SELECT id FROM loyalty.program WHERE code = $1 AND loyalty.caller_may_use(tenant)", 1, {TEXTOID}, NULL};

static void
append_hex(StringInfo buf, const unsigned char *b, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		appendStringInfo(buf, "%02x", b[i]);
}

/*
 * voucher_bundle(program, store, at): what a POS needs to check codes offline.
 * store_key = HMAC(current key, "store:" program ":" store), and for each
 * outstanding voucher tag = HMAC(store_key, normalised code) truncated to 128
 * bits. The store key cannot mint codes; a till hashes a typed code and looks
 * the tag up.
 */
PG_FUNCTION_INFO_V1(loyalty_voucher_bundle);
Datum
loyalty_voucher_bundle(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	char	   *store = ly_arg_name(fcinfo, 1, "store");
	TimestampTz at = ly_arg_at(fcinfo, 2);
	MemoryContext callcxt = CurrentMemoryContext;
	StringInfoData buf;
	Datum		v[2];
	bool		isnull;
	bytea	   *secret;
	int			key_id;
	unsigned char store_key[32];
	char	   *label;
	uint64		n;
	uint64		i;
	char	   *result;

	SPI_connect();
	v[0] = CStringGetTextDatum(program);
	if (ly_run(&q_program_id, v, NULL, 1) != 1)
		ereport(ERROR, (errcode(LY_UNKNOWN_PROGRAM), errmsg("program \"%s\" does not exist", program)));
	v[0] = Int64GetDatum(ly_get_int64(0, 1));
	if (ly_run(&q_current_key, NULL, NULL, 1) != 1)
		ereport(ERROR, (errcode(LY_NO_VOUCHER_KEY), errmsg("there is no active voucher key")));
	key_id = (int) ly_get_int64(0, 1);
	secret = DatumGetByteaPCopy(ly_get(0, 2, &isnull));
	label = psprintf("store:%s:%s", program, store);
	ly_hmac_sha256((unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
				   (unsigned char *) label, strlen(label), store_key);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"format\": 1, \"program\": %s, \"store\": %s, \"generated_at\": %s, "
					 "\"key_id\": %d, \"store_key\": \"", ly_json_str(program), ly_json_str(store),
					 ly_json_str(timestamptz_to_str(at)), key_id);
	append_hex(&buf, store_key, 32);
	appendStringInfoString(&buf, "\", \"vouchers\": [");
	v[1] = TimestampTzGetDatum(at);
	n = ly_run(&q_outstanding, v, NULL, 0);
	for (i = 0; i < n; i++)
	{
		char	   *code = ly_get_text(i, 2);
		char		normal[CODE_LEN + 1];
		unsigned char tag[32];
		int			k = 0;
		char	   *c;
		Jsonb	   *grants = DatumGetJsonbP(ly_get(i, 4, &isnull));

		for (c = code; *c; c++)
			if (*c != '-')
				normal[k++] = *c;
		normal[k] = '\0';
		ly_hmac_sha256(store_key, 32, (unsigned char *) normal, k, tag);
		appendStringInfo(&buf, "%s{\"voucher_id\": " INT64_FORMAT ", \"tag\": \"", i ? ", " : "",
						 ly_get_int64(i, 1));
		append_hex(&buf, tag, 16);
		appendStringInfo(&buf, "\", \"reward\": %s, \"grants\": %s, \"expires_at\": %s}",
						 ly_json_str(ly_get_text(i, 3)), JsonbToCString(NULL, &grants->root, VARSIZE(grants)),
						 ly_json_str(timestamptz_to_str(DatumGetTimestampTz(ly_get(i, 5, &isnull)))));
	}
	appendStringInfoString(&buf, "]}");
	result = MemoryContextStrdup(callcxt, buf.data);
	SPI_finish();
	PG_RETURN_JSONB_P(ly_jsonb(result));
}

/* voucher_code(voucher_id, key_id): the code for an id (owner only; tests and support) */
PG_FUNCTION_INFO_V1(loyalty_voucher_code);
Datum
loyalty_voucher_code(PG_FUNCTION_ARGS)
{
	int64		id = ly_arg_id(fcinfo, 0, "voucher_id");
	int32		key_id = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	MemoryContext callcxt = CurrentMemoryContext;
	Datum		arg;
	bool		isnull;
	bytea	   *secret;
	char	   *code;

	if (id < 0 || id >= ((int64) 1 << ID_BITS))
		ereport(ERROR, (errcode(LY_INVALID_ARGUMENT), errmsg("voucher id out of range")));
	SPI_connect();
	if (key_id == 0)
	{
		if (ly_run(&q_current_key, NULL, NULL, 1) != 1)
			ereport(ERROR, (errcode(LY_NO_VOUCHER_KEY), errmsg("there is no active voucher key")));
		key_id = (int32) ly_get_int64(0, 1);
	}
	arg = Int32GetDatum(key_id);
	if (ly_run(&q_key, &arg, NULL, 1) != 1)
		ereport(ERROR, (errcode(LY_INVALID_ARGUMENT), errmsg("voucher key %d does not exist", key_id)));
	secret = DatumGetByteaPP(ly_get(0, 1, &isnull));
	code = MemoryContextStrdup(callcxt, encode_code((unsigned char *) VARDATA_ANY(secret),
													 VARSIZE_ANY_EXHDR(secret), key_id, id));
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(code));
}

/* voucher_codes(first_id, n, key_id): the codes of n consecutive ids (owner only; tests) */
PG_FUNCTION_INFO_V1(loyalty_voucher_codes);
Datum
loyalty_voucher_codes(PG_FUNCTION_ARGS)
{
	int64		first = ly_arg_id(fcinfo, 0, "first_id");
	int32		n = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	int32		key_id = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);
	MemoryContext callcxt = CurrentMemoryContext;
	Datum		arg;
	bool		isnull;
	bytea	   *secret;
	Datum	   *codes;
	int			i;

	if (n < 0 || n > 10000000 || first < 0 || first + n > ((int64) 1 << ID_BITS))
		ereport(ERROR, (errcode(LY_INVALID_ARGUMENT), errmsg("voucher id range out of bounds")));
	SPI_connect();
	arg = Int32GetDatum(key_id);
	if (ly_run(&q_key, &arg, NULL, 1) != 1)
		ereport(ERROR, (errcode(LY_INVALID_ARGUMENT), errmsg("voucher key %d does not exist", key_id)));
	{
		bytea	   *s = DatumGetByteaPP(ly_get(0, 1, &isnull));

		/* keep the key past SPI_finish */
		secret = (bytea *) MemoryContextAlloc(callcxt, VARSIZE_ANY(s));
		memcpy(secret, s, VARSIZE_ANY(s));
	}
	SPI_finish();

	codes = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
	{
		char	   *c = encode_code((unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
									key_id, first + i);

		codes[i] = CStringGetTextDatum(c);
		pfree(c);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(codes, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ---- vouchers given, not bought (stamp cards, engagement.c) ---- */

static LyQuery q_key_owner = {
	"SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'loyalty.voucher_key'::pg_catalog.regclass",
	0, {InvalidOid}, NULL};

static LyQuery q_reward_by_id = {
	"SELECT active AND (valid_from IS NULL OR valid_from <= $2) AND (valid_until IS NULL OR $2 < valid_until), "
	"       stock IS NULL, voucher_valid_days, code "
	"  FROM loyalty.reward WHERE id = $1", 2, {INT8OID, TIMESTAMPTZOID}, NULL};

/*
 * Issue a voucher for a reward without charging points (a full stamp card), written
 * against entry_id (the caller's ledger entry, which need not be inserted yet): the
 * reward must be active, in its validity window and in stock; cost, tier and
 * per-member limit do not apply. Returns the voucher id, or 0 when the reward
 * cannot be issued now.
 *
 * It runs inside earn, which is not SECURITY DEFINER, so it reads the signing key
 * and writes the voucher as the owner of the keys, the way the SECURITY DEFINER
 * voucher functions do: an application role that may call earn need not see keys.
 * An error unwinds the user switch with the (sub)transaction.
 */
int64
ly_issue_free_voucher(Member *m, int64 reward_id, int64 entry_id, TimestampTz at)
{
	Datum		v[8];
	bool		isnull;
	bool		unlimited;
	int			days;
	int			key_id;
	bytea	   *secret;
	int64		voucher_id = 0;
	char	   *code;
	Oid			save_userid;
	int			save_sec;

	ly_run(&q_key_owner, NULL, NULL, 1);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(DatumGetObjectId(ly_get(0, 1, &isnull)),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);

	v[0] = Int64GetDatum(reward_id);
	v[1] = TimestampTzGetDatum(at);
	if (ly_run(&q_reward_by_id, v, NULL, 1) != 1 || !DatumGetBool(ly_get(0, 1, &isnull)))
		goto done;
	unlimited = DatumGetBool(ly_get(0, 2, &isnull));
	days = (int) ly_get_int64(0, 3);
	if (ly_run(&q_current_key, NULL, NULL, 1) != 1 &&
		(first_key(), ly_run(&q_current_key, NULL, NULL, 1) != 1))
		goto done;
	key_id = (int) ly_get_int64(0, 1);
	secret = DatumGetByteaPCopy(ly_get(0, 2, &isnull));
	if (!unlimited && ly_run(&q_take_stock, v, NULL, 0) != 1)
		goto done;

	voucher_id = ly_nextval("loyalty.voucher_id_seq");
	if (voucher_id >= ((int64) 1 << ID_BITS))
		elog(ERROR, "loyalty: voucher ids are exhausted for code version %d", CODE_VERSION);
	code = encode_code((unsigned char *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret), key_id, voucher_id);
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(voucher_id);
	v[2] = Int64GetDatum(reward_id);
	v[3] = CStringGetTextDatum(code);
	v[4] = Int32GetDatum(key_id);
	v[5] = TimestampTzGetDatum(at);
	v[6] = TimestampTzGetDatum(ly_add_days(at, days, m->prog->tz));
	v[7] = Int64GetDatum(entry_id);
	ly_run(&q_insert_voucher, v, NULL, 0);
done:
	SetUserIdAndSecContext(save_userid, save_sec);
	return voucher_id;
}
