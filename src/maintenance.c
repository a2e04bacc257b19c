/*
 * maintenance.c: run_maintenance sweeps every member whose next transition
 * (a pending lot becoming available, a lot expiring) is due.
 *
 * Members are locked with SKIP LOCKED: two concurrent runs split the work,
 * an operation holding a member makes maintenance skip it (the operation
 * sweeps the member itself), and maintenance never waits for anyone. Nothing can expire twice, because a
 * lot's state only changes under its member's lock.
 *
 * Members whose only due events are tier reviews (the bulk of a period end)
 * are reviewed set-based first (tier_review.c), under the same locks; the
 * others are swept one at a time.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static LyQuery q_due_members = {
	"SELECT id FROM loyalty.member WHERE next_transition_at <= $1 AND next_transition_at < 'infinity' "
	"   AND program_id IN (SELECT p.id FROM loyalty.program p WHERE loyalty.caller_may_use(p.tenant)) "
	" ORDER BY next_transition_at, id LIMIT $2 FOR UPDATE SKIP LOCKED", 2,
	{TIMESTAMPTZOID, INT8OID}, NULL};

/* run_maintenance(now, max_members): release and expire what is due */
PG_FUNCTION_INFO_V1(loyalty_run_maintenance);
Datum
loyalty_run_maintenance(PG_FUNCTION_ARGS)
{
	TimestampTz now = ly_arg_at(fcinfo, 0);
	int64		limit = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT32(1);
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext loopcxt;
	SweepStats	st = {0};
	Datum		v[2];
	int64	   *ids;
	bool	   *handled;
	uint64		n;
	uint64		i;
	uint64		done = 0;
	Program    *prog = NULL;
	char	   *result;
	int64		birthdays;
	int64		referrals;
	int64		reminders;

	if (limit < 1)
		ereport(ERROR,
				(errcode(LY_INVALID_ARGUMENT),
				 errmsg("max_members must be positive")));

	SPI_connect();

	/*
	 * Roll the ledger up for the reports (92_rollups.sql) before locking any
	 * member: its cost grows with everything written since the last run, and
	 * no member row should wait for it (expiry_batch.c: at most every 10 s).
	 */
	ly_maintenance_rollups();

	/* plain expiries first, set-based (expiry_batch.c); what it swept is no longer due */
	done = ly_expiry_pass(now, limit, &st);
	v[0] = TimestampTzGetDatum(now);
	v[1] = Int64GetDatum(limit - done);
	n = (int64) done < limit ? ly_run(&q_due_members, v, NULL, 0) : 0;
	ids = palloc(sizeof(int64) * (n > 0 ? n : 1));
	handled = palloc0(sizeof(bool) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
		ids[i] = ly_get_int64(i, 1);

	/* members with nothing but tier reviews due: set-based (tier_review.c) */
	done += ly_tier_review_pass(ids, handled, n, now);

	/* per-member scratch memory, so a run over a million members stays flat */
	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty maintenance member",
									ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext old;
		Member	   *m;

		if (handled[i])
			continue;
		old = MemoryContextSwitchTo(loopcxt);
		m = ly_try_lock_member(ids[i], prog);

		if (m == NULL || m->next_transition_at > now)
		{
			/* busy (its own operation sweeps it), or already done by another run */
			MemoryContextSwitchTo(old);
			MemoryContextReset(loopcxt);
			continue;
		}
		done++;
		if (m->prog != prog)
		{
			/* keep the program (and its tiers) outside the per-member context */
			MemoryContextSwitchTo(old);
			prog = ly_program(m->prog->id);
			MemoryContextSwitchTo(loopcxt);
			m->prog = prog;
		}
		ly_sweep(m, now, &st);
		ly_save_member(m);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
	}
	MemoryContextDelete(loopcxt);
	reminders = ly_outbox_reminders(now, limit);	/* outbox.c: points_expiring */

	/* birthdays and referral bonuses due (events.c, referrals.c); counted in members */
	birthdays = ly_birthday_pass(now, limit);
	referrals = ly_referral_pass(now, limit);
	done += birthdays + referrals;

	result = MemoryContextStrdup(callcxt, psprintf(
		"{\"members\": " UINT64_FORMAT ", \"released_lots\": " INT64_FORMAT
		", \"released_points\": " INT64_FORMAT ", \"expired_lots\": " INT64_FORMAT
		", \"expired_points\": " INT64_FORMAT ", \"expire_entries\": " INT64_FORMAT "%s%s}",
		done, st.released_lots, st.released_points, st.expired_lots, st.expired_points,
		st.expire_entries,
		birthdays + referrals == 0 ? "" : psprintf(", \"birthdays\": " INT64_FORMAT ", \"referrals\": " INT64_FORMAT,
												   birthdays, referrals),
		reminders < 0 ? "" : psprintf(", \"reminders\": " INT64_FORMAT, reminders)));
	SPI_finish();
	PG_RETURN_JSONB_P(ly_jsonb(result));
}
