/*
 * triggers.c: the ledger is append-only, enforced rather than documented.
 */
#include "loyalty.h"

#include "commands/trigger.h"

/* forbid_change: BEFORE UPDATE/DELETE/TRUNCATE trigger on ledger tables */
PG_FUNCTION_INFO_V1(loyalty_forbid_change);
Datum
loyalty_forbid_change(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "loyalty_forbid_change: not called by trigger manager");
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
		op = "updated";
	else if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
		op = "deleted";
	else
		op = "truncated";
	ereport(ERROR,
			(errcode(LY_APPEND_ONLY),
			 errmsg("loyalty.%s is append-only: rows cannot be %s",
					RelationGetRelationName(trig->tg_relation), op),
			 errhint("Correct a balance with loyalty.adjust() or loyalty.reverse(), which add entries.")));
	PG_RETURN_NULL();
}
