/*
 * memberships.c: tiers that are granted rather than qualified for.
 *
 * set_tier pins a tier until a date (a status match, a VIP); a subscription
 * to a membership plan grants the plan's tier for the paid period. Either is
 * a floor: the member holds the higher of it and the tier they earned, and
 * when it ends they hold their earned tier again (tiers.c, ly_review_tiers).
 * A pin below the earned tier is a correction: it lowers the earned tier too.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

/* {"reason": ..., "until": ..., "session_user": ..., "current_user": ...} */
static Jsonb *
audit_detail(const char *reason, TimestampTz until)
{
	return ly_jsonb(psprintf("{\"reason\": %s, \"until\": %s, \"session_user\": %s, \"current_user\": %s}",
							 ly_json_str(reason),
							 ly_json_str(TIMESTAMP_NOT_FINITE(until) ? "infinity" : timestamptz_to_str(until)),
							 ly_json_str(GetUserNameFromId(GetSessionUserId(), false)),
							 ly_json_str(ly_acting_role())));
}

/* set_tier(member, tier_code, until, reason, at): pin a tier until a date, audited */
PG_FUNCTION_INFO_V1(loyalty_set_tier);
Datum
loyalty_set_tier(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *code = ly_arg_name(fcinfo, 1, "tier_code");
	TimestampTz until;
	char	   *reason = ly_arg_reason(fcinfo, 3, true);
	TimestampTz at = ly_arg_at(fcinfo, 4);
	MemoryContext callcxt = CurrentMemoryContext;
	SweepStats	st = {0};
	Member	   *m;
	int			tier;
	char	   *result;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(LY_NULL_VALUE),
				 errmsg("until must not be null"),
				 errhint("Pass 'infinity' to pin the tier with no end.")));
	until = PG_GETARG_TIMESTAMPTZ(2);
	if (until <= at)
		ereport(ERROR,
				(errcode(LY_INVALID_TIMESTAMP),
				 errmsg("until must be later than at")));

	SPI_connect();
	m = ly_lock_member(member_id, NULL);
	tier = ly_tier_index(m->prog, code);
	if (tier < 0)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_TIER),
				 errmsg("tier \"%s\" does not exist in the member's program", code)));
	ly_sweep(m, at, &st);
	/* a pin below what the member earned is a correction: they earned less */
	ly_lower_earned(m, tier, at);
	m->pinned_tier = tier;
	m->pinned_until = until;
	/* the tier held becomes the pin (or stays higher if earned higher); always audited */
	{
		int			held = m->tier;

		m->tier = Max(m->earned_tier, tier);
		m->tier_since = Max(at, m->tier_since);
		ly_record_tier_change(m->id, m->tier_since, m->prog->tiers[held].code,
							  m->prog->tiers[m->tier].code, "override", NULL, audit_detail(reason, until));
		ly_audit("set_tier", m->prog->id, m->id, reason,
				 ly_jsonb(psprintf("{\"tier\": %s, \"from\": %s, \"held\": %s, \"until\": %s, \"at\": %s}",
								   ly_json_str(code), ly_json_str(m->prog->tiers[held].code),
								   ly_json_str(m->prog->tiers[m->tier].code),
								   ly_json_str(TIMESTAMP_NOT_FINITE(until) ? "infinity" : timestamptz_to_str(until)),
								   ly_json_str(timestamptz_to_str(at)))));
	}
	ly_save_member(m);
	result = MemoryContextStrdup(callcxt, code);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ---- paid memberships ---- */

static LyQuery q_plan = {
	"SELECT id, price, period_months, tier_id, signup_bonus_points, renewal_bonus_points, renews "
	"  FROM loyalty.plan WHERE program_id = $1 AND code = $2", 2, {INT8OID, TEXTOID}, NULL};

static LyQuery q_current_sub = {
	"SELECT s.id, s.ends_at, s.lapsed_at IS NOT NULL, p.code, p.price, p.period_months, p.tier_id, "
	"       p.renewal_bonus_points, p.renews "
	"  FROM loyalty.subscription s JOIN loyalty.plan p ON p.id = s.plan_id "
	" WHERE s.member_id = $1 ORDER BY s.id DESC LIMIT 1", 1, {INT8OID}, NULL};

static LyQuery q_insert_sub = {
	"INSERT INTO loyalty.subscription (member_id, plan_id, started_at, ends_at, auto_renew) "
	"VALUES ($1, $2, $3, $4, $5)", 5, {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID}, NULL};

static LyQuery q_extend_sub = {
	"UPDATE loyalty.subscription SET ends_at = $3, periods = periods + 1, cancelled_at = NULL, "
	"       auto_renew = $4 WHERE member_id = $1 AND id = $2", 4,
	{INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID}, NULL};

/* Grant the plan's tier until `until` (raising the member now if it is higher). */
static void
grant(Member *m, int64 tier_id, TimestampTz at, TimestampTz until, const char *plan)
{
	int			i;

	m->granted_tier = -1;
	for (i = 0; i < m->prog->ntiers; i++)
		if (m->prog->tiers[i].id == tier_id)
			m->granted_tier = i;
	/* a plan of benefits only grants no tier, but its end is still an event */
	m->has_grant = true;
	m->granted_until = until;
	ly_apply_tier(m, at, "subscription", NULL, ly_jsonb(psprintf("{\"plan\": %s}", ly_json_str(plan))), false);
}

static Jsonb *
period_detail(const char *plan, TimestampTz from, TimestampTz to)
{
	return ly_jsonb(psprintf("{\"plan\": %s, \"period_start\": %s, \"period_end\": %s}",
							 ly_json_str(plan), ly_json_str(timestamptz_to_str(from)),
							 ly_json_str(timestamptz_to_str(to))));
}

/* subscribe(member, plan, idempotency_key, at): buy a membership plan */
PG_FUNCTION_INFO_V1(loyalty_subscribe);
Datum
loyalty_subscribe(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *plan = ly_arg_name(fcinfo, 1, "plan");
	Op			op;

	ly_op_init(&op, "subscribe", ly_arg_key(fcinfo, 2), ly_arg_at(fcinfo, 3));
	op.request = ly_jsonb(psprintf("{\"plan\": %s}", ly_json_str(plan)));

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		Member	   *m = op.m;
		Datum		v[5];
		int64		plan_id;
		Numeric		price;
		int			months;
		int64		tier_id = 0;
		int64		bonus;
		bool		renews;
		bool		isnull;
		TimestampTz ends;

		v[0] = Int64GetDatum(m->prog->id);
		v[1] = CStringGetTextDatum(plan);
		if (ly_run(&q_plan, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_PLAN),
					 errmsg("plan \"%s\" does not exist in the member's program", plan)));
		plan_id = ly_get_int64(0, 1);
		price = ly_get_numeric(0, 2);
		months = (int) ly_get_int64(0, 3);
		(void) ly_get_int64_null(0, 4, &tier_id);
		bonus = ly_get_int64(0, 5);
		renews = DatumGetBool(ly_get(0, 7, &isnull));

		v[0] = Int64GetDatum(m->id);
		if (ly_run(&q_current_sub, v, NULL, 1) == 1 && !DatumGetBool(ly_get(0, 3, &isnull)))
			ereport(ERROR,
					(errcode(LY_ALREADY_SUBSCRIBED),
					 errmsg("member " INT64_FORMAT " already has a subscription to plan \"%s\"",
							m->id, ly_get_text(0, 4)),
					 errhint("Renew it with loyalty.renew(), or let it end first.")));

		ends = ly_add_months(op.at, months, m->prog->tz);
		v[0] = Int64GetDatum(m->id);
		v[1] = Int64GetDatum(plan_id);
		v[2] = TimestampTzGetDatum(op.at);
		v[3] = TimestampTzGetDatum(ends);
		v[4] = BoolGetDatum(renews);
		ly_run(&q_insert_sub, v, NULL, 0);
		grant(m, tier_id, op.at, ends, plan);
		ly_note_activity(m, op.at);
		ly_write_credit(&op, "subscribe", bonus, NULL, price, period_detail(plan, op.at, ends));
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

/* renew(member, idempotency_key, at): pay for one more period of the current plan */
PG_FUNCTION_INFO_V1(loyalty_renew);
Datum
loyalty_renew(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	Op			op;

	ly_op_init(&op, "renew", ly_arg_key(fcinfo, 1), ly_arg_at(fcinfo, 2));
	op.request = ly_jsonb("{}");

	SPI_connect();
	if (ly_op_begin(&op, member_id))
	{
		Member	   *m = op.m;
		Datum		v[5];
		bool		isnull;
		int64		sub_id;
		TimestampTz ends;
		bool		lapsed;
		char	   *plan;
		Numeric		price;
		int			months;
		int64		tier_id = 0;
		int64		bonus;
		bool		renews;
		TimestampTz from;
		TimestampTz to;

		v[0] = Int64GetDatum(m->id);
		if (ly_run(&q_current_sub, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_NO_SUBSCRIPTION),
					 errmsg("member " INT64_FORMAT " has no subscription to renew", m->id),
					 errhint("Start one with loyalty.subscribe().")));
		sub_id = ly_get_int64(0, 1);
		ends = DatumGetTimestampTz(ly_get(0, 2, &isnull));
		lapsed = DatumGetBool(ly_get(0, 3, &isnull));
		plan = ly_get_text(0, 4);
		price = ly_get_numeric(0, 5);
		months = (int) ly_get_int64(0, 6);
		(void) ly_get_int64_null(0, 7, &tier_id);
		bonus = ly_get_int64(0, 8);
		renews = DatumGetBool(ly_get(0, 9, &isnull));

		/* a lapsed plan starts again today; a running one is extended from its end */
		from = lapsed ? op.at : ends;
		to = ly_add_months(from, months, m->prog->tz);
		if (lapsed)
		{
			int64		plan_id;

			v[0] = Int64GetDatum(m->prog->id);
			v[1] = CStringGetTextDatum(plan);
			ly_run(&q_plan, v, NULL, 1);
			plan_id = ly_get_int64(0, 1);
			v[0] = Int64GetDatum(m->id);
			v[1] = Int64GetDatum(plan_id);
			v[2] = TimestampTzGetDatum(from);
			v[3] = TimestampTzGetDatum(to);
			v[4] = BoolGetDatum(renews);
			ly_run(&q_insert_sub, v, NULL, 0);
		}
		else
		{
			v[0] = Int64GetDatum(m->id);
			v[1] = Int64GetDatum(sub_id);
			v[2] = TimestampTzGetDatum(to);
			v[3] = BoolGetDatum(renews);
			ly_run(&q_extend_sub, v, NULL, 0);
		}
		grant(m, tier_id, op.at, to, plan);
		ly_note_activity(m, op.at);
		ly_write_credit(&op, "renew", bonus, NULL, price, period_detail(plan, from, to));
	}
	SPI_finish();
	PG_RETURN_DATUM(ly_receipt_datum(fcinfo, &op.r));
}

static LyQuery q_cancel = {
	"UPDATE loyalty.subscription SET auto_renew = false, cancelled_at = coalesce(cancelled_at, $3) "
	" WHERE member_id = $1 AND id = $2 RETURNING ends_at", 3,
	{INT8OID, INT8OID, TIMESTAMPTZOID}, NULL};

/* cancel_subscription(member, at): stop renewing; the tier holds until the paid period ends */
PG_FUNCTION_INFO_V1(loyalty_cancel_subscription);
Datum
loyalty_cancel_subscription(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	TimestampTz at = ly_arg_at(fcinfo, 1);
	SweepStats	st = {0};
	Member	   *m;
	Datum		v[3];
	bool		isnull;
	TimestampTz ends;

	SPI_connect();
	m = ly_lock_member(member_id, NULL);
	ly_sweep(m, at, &st);
	v[0] = Int64GetDatum(m->id);
	if (ly_run(&q_current_sub, v, NULL, 1) != 1 || DatumGetBool(ly_get(0, 3, &isnull)))
		ereport(ERROR,
				(errcode(LY_NO_SUBSCRIPTION),
				 errmsg("member " INT64_FORMAT " has no running subscription", m->id)));
	v[1] = Int64GetDatum(ly_get_int64(0, 1));
	v[2] = TimestampTzGetDatum(at);
	ly_run(&q_cancel, v, NULL, 1);
	ends = DatumGetTimestampTz(ly_get(0, 1, &isnull));
	ly_save_member(m);
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(ends);
}
