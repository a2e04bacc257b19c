/*
 * referrals.c: referral bonuses (issue 4).
 *
 * A member who enrolls with another member's code is a referee (loyalty.referral,
 * status open). Their first purchase of at least the program's min_purchase
 * qualifies the referral (one UPDATE inside the earn); run_maintenance pays the
 * bonuses once pay_at (the purchase + hold_days, the refund window) has come.
 *
 * Why not pay inside the earn: the referrer is a second member. Waiting for their
 * lock while the referee is locked could deadlock (a transfer from the referrer
 * to the referee locks the two in the other order). Maintenance takes referral rows, referees and referrers with SKIP LOCKED and
 * never waits: a busy member is paid by the next run. The per-referrer limit is
 * counted under the referrer's lock, so two referrals paid at once cannot both
 * take the last slot. A refund of the qualifying purchase that leaves it below
 * min_purchase before anything is paid reopens the referral; after payment
 * nothing is clawed back (set hold_days to the refund window).
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static LyQuery q_insert_referral = {
	"INSERT INTO loyalty.referral (referee_id, referrer_id, program_id, enrolled_at, status) "
	"VALUES ($1, $2, $3, $4, 'open')", 4, {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID}, NULL};

/* enroll calls this for a new member who gave a referral code */
void
ly_referral_enrolled(int64 member_id, int64 referrer_id, int64 program_id, TimestampTz at)
{
	Datum		v[4] = {Int64GetDatum(member_id), Int64GetDatum(referrer_id),
	Int64GetDatum(program_id), TimestampTzGetDatum(at)};

	if (ly_growth_installed())
		ly_run(&q_insert_referral, v, NULL, 0);
}

static LyQuery q_code_owner = {
	"SELECT c.id, m.referred_by, "
	"       EXISTS (WITH RECURSIVE up(id, depth) AS ( "
	"                 SELECT c.referred_by, 1 "
	"                 UNION ALL "
	"                 SELECT x.referred_by, up.depth + 1 FROM up JOIN loyalty.member x ON x.id = up.id "
	"                  WHERE x.referred_by IS NOT NULL AND up.depth < 1000) "
	"               SELECT FROM up WHERE up.id = m.id) "
	"  FROM loyalty.member c, loyalty.member m "
	" WHERE c.program_id = $1 AND c.referral_code = $2 AND m.id = $3", 3,
	{INT8OID, TEXTOID, INT8OID}, NULL};

/*
 * enroll of a member who already exists, with a referral code: the same
 * referrer as at enrolment replays; anything else is refused (a referrer is
 * only ever set at enrolment, so referral chains cannot loop).
 */
int64
ly_referral_existing(int64 member_id, int64 program_id, const char *code)
{
	Datum		v[3] = {Int64GetDatum(program_id), CStringGetTextDatum(code), Int64GetDatum(member_id)};
	int64		owner;
	int64		referred_by;
	bool		loop;
	bool		isnull;

	if (ly_run(&q_code_owner, v, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_REFERRAL_CODE),
				 errmsg("referral code \"%s\" does not exist in the member's program", code)));
	owner = ly_get_int64(0, 1);
	referred_by = DatumGetInt64(ly_get(0, 2, &isnull));
	if (isnull)
		referred_by = 0;
	loop = DatumGetBool(ly_get(0, 3, &isnull));
	if (owner == member_id)
		ereport(ERROR,
				(errcode(LY_SELF_REFERRAL),
				 errmsg("a member cannot refer themselves"),
				 errdetail("Referral code \"%s\" belongs to member " INT64_FORMAT ".", code, member_id)));
	if (referred_by == owner)
		return member_id;
	if (loop)
		ereport(ERROR,
				(errcode(LY_REFERRAL_LOOP),
				 errmsg("referral loop: member " INT64_FORMAT " referred the owner of code \"%s\"",
						member_id, code)));
	ereport(ERROR,
			(errcode(LY_REFERRAL_FIXED),
			 errmsg("member " INT64_FORMAT " is already enrolled; a referrer can only be given at enrolment",
					member_id),
			 referred_by ? errdetail("The member was referred by member " INT64_FORMAT ".", referred_by)
			 : errdetail("The member enrolled without a referral code.")));
	return 0;					/* not reached */
}

/* ---- qualifying and paying ---- */

static LyQuery q_open_referral = {
	"SELECT t.referrer_points, t.referee_points, t.min_purchase, t.hold_days "
	"  FROM loyalty.referral r JOIN loyalty.referral_terms t ON t.program_id = r.program_id "
	" WHERE r.referee_id = $1 AND r.status = 'open'", 1, {INT8OID}, NULL};

static LyQuery q_qualify = {
	"UPDATE loyalty.referral SET status = 'qualified', purchase_entry_id = $2, qualified_at = $3, "
	"       pay_at = $4, min_purchase = $5, referrer_points = $6, referee_points = $7 "
	" WHERE referee_id = $1", 7,
	{INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, NUMERICOID, INT8OID, INT8OID}, NULL};

static LyQuery q_referral = {
	"SELECT r.referrer_id, r.pay_at, r.referrer_points, r.referee_points, "
	"       r.referee_outcome IS NOT NULL, r.referrer_outcome IS NOT NULL, t.max_per_referrer "
	"  FROM loyalty.referral r LEFT JOIN loyalty.referral_terms t ON t.program_id = r.program_id "
	" WHERE r.referee_id = $1 AND r.status = 'qualified'", 1, {INT8OID}, NULL};

static LyQuery q_referrer_paid = {
	"SELECT count(*) FROM loyalty.referral WHERE referrer_id = $1 AND referrer_outcome = 'paid'",
	1, {INT8OID}, NULL};

static LyQuery q_settle = {
	"UPDATE loyalty.referral "
	"   SET referee_outcome = coalesce(referee_outcome, $2), referee_entry_id = coalesce(referee_entry_id, $3), "
	"       referrer_outcome = coalesce(referrer_outcome, $4), referrer_entry_id = coalesce(referrer_entry_id, $5), "
	"       status = CASE WHEN coalesce(referee_outcome, $2) IS NOT NULL "
	"                      AND coalesce(referrer_outcome, $4) IS NOT NULL THEN 'paid' ELSE status END "
	" WHERE referee_id = $1", 5, {INT8OID, TEXTOID, INT8OID, TEXTOID, INT8OID}, NULL};

static Jsonb *
bonus_json(const char *role, int64 referee_id, int64 referrer_id)
{
	return ly_jsonb(psprintf("{\"referral\": {\"role\": \"%s\", \"referee\": " INT64_FORMAT
							 ", \"referrer\": " INT64_FORMAT "}}", role, referee_id, referrer_id));
}

/*
 * Pay what is due on referee m's qualified referral: m's own bonus (m is
 * locked by the caller, who saves it), and the referrer's if the referrer can
 * be locked without waiting. Returns true if m was changed.
 */
static bool
settle(Member *m)
{
	Datum		v[5];
	char		n[5];
	bool		isnull;
	int64		referrer_id;
	TimestampTz pay_at;
	int64		referrer_points;
	int64		referee_points;
	bool		referee_done;
	bool		referrer_done;
	int64		max_per;
	const char *referee_outcome = NULL;
	int64		referee_entry = 0;
	const char *referrer_outcome = NULL;
	int64		referrer_entry = 0;
	bool		changed = false;

	v[0] = Int64GetDatum(m->id);
	if (ly_run(&q_referral, v, NULL, 1) != 1)
		return false;
	referrer_id = ly_get_int64(0, 1);
	pay_at = DatumGetTimestampTz(ly_get(0, 2, &isnull));
	referrer_points = ly_get_int64(0, 3);
	referee_points = ly_get_int64(0, 4);
	referee_done = DatumGetBool(ly_get(0, 5, &isnull));
	referrer_done = DatumGetBool(ly_get(0, 6, &isnull));
	max_per = DatumGetInt32(ly_get(0, 7, &isnull));
	if (isnull)
		max_per = 0;

	if (!referee_done)
	{
		SweepStats	st = {0};

		referee_outcome = "paid";
		if (referee_points > 0)
		{
			ly_sweep(m, pay_at, &st);
			/* the key makes a second referee bonus for one member impossible */
			referee_entry = ly_growth_credit(m, pay_at, "loyalty:referral-bonus",
											 ly_jsonb(psprintf("{\"referrer\": " INT64_FORMAT "}", referrer_id)),
											 referee_points, "referral bonus",
											 bonus_json("referee", m->id, referrer_id));
			changed = true;
		}
	}
	if (!referrer_done)
	{
		Member	   *r = ly_try_lock_member(referrer_id, m->prog);

		if (r != NULL)
		{
			Datum		a = Int64GetDatum(referrer_id);

			ly_run(&q_referrer_paid, &a, NULL, 1);
			if (max_per > 0 && ly_get_int64(0, 1) >= max_per)
				referrer_outcome = "limit_reached";
			else
			{
				referrer_outcome = "paid";
				if (referrer_points > 0)
				{
					SweepStats	st = {0};

					ly_sweep(r, pay_at, &st);
					referrer_entry = ly_growth_credit(r, pay_at, psprintf("loyalty:referral:" INT64_FORMAT, m->id),
													  ly_jsonb(psprintf("{\"referee\": " INT64_FORMAT "}", m->id)),
													  referrer_points, "referral bonus",
													  bonus_json("referrer", m->id, referrer_id));
					ly_save_member(r);
				}
			}
		}
	}
	memset(n, ' ', sizeof(n));
	v[1] = referee_outcome ? CStringGetTextDatum(referee_outcome) : (Datum) 0;
	n[1] = referee_outcome ? ' ' : 'n';
	v[2] = Int64GetDatum(referee_entry);
	n[2] = referee_entry ? ' ' : 'n';
	v[3] = referrer_outcome ? CStringGetTextDatum(referrer_outcome) : (Datum) 0;
	n[3] = referrer_outcome ? ' ' : 'n';
	v[4] = Int64GetDatum(referrer_entry);
	n[4] = referrer_entry ? ' ' : 'n';
	ly_run(&q_settle, v, n, 0);
	return changed;
}

/* earn calls this with the referee locked: the first qualifying purchase */
void
ly_referral_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	Member	   *m = op->m;
	Datum		v[7];
	int64		referrer_points;
	int64		referee_points;
	Numeric		min_purchase;
	int			hold_days;
	TimestampTz pay_at;

	(void) attrs;
	if (m->referred_by == 0 || purchase->amount == NULL || !ly_growth_installed())
		return;					/* the common case costs nothing */
	v[0] = Int64GetDatum(m->id);
	if (ly_run(&q_open_referral, v, NULL, 1) != 1)
		return;					/* already qualified or paid, or no terms */
	referrer_points = ly_get_int64(0, 1);
	referee_points = ly_get_int64(0, 2);
	min_purchase = ly_get_numeric(0, 3);
	hold_days = (int) ly_get_int64(0, 4);
	if (ly_num_cmp(purchase->amount, min_purchase) < 0)
		return;
	pay_at = hold_days > 0 ? ly_add_days(op->at, hold_days, m->prog->tz) : op->at;

	v[1] = Int64GetDatum(purchase->id);
	v[2] = TimestampTzGetDatum(op->at);
	v[3] = TimestampTzGetDatum(pay_at);
	v[4] = NumericGetDatum(min_purchase);
	v[5] = Int64GetDatum(referrer_points);
	v[6] = Int64GetDatum(referee_points);
	ly_run(&q_qualify, v, NULL, 0);
	ly_outbox_emit(m->prog->id, m->id, "referral_qualified", op->at,
				   ly_jsonb(psprintf("{\"referrer\": " INT64_FORMAT ", \"purchase_entry_id\": " INT64_FORMAT "}",
									 m->referred_by, purchase->id)));
}

static LyQuery q_unqualify = {
	"UPDATE loyalty.referral r "
	"   SET status = 'open', purchase_entry_id = NULL, qualified_at = NULL, pay_at = NULL, "
	"       min_purchase = NULL, referrer_points = NULL, referee_points = NULL, "
	"       cancellations = r.cancellations + 1 "
	" WHERE r.referee_id = $1 AND r.status = 'qualified' AND r.purchase_entry_id = $2 "
	"   AND r.referee_outcome IS NULL AND r.referrer_outcome IS NULL "
	"   AND (SELECT e.amount FROM loyalty.entry e WHERE e.member_id = $1 AND e.id = $2) "
	"     - (SELECT coalesce(sum(x.amount), 0) FROM loyalty.entry x "
	"         WHERE x.member_id = $1 AND x.ref_entry_id = $2 AND x.kind = 'reverse' AND x.id <> $3) "
	"     - $4 < r.min_purchase",
	4, {INT8OID, INT8OID, INT8OID, NUMERICOID}, NULL};

/*
 * reverse calls this with the referee locked: a refund of the qualifying
 * purchase that leaves it below min_purchase before any bonus was paid reopens
 * the referral (a later qualifying purchase can qualify it again).
 */
void
ly_referral_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
				   bool full)
{
	Datum		v[4];

	(void) full;
	if (op->m->referred_by == 0 || !ly_growth_installed())
		return;
	/* this refund counted once, whether or not its entry is written yet (reverse calls us before) */
	v[0] = Int64GetDatum(op->m->id);
	v[1] = Int64GetDatum(purchase_entry_id);
	v[2] = Int64GetDatum(refund->id);
	v[3] = NumericGetDatum(refunded_amount);
	ly_run(&q_unqualify, v, NULL, 0);
}

static LyQuery q_due_referrals = {
	"SELECT referee_id FROM loyalty.referral WHERE status = 'qualified' AND pay_at <= $1 "
	"   AND program_id IN (SELECT p.id FROM loyalty.program p WHERE loyalty.caller_may_use(p.tenant)) "
	" ORDER BY pay_at, referee_id LIMIT $2 FOR UPDATE SKIP LOCKED", 2, {TIMESTAMPTZOID, INT8OID}, NULL};

/*
 * The referral pass of run_maintenance: bonuses whose hold ended, and referrers
 * that were busy when their referee qualified. Never waits for a lock.
 * Returns the referrals handled.
 */
int64
ly_referral_pass(TimestampTz now, int64 limit)
{
	Datum		v[2] = {TimestampTzGetDatum(now), Int64GetDatum(limit)};
	uint64		n;
	uint64		i;
	int64	   *ids;
	int64		done = 0;
	MemoryContext loopcxt;

	if (!ly_growth_installed())
		return 0;
	n = ly_run(&q_due_referrals, v, NULL, 0);
	ids = palloc(sizeof(int64) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
		ids[i] = ly_get_int64(i, 1);
	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty referrals", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(loopcxt);
		Member	   *m = ly_try_lock_member(ids[i], NULL);

		if (m != NULL)
		{
			if (settle(m))
				ly_save_member(m);
			done++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
	}
	MemoryContextDelete(loopcxt);
	return done;
}
