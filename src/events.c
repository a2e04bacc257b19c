/*
 * events.c: event awards (issue 4). A program names events (signup, birthday,
 * review, ...) with the points they pay and how often: at most N per local day,
 * ISO week, month or year of the program's time zone, or N ever. record_event
 * is an operation like award: under the member's lock, idempotent on its key.
 * A call past the limit still writes its (0-point) entry, so a replay returns
 * exactly the refusal and the key cannot be reused later to get the points.
 *
 * Also here: the signup award at enrolment and the yearly birthday pass that
 * run_maintenance calls.
 */
#include "loyalty.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * Is the 1.1 schema there? The library may be newer than a database's schema
 * until ALTER EXTENSION loyalty UPDATE runs: then enroll, earn and maintenance
 * must work as in 1.0, without the growth tables. Once seen, they stay.
 */
bool
ly_growth_installed(void)
{
	static bool installed = false;
	Oid			nsp;

	if (installed)
		return true;
	nsp = get_namespace_oid("loyalty", true);
	installed = OidIsValid(nsp) && OidIsValid(get_relname_relid("offer", nsp));
	return installed;
}

typedef struct EventDef
{
	int64		id;
	int64		points;
	char	   *per;			/* NULL: no limit; ever, day, week, month, year */
	int			max;
} EventDef;

typedef struct EventOutcome
{
	bool		awarded;
	int			used;			/* awards in the period, this one included */
	int			max;			/* 0: no limit */
	bool		has_resets;
	TimestampTz resets_at;		/* when the period's count starts again */
} EventOutcome;

static LyQuery q_event = {
	"SELECT id, points, per, max_per_period FROM loyalty.event_type "
	" WHERE program_id = $1 AND code = $2", 2, {INT8OID, TEXTOID}, NULL};

/* the period containing $4 in zone $5, and the member's awards of the event in it */
static LyQuery q_event_window = {
	"SELECT w.s, w.e, (SELECT count(*) FROM loyalty.event_award a "
	"                   WHERE a.member_id = $1 AND a.event_id = $2 AND a.at >= w.s AND a.at < w.e), "
	"       CASE WHEN isfinite(w.s) THEN to_jsonb(w.s)::text ELSE 'null' END, "
	"       CASE WHEN isfinite(w.e) THEN to_jsonb(w.e)::text ELSE 'null' END "
	"  FROM (SELECT CASE WHEN $3 = 'ever' THEN '-infinity'::timestamptz "
	"               ELSE date_trunc($3, $4 AT TIME ZONE $5) AT TIME ZONE $5 END AS s, "
	"               CASE WHEN $3 = 'ever' THEN 'infinity'::timestamptz "
	"               ELSE (date_trunc($3, $4 AT TIME ZONE $5) + ('1 ' || $3)::interval) AT TIME ZONE $5 END AS e) w",
	5, {INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID}, NULL};

static LyQuery q_insert_award = {
	"INSERT INTO loyalty.event_award (member_id, event_id, at, entry_id) VALUES ($1, $2, $3, $4)",
	4, {INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID}, NULL};

static LyQuery q_entry_detail = {
	"SELECT (detail ->> 'awarded')::boolean, (detail ->> 'used')::integer, "
	"       (detail -> 'limit' ->> 'max')::integer, (detail -> 'limit' ->> 'resets_at')::timestamptz "
	"  FROM loyalty.entry WHERE member_id = $1 AND id = $2", 2, {INT8OID, INT8OID}, NULL};

static bool
find_event(int64 program_id, const char *code, EventDef *ev)
{
	Datum		v[2] = {Int64GetDatum(program_id), CStringGetTextDatum(code)};
	bool		isnull;

	if (ly_run(&q_event, v, NULL, 1) != 1)
		return false;
	ev->id = ly_get_int64(0, 1);
	ev->points = ly_get_int64(0, 2);
	ev->per = ly_get_text(0, 3);
	ev->max = (int) DatumGetInt32(ly_get(0, 4, &isnull));
	if (isnull)
		ev->max = 0;
	return true;
}

/*
 * A credit written inside another operation (referral bonuses): an award entry
 * with its own key and a lot available at once. The caller saves the member.
 */
int64
ly_growth_credit(Member *m, TimestampTz at, const char *key, Jsonb *request, int64 points,
				 const char *reason, Jsonb *detail)
{
	NewLot		lot = {0};
	EntryRow	e = {0};

	if (points > 0)
	{
		lot.points = points;
		lot.at = lot.available_at = at;
		lot.has_expiry = ly_lot_expiry(m->prog, at, &lot.expires_at);
		ly_credit(m, &lot);
		m->lifetime_earned = ly_add_points(m->lifetime_earned, points);
		ly_note_activity(m, at);
	}
	e.id = ly_nextval("loyalty.entry_id_seq");
	e.kind = "award";
	e.points = points;
	e.at = at;
	e.key = key;
	e.request = request;
	e.reason = reason;
	e.detail = detail;
	ly_insert_entry(m, &e);
	if (points > 0)
		ly_write_lot(m, e.id, &lot);
	return e.id;
}

/*
 * Pay (or refuse, past its limit) event `ev` to op->m at op->at: writes the
 * entry, saves the member, fills op->r and *out. Member locked, key not used.
 */
static void
apply_event(Op *op, const char *code, EventDef *ev, EventOutcome *out)
{
	Member	   *m = op->m;
	char	   *start_json = "null";
	char	   *resets_json = "null";
	int64		points;
	char	   *detail;
	char	   *limit_json;

	memset(out, 0, sizeof(*out));
	out->max = ev->max;
	if (ev->per != NULL)
	{
		Datum		v[5];
		bool		isnull;

		/* date_trunc and the period's end must stay inside timestamptz's range */
		if (strcmp(ev->per, "ever") != 0 &&
			(op->at < MIN_TIMESTAMP + INT64CONST(800) * USECS_PER_DAY ||
			 op->at > END_TIMESTAMP - INT64CONST(800) * USECS_PER_DAY))
			ereport(ERROR,
					(errcode(LY_INVALID_TIMESTAMP),
					 errmsg("business time %s is too close to the end of the calendar for event periods",
							timestamptz_to_str(op->at))));
		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(ev->id);
		v[2] = CStringGetTextDatum(ev->per);
		v[3] = TimestampTzGetDatum(op->at);
		v[4] = CStringGetTextDatum(m->prog->s.timezone);
		ly_run(&q_event_window, v, NULL, 1);
		start_json = ly_get_text(0, 4);
		resets_json = ly_get_text(0, 5);
		out->resets_at = DatumGetTimestampTz(ly_get(0, 2, &isnull));
		out->has_resets = !TIMESTAMP_NOT_FINITE(out->resets_at);
		out->used = (int) ly_get_int64(0, 3);
		out->awarded = out->used < ev->max;
	}
	else
		out->awarded = true;
	if (out->awarded)
		out->used++;
	points = out->awarded ? ev->points : 0;
	if (out->awarded)
		ly_note_activity(m, op->at);

	limit_json = ev->per == NULL ? pstrdup("null")
		: psprintf("{\"per\": %s, \"max\": %d, \"period_start\": %s, \"resets_at\": %s}",
				   ly_json_str(ev->per), ev->max,
				   start_json, resets_json);
	detail = psprintf("{\"event\": %s, \"awarded\": %s, \"used\": %d, \"limit\": %s%s}",
					  ly_json_str(code), out->awarded ? "true" : "false", out->used, limit_json,
					  out->awarded ? "" : ", \"refused\": \"limit_reached\"");
	ly_write_credit(op, "award", points, psprintf("event %s", code), NULL, ly_jsonb(detail));
	if (out->awarded)
	{
		Datum		v[4] = {Int64GetDatum(m->id), Int64GetDatum(ev->id),
		TimestampTzGetDatum(op->at), Int64GetDatum(op->r.entry_id)};

		ly_run(&q_insert_award, v, NULL, 0);
		ly_outbox_emit(m->prog->id, m->id, "event_awarded", op->at,
					   ly_jsonb(psprintf("{\"event\": %s, \"points\": " INT64_FORMAT ", \"entry_id\": " INT64_FORMAT "}",
										 ly_json_str(code), points, op->r.entry_id)));
	}
}

/* The outcome columns of a replayed call, from the entry it wrote. */
static void
replayed_outcome(Op *op, EventOutcome *out)
{
	Datum		v[2] = {Int64GetDatum(op->r.member_id), Int64GetDatum(op->r.entry_id)};
	bool		isnull;
	Datum		d;

	memset(out, 0, sizeof(*out));
	if (ly_run(&q_entry_detail, v, NULL, 1) != 1)
		elog(ERROR, "loyalty: entry " INT64_FORMAT " not found", op->r.entry_id);
	out->awarded = DatumGetBool(ly_get(0, 1, &isnull));
	out->used = DatumGetInt32(ly_get(0, 2, &isnull));
	d = ly_get(0, 3, &isnull);
	out->max = isnull ? 0 : DatumGetInt32(d);
	d = ly_get(0, 4, &isnull);
	out->has_resets = !isnull;
	out->resets_at = isnull ? 0 : DatumGetTimestampTz(d);
}

/* Run event `code` for a member as operation op (locked, swept, key checked here). */
static bool
record(Op *op, int64 member_id, const char *code, EventOutcome *out, bool must_exist)
{
	EventDef	ev;

	if (!ly_op_begin(op, member_id))
	{
		replayed_outcome(op, out);
		return true;
	}
	if (!find_event(op->m->prog->id, code, &ev))
	{
		if (!must_exist)
			return false;
		ereport(ERROR,
				(errcode(LY_UNKNOWN_EVENT),
				 errmsg("event \"%s\" is not defined in the member's program", code),
				 errhint("Define it first with loyalty.define_event(program, event, points, frequency).")));
	}
	apply_event(op, code, &ev, out);
	return true;
}

static Datum
event_receipt_datum(FunctionCallInfo fcinfo, Receipt *r, const char *code, EventOutcome *out)
{
	TupleDesc	tupdesc;
	Datum		v[12];
	bool		n[12];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "loyalty: event_receipt type expected");
	ly_receipt_values(r, v, n);
	v[7] = CStringGetTextDatum(code);
	n[7] = false;
	v[8] = BoolGetDatum(out->awarded);
	n[8] = false;
	v[9] = Int32GetDatum(out->used);
	n[9] = false;
	v[10] = Int32GetDatum(out->max);
	n[10] = out->max == 0;
	v[11] = TimestampTzGetDatum(out->resets_at);
	n[11] = !out->has_resets;
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n));
}

/* record_event(member, event, idempotency_key, at): pay an event, within its limit */
PG_FUNCTION_INFO_V1(loyalty_record_event);
Datum
loyalty_record_event(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *code = ly_arg_name(fcinfo, 1, "event");
	Op			op;
	EventOutcome out;

	ly_op_init(&op, "award", ly_arg_key(fcinfo, 2), ly_arg_at(fcinfo, 3));
	op.request = ly_jsonb(psprintf("{\"event\": %s}", ly_json_str(code)));

	SPI_connect();
	(void) record(&op, member_id, code, &out, true);
	SPI_finish();
	PG_RETURN_DATUM(event_receipt_datum(fcinfo, &op.r, code, &out));
}

/*
 * The signup award: enroll calls this for a new member, whose row it has just
 * inserted (so the lock cannot wait). A no-op unless the program defines 'signup'.
 */
void
ly_event_signup(int64 member_id, int64 program_id, TimestampTz at)
{
	Op			op;
	EventOutcome out;
	EventDef	ev;

	/* most programs define no signup: one lookup, no lock */
	if (!ly_growth_installed() || !find_event(program_id, "signup", &ev))
		return;
	ly_op_init(&op, "award", "loyalty:signup", at);
	op.request = ly_jsonb("{\"event\": \"signup\"}");
	(void) record(&op, member_id, "signup", &out, false);
}

/* ---- birthdays ---- */

/*
 * A member's birthday in a given year, at 00:00 in the program's time zone;
 * 29 February is celebrated on 28 February in other years.
 */
static LyQuery q_set_birthday = {
	"INSERT INTO loyalty.member_birthday AS b (member_id, birth_date, next_at) "
	"VALUES ($1, $2, loyalty.next_birthday($2, $3, $4)) "
	"ON CONFLICT (member_id) DO UPDATE SET birth_date = excluded.birth_date, next_at = excluded.next_at",
	4, {INT8OID, DATEOID, TIMESTAMPTZOID, TEXTOID}, NULL};

/* set_birthday(member, birth_date, at): the member's birth date (for the birthday award) */
PG_FUNCTION_INFO_V1(loyalty_set_birthday);
Datum
loyalty_set_birthday(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	DateADT		birth;
	TimestampTz at = ly_arg_at(fcinfo, 2);
	Member	   *m;
	Datum		v[4];

	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("birth_date must not be null")));
	birth = PG_GETARG_DATEADT(1);
	/* a real person's birth date: not in the future of `at`, not before 1900 */
	if (DATE_NOT_FINITE(birth) ||
		birth < date2j(1900, 1, 1) - POSTGRES_EPOCH_JDATE ||
		(TimestampTz) birth * USECS_PER_DAY > at + USECS_PER_DAY ||
		at > END_TIMESTAMP - INT64CONST(800) * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(LY_INVALID_BIRTH_DATE),
				 errmsg("birth date must be between 1900-01-01 and the business time")));

	SPI_connect();
	m = ly_lock_member(member_id, NULL);
	v[0] = Int64GetDatum(member_id);
	v[1] = DateADTGetDatum(birth);
	v[2] = TimestampTzGetDatum(at);
	v[3] = CStringGetTextDatum(m->prog->s.timezone);
	ly_run(&q_set_birthday, v, NULL, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

static LyQuery q_due_birthdays = {
	"SELECT b.member_id, b.next_at FROM loyalty.member_birthday b "
	" WHERE b.next_at <= $1 "
	"   AND EXISTS (SELECT FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id "
	"                WHERE m.id = b.member_id AND loyalty.caller_may_use(p.tenant)) "	/* the caller's programs */
	" ORDER BY b.next_at, b.member_id LIMIT $2 FOR UPDATE OF b SKIP LOCKED",
	2, {TIMESTAMPTZOID, INT8OID}, NULL};

static LyQuery q_advance_birthday = {
	"UPDATE loyalty.member_birthday SET next_at = loyalty.next_birthday(birth_date, $2 + interval '1 day', $3) "
	" WHERE member_id = $1", 3, {INT8OID, TIMESTAMPTZOID, TEXTOID}, NULL};

/*
 * The birthday pass of run_maintenance: every member whose birthday instant is
 * due gets the program's 'birthday' event (within its limit), keyed by the
 * year, and their next birthday is set a year on. Rows and members are taken
 * with SKIP LOCKED: a busy member is left for the next run, never waited for.
 * Returns the members handled.
 */
int64
ly_birthday_pass(TimestampTz now, int64 limit)
{
	Datum		v[3];
	uint64		n;
	uint64		i;
	int64	   *ids;
	TimestampTz *dues;
	int64		done = 0;
	MemoryContext loopcxt;

	if (!ly_growth_installed())
		return 0;
	v[0] = TimestampTzGetDatum(now);
	v[1] = Int64GetDatum(limit);
	n = ly_run(&q_due_birthdays, v, NULL, 0);
	ids = palloc(sizeof(int64) * (n > 0 ? n : 1));
	dues = palloc(sizeof(TimestampTz) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = ly_get_int64(i, 1);
		dues[i] = DatumGetTimestampTz(ly_get(i, 2, &isnull));
	}
	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty birthdays", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(loopcxt);
		Member	   *m = ly_try_lock_member(ids[i], NULL);
		struct pg_tm tm;
		fsec_t		fsec;
		int			tz;
		Op			op;
		EventOutcome out;
		SweepStats	st = {0};

		if (m != NULL)
		{
			/* the key names the local year of the birthday: one award per year, whatever reruns */
			if (timestamp2tm(dues[i], &tz, &tm, &fsec, NULL, m->prog->tz) != 0)
				elog(ERROR, "loyalty: birthday instant out of range");
			ly_op_init(&op, "award", psprintf("loyalty:birthday:%04d", tm.tm_year), dues[i]);
			op.request = ly_jsonb("{\"event\": \"birthday\"}");
			op.m = m;
			if (!ly_op_replayed(&op, m->id))
			{
				EventDef	ev;

				if (find_event(m->prog->id, "birthday", &ev))
				{
					ly_sweep(m, dues[i], &st);
					apply_event(&op, "birthday", &ev, &out);
				}
			}
			v[0] = Int64GetDatum(m->id);
			v[1] = TimestampTzGetDatum(dues[i]);
			v[2] = CStringGetTextDatum(m->prog->s.timezone);
			ly_run(&q_advance_birthday, v, NULL, 0);
			done++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
	}
	MemoryContextDelete(loopcxt);
	return done;
}

static LyQuery q_forget_birthday = {
	"DELETE FROM loyalty.member_birthday WHERE member_id = $1", 1, {INT8OID}, NULL};

/* anonymise_member calls this (member locked): personal data kept here goes */
void
ly_growth_forget_member(int64 member_id)
{
	Datum		v = Int64GetDatum(member_id);

	if (ly_growth_installed())
		ly_run(&q_forget_birthday, &v, NULL, 0);
}
