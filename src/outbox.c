/*
 * outbox.c: the events outbox. ly_outbox_emit writes an event in the caller's
 * transaction (so a rolled-back change leaves no event) and queues a NOTIFY on
 * channel loyalty_events, which PostgreSQL delivers only at commit. Delivery
 * order and cursors are in SQL (sql/loyalty/93_outbox.sql: next_events).
 *
 * ly_outbox_reminders is the maintenance step that emits points_expiring once
 * per lot and reminder horizon.
 */
#include "loyalty.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#define LY_CHANNEL "loyalty_events"

/* program_id 0: the member's program (callers such as tiers.c only know the member) */
static LyQuery q_emit = {
	"INSERT INTO loyalty.outbox (program_id, member_id, kind, at, payload) "
	"VALUES (coalesce(nullif($1, 0), (SELECT m.program_id FROM loyalty.member m WHERE m.id = $2)), "
	"        nullif($2, 0), $3, $4, coalesce($5, '{}')) RETURNING program_id",
	5, {INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, JSONBOID}, NULL};

/*
 * A database still on the 1.0 SQL (the new library installed, ALTER EXTENSION
 * UPDATE not run yet) has no outbox: events are skipped there rather than
 * failing every enroll. A syscache lookup, so it follows the update at once.
 */
static bool
have_outbox(void)
{
	Oid			nsp = get_namespace_oid("loyalty", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("outbox", nsp));
}

/* Listeners get the program id: they read the events themselves with next_events. */
static void
notify_program(int64 program_id)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), INT64_FORMAT, program_id);
	Async_Notify(LY_CHANNEL, buf);	/* identical payloads fold into one per transaction */
}

void
ly_outbox_emit(int64 program_id, int64 member_id, const char *kind, TimestampTz at,
			   Jsonb *payload)
{
	Datum		v[5];
	char		n[5] = {' ', ' ', ' ', ' ', ' '};

	if (!have_outbox())
		return;
	v[0] = Int64GetDatum(program_id);
	v[1] = Int64GetDatum(member_id);
	v[2] = CStringGetTextDatum(kind);
	v[3] = TimestampTzGetDatum(at);
	v[4] = payload ? JsonbPGetDatum(payload) : (Datum) 0;
	n[4] = payload ? ' ' : 'n';
	/* its own SPI level: the caller's current result stays valid */
	SPI_connect();
	if (ly_run(&q_emit, v, n, 0) != 1)
		elog(ERROR, "loyalty: outbox insert failed");
	program_id = ly_get_int64(0, 1);
	SPI_finish();
	notify_program(program_id);
}

static LyQuery q_emit_many = {
	"INSERT INTO loyalty.outbox (program_id, member_id, kind, at, payload) "
	"SELECT u.p, u.m, $3, u.at, u.payload "
	"  FROM unnest($1::bigint[], $2::bigint[], $4::timestamptz[], $5::jsonb[]) "
	"       WITH ORDINALITY AS u(p, m, at, payload, ord) ORDER BY u.ord",
	5, {INT8ARRAYOID, INT8ARRAYOID, TEXTOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID}, NULL};

/*
 * n events of one kind in one statement, in the order given (the set-based
 * tier review, tier_review.c): the rows ly_outbox_emit would write one by one.
 */
void
ly_outbox_emit_many(int n, int64 *program_ids, int64 *member_ids, const char *kind,
					TimestampTz *ats, Jsonb **payloads)
{
	Datum		v[5];
	Datum	   *d;
	int			i;

	if (n <= 0 || !have_outbox())
		return;
	d = palloc(sizeof(Datum) * n);
	v[0] = ly_int8_array(program_ids, n);
	v[1] = ly_int8_array(member_ids, n);
	v[2] = CStringGetTextDatum(kind);
	for (i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(ats[i]);
	v[3] = PointerGetDatum(construct_array(d, n, TIMESTAMPTZOID, sizeof(TimestampTz),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (i = 0; i < n; i++)
		d[i] = JsonbPGetDatum(payloads[i]);
	v[4] = PointerGetDatum(construct_array(d, n, JSONBOID, -1, false, TYPALIGN_INT));
	SPI_connect();
	if (ly_run(&q_emit_many, v, NULL, 0) != (uint64) n)
		elog(ERROR, "loyalty: outbox insert failed");
	SPI_finish();
	for (i = 0; i < n; i++)
		if (i == 0 || program_ids[i] != program_ids[i - 1])
			notify_program(program_ids[i]);	/* repeats fold into one per transaction */
}

/*
 * Expiry reminders. A member whose next transition is later than the widest
 * horizon has no open lot expiring within it (next_transition_at is at most the
 * expiry of every open lot), so candidates come from the member_due index and
 * their lots from lot_live (member_id, expires_at) WHERE state <> 'x'. For each
 * open lot, the smallest horizon it is within is sent once: expiry_reminder
 * keeps the smallest horizon sent per lot, and its upsert only succeeds for a
 * smaller one, so concurrent runs cannot send a reminder twice, and a wider
 * horizon is never sent after a narrower one.
 */
static LyQuery q_widest = {
	"SELECT max(d) FROM loyalty.program p, unnest(p.expiry_reminder_days) AS d", 0, {InvalidOid}, NULL};

static LyQuery q_reminders = {
	"WITH due AS ("
	"  SELECT l.member_id, l.lot_id, l.remaining, l.expires_at, m.program_id, p.timezone,"
	"         (SELECT min(d) FROM unnest(p.expiry_reminder_days) AS d"
	"           WHERE l.expires_at <= $1 + d * interval '24 hours') AS days"
	"    FROM loyalty.member m"
	"    JOIN loyalty.program p ON p.id = m.program_id AND p.expiry_reminder_days <> '{}'"
	/* per candidate member (OFFSET 0 keeps it a nested loop), not a scan of all open lots */
	"    CROSS JOIN LATERAL (SELECT l.member_id, l.id AS lot_id, l.remaining, l.expires_at"
	"                          FROM loyalty.lot l"
	"                         WHERE l.member_id = m.id AND l.state <> 'x' AND l.remaining > 0"
	"                           AND l.expires_at > $1 AND l.expires_at <= $1 + $2 * interval '24 hours'"
	"                        OFFSET 0) l"
	"   WHERE m.next_transition_at <= $1 + $2 * interval '24 hours' AND m.next_transition_at < 'infinity'"
	"), todo AS ("
	"  SELECT * FROM due"
	"   WHERE due.days IS NOT NULL AND NOT EXISTS (SELECT FROM loyalty.expiry_reminder r"
	"          WHERE r.member_id = due.member_id AND r.lot_id = due.lot_id AND r.days <= due.days)"
	"   ORDER BY due.expires_at, due.member_id, due.lot_id LIMIT $3"
	"), sent AS ("
	"  INSERT INTO loyalty.expiry_reminder AS r (member_id, lot_id, days, sent_at)"
	"  SELECT todo.member_id, todo.lot_id, todo.days, $1 FROM todo"
	"  ON CONFLICT (member_id, lot_id) DO UPDATE SET days = excluded.days, sent_at = excluded.sent_at"
	"   WHERE r.days > excluded.days"
	"  RETURNING r.member_id, r.lot_id"
	"), ev AS ("
	"  INSERT INTO loyalty.outbox (program_id, member_id, kind, at, payload)"
	"  SELECT t.program_id, t.member_id, 'points_expiring', $1,"
	"         jsonb_build_object('lot_id', t.lot_id, 'points', t.remaining, 'expires_at', t.expires_at,"
	"                            'last_day', ((t.expires_at - interval '1 microsecond') AT TIME ZONE t.timezone)::date,"
	"                            'days', t.days)"
	"    FROM sent s JOIN todo t ON t.member_id = s.member_id AND t.lot_id = s.lot_id"
	"   ORDER BY t.expires_at, t.member_id, t.lot_id"
	"  RETURNING program_id"
	") SELECT program_id, count(*) FROM ev GROUP BY program_id",
	3, {TIMESTAMPTZOID, INT4OID, INT8OID}, NULL};

/* Emit the reminders due at `now` (at most `limit`); -1 if no program asks for any. */
int64
ly_outbox_reminders(TimestampTz now, int64 limit)
{
	Datum		v[3];
	bool		isnull;
	int32		widest;
	uint64		n;
	uint64		i;
	int64		total = 0;

	if (!have_outbox())
		return -1;
	ly_run(&q_widest, NULL, NULL, 1);
	v[1] = ly_get(0, 1, &isnull);
	if (isnull)
		return -1;
	widest = DatumGetInt32(v[1]);
	v[0] = TimestampTzGetDatum(now);
	v[1] = Int32GetDatum(widest);
	v[2] = Int64GetDatum(limit);
	n = ly_run(&q_reminders, v, NULL, 0);
	for (i = 0; i < n; i++)
	{
		notify_program(ly_get_int64(i, 1));
		total += ly_get_int64(i, 2);
	}
	return total;
}
