/*
 * maintenance.c: run_maintenance sweeps every member whose next transition
 * (a pending lot becoming available, a lot expiring) is due.
 *
 * Members are locked with SKIP LOCKED: two concurrent runs split the work,
 * an operation holding a member makes maintenance skip it (the operation
 * sweeps the member itself), and maintenance never waits for anyone. Nothing can expire twice, because a
 * lot's state only changes under its member's lock.
 *
 * The batch is locked and read once, in chunks (expiry_batch.c): members
 * due only for plain expiries are expired set-based there, members whose only
 * due events are tier reviews (the bulk of a period end) are reviewed
 * set-based (tier_review.c), under the same locks; the others are swept one at
 * a time.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

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
	int64	   *ids;
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

	/*
	 * Lock and read the batch once (expiry_batch.c): plain expiries and
	 * members with nothing but tier reviews due are done there set-based;
	 * ids[] are the others, still locked and due, in the same order.
	 */
	done = ly_expiry_pass(now, limit, &st, &ids, &n);

	/* per-member scratch memory, so a run over a million members stays flat */
	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "loyalty maintenance member",
									ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext old;
		Member	   *m;

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
