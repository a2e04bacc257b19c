/*
 * programs.c: programs, tiers and members: creation, loading and locking.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* ---- loading ---- */

static LyQuery q_program = {
	"SELECT points_per_unit, rounding, timezone, pending_days, expiry_policy, expiry_months, "
	"       expiry_period, negative_balance, tier_basis, tier_window, tier_window_months, "
	"       downgrade, grace_days, tier_retention_periods, voucher_refund_expiry, tenant::oid "
	"  FROM loyalty.program WHERE id = $1", 1, {INT8OID}, NULL};

static LyQuery q_tiers = {
	"SELECT id, code, threshold, earn_multiplier FROM loyalty.tier "
	" WHERE program_id = $1 ORDER BY threshold", 1, {INT8OID}, NULL};

static int
enum_col(uint64 row, int col, const char *const *names, int n)
{
	char	   *s = ly_get_text(row, col);
	int			v = s ? ly_enum_value(s, names, n) : 0;

	if (v < 0)
		elog(ERROR, "loyalty: unexpected setting value \"%s\"", s);
	return v;
}

/* Read a program and its tiers, if the calling role may use it (tenancy.c). */
Program *
ly_read_program(int64 program_id)
{
	Program    *p = ly_read_program_unchecked(program_id);

	ly_check_program(p);
	return p;
}

/* Read a program and its tiers from the tables (cache.c keeps copies). */
Program *
ly_read_program_unchecked(int64 program_id)
{
	Program    *p = palloc0(sizeof(Program));
	Datum		arg = Int64GetDatum(program_id);
	uint64		i;
	Settings   *s = &p->s;

	if (ly_run(&q_program, &arg, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program %lld does not exist", (long long) program_id)));
	p->id = program_id;
	s->points_per_unit = ly_get_numeric(0, 1);
	s->rounding = enum_col(0, 2, ly_rounding_names, LY_N_ROUNDING);
	s->timezone = ly_get_text(0, 3);
	s->pending_days = (int) ly_get_int64(0, 4) ;
	s->expiry_policy = enum_col(0, 5, ly_expiry_names, LY_N_EXPIRY);
	s->expiry_months = (int) ly_get_int64(0, 6);
	s->expiry_period = enum_col(0, 7, ly_period_names, LY_N_PERIOD);
	s->negative_balance = enum_col(0, 8, ly_negative_names, LY_N_NEGATIVE);
	s->tier_basis = enum_col(0, 9, ly_basis_names, LY_N_BASIS);
	s->tier_window = enum_col(0, 10, ly_window_names, LY_N_WINDOW);
	s->tier_window_months = (int) ly_get_int64(0, 11);
	s->downgrade = enum_col(0, 12, ly_downgrade_names, LY_N_DOWNGRADE);
	s->grace_days = (int) ly_get_int64(0, 13);
	s->tier_retention_periods = (int) ly_get_int64(0, 14);
	s->refund_fresh_expiry = strcmp(ly_get_text(0, 15), "fresh") == 0;
	{
		bool		isnull;
		Datum		t = ly_get(0, 16, &isnull);

		p->tenant = isnull ? InvalidOid : DatumGetObjectId(t);
	}
	p->tz = ly_timezone(s->timezone);

	ly_run(&q_tiers, &arg, NULL, 0);
	p->ntiers = (int) SPI_processed;
	p->tiers = palloc0(sizeof(Tier) * (p->ntiers > 0 ? p->ntiers : 1));
	for (i = 0; i < SPI_processed; i++)
	{
		p->tiers[i].id = ly_get_int64(i, 1);
		p->tiers[i].code = ly_get_text(i, 2);
		p->tiers[i].threshold = ly_get_numeric(i, 3);
		p->tiers[i].multiplier = ly_get_numeric(i, 4);
	}
	return p;
}

static bool
has_tier(Program *p, int64 id)
{
	int			i;

	if (id == 0)
		return true;
	for (i = 0; i < p->ntiers; i++)
		if (p->tiers[i].id == id)
			return true;
	return false;
}

static bool
program_has_tiers(Program *p, int64 a, int64 b, int64 c, int64 d, int64 e)
{
	return has_tier(p, a) && has_tier(p, b) && has_tier(p, c) && has_tier(p, d) && has_tier(p, e);
}

/*
 * Lock a member's row: every change to a member's points happens under this
 * lock, so two operations on one member run one after the other. The row is
 * locked alone (no join) so that READ COMMITTED re-reads its newest version.
 */
#define MEMBER_LIST "SELECT " LY_MEMBER_SELECT ", referred_by "
#define MEMBER_COLUMNS MEMBER_LIST "FROM loyalty.member WHERE id = $1 "

static LyQuery q_lock_member = {MEMBER_COLUMNS "FOR UPDATE", 1, {INT8OID}, NULL};
static LyQuery q_try_lock_member = {MEMBER_COLUMNS "FOR UPDATE SKIP LOCKED", 1, {INT8OID}, NULL};

/*
 * The lock query of an operation with an idempotency key also asks whether
 * the member has used the key (saves a statement under the lock). Its
 * subqueries read the statement's snapshot, taken before the row lock was
 * granted: if a transaction that used the key committed after that snapshot,
 * it updated the member row too (every operation saves its member), so the
 * row we locked is a newer version than the snapshot's. Column 27 tells: the
 * answer of column 28 counts only when the locked row is the snapshot's.
 */
static LyQuery q_lock_member_key = {
	MEMBER_LIST ", ctid = (SELECT mm.ctid FROM loyalty.member mm WHERE mm.id = $1), "
	"EXISTS (SELECT FROM loyalty.entry e WHERE e.member_id = $1 AND e.idempotency_key = $2) "
	"FROM loyalty.member WHERE id = $1 FOR UPDATE", 2, {INT8OID, TEXTOID}, NULL};

static Member *lock_member(int64 member_id, Program *known, bool skip_locked, const char *key,
							bool *key_unused);

Member *
ly_lock_member(int64 member_id, Program *known)
{
	return lock_member(member_id, known, false, NULL, NULL);
}

/*
 * ly_lock_member for an operation with an idempotency key: *key_unused is set
 * when the lock query could tell for certain that the member never used the
 * key (then no replay check is needed); false means ask (ly_op_replayed).
 */
Member *
ly_lock_member_key(int64 member_id, const char *key, bool *key_unused)
{
	*key_unused = false;
	return lock_member(member_id, NULL, false, key, key_unused);
}

/* The member, unless another transaction holds it (NULL then): for maintenance, which never waits. */
Member *
ly_try_lock_member(int64 member_id, Program *known)
{
	return lock_member(member_id, known, true, NULL, NULL);
}

static Member *
lock_member(int64 member_id, Program *known, bool skip_locked, const char *key, bool *key_unused)
{
	Datum		arg = Int64GetDatum(member_id);
	Datum		args[2];
	LyQuery    *q = &q_lock_member;
	Datum		c[LY_MEMBER_COLUMNS];
	bool		cn[LY_MEMBER_COLUMNS];
	int			k;
	uint64		found;
	Member	   *m;
	bool		isnull;
	int64		referred_by;

	/* earn_batch holds the member it is processing as its last save left it */
	if (ly_batch_active && !skip_locked)
	{
		Member	   *cached = ly_batch_locked_member(member_id, known);

		if (cached)
			return cached;
	}
	else if (ly_batch_active)
		ly_batch_forget_ahead();	/* a try-lock of a member may write it */

	args[0] = arg;
	if (key != NULL)
	{
		args[1] = CStringGetTextDatum(key);
		q = &q_lock_member_key;
	}
	/*
	 * Waiters queue on the row lock itself. An advisory "queue" lock taken
	 * before it, held to commit, made every hand-over wait for the next
	 * session to wake before anyone could run (a lock convoy): eight
	 * sessions on one member ran 1.3-1.7x faster without it.
	 */
	found = ly_run(skip_locked ? &q_try_lock_member : q, args, NULL, 1);
	if (found == 1 && key != NULL)
	{
		bool		fresh_null;
		bool		used_null;
		bool		fresh = DatumGetBool(ly_get(0, LY_MEMBER_COLUMNS + 2, &fresh_null));
		bool		used = DatumGetBool(ly_get(0, LY_MEMBER_COLUMNS + 3, &used_null));

		*key_unused = !fresh_null && fresh && !used_null && !used;
	}
	if (found != 1)
	{
		if (skip_locked)
			return NULL;
		ereport(ERROR,
				(errcode(LY_UNKNOWN_MEMBER),
				 errmsg("member %lld does not exist", (long long) member_id)));
	}
	for (k = 0; k < LY_MEMBER_COLUMNS; k++)
		c[k] = ly_get(0, k + 1, &cn[k]);
	/* read before ly_member_from_columns, whose program lookup may run queries */
	referred_by = DatumGetInt64(ly_get(0, LY_MEMBER_COLUMNS + 1, &isnull));	/* referrals.c */
	m = ly_member_from_columns(member_id, c, cn, known);
	m->referred_by = isnull ? 0 : referred_by;
	/* a member of a program the caller may not use is reported as unknown (tenancy.c) */
	if (!ly_program_allowed(m->prog))
	{
		if (skip_locked)
			return NULL;
		ereport(ERROR,
				(errcode(LY_UNKNOWN_MEMBER),
				 errmsg("member %lld does not exist", (long long) member_id)));
	}
	return m;
}

/*
 * A member from the columns of MEMBER_COLUMNS (c[k - 1] is column k): what
 * lock_member read, or what earn_batch last saved (the same values, so the
 * same Member).
 */
Member *
ly_member_from_columns(int64 member_id, Datum *c, bool *cn, Program *known)
{
	Member	   *m = palloc0(sizeof(Member));
	int64		program_id;
	int64		tier_id;
	int64		pinned_id;
	int64		granted_id;
	int64		grace_id;
	int64		earned_id;
	bool		isnull;
	int			i;

#define COL(k) (isnull = cn[(k) - 1], c[(k) - 1])
#define COL_I64(k) (cn[(k) - 1] ? 0 : DatumGetInt64(c[(k) - 1]))
#define COL_NUM(k) (cn[(k) - 1] ? NULL : DatumGetNumericCopy(c[(k) - 1]))
	m->id = member_id;
	program_id = COL_I64(1);
	tier_id = COL_I64(2);
	m->tier_since = DatumGetTimestampTz(COL(3));
	m->available = COL_I64(4);
	m->pending = COL_I64(5);
	m->lifetime_earned = COL_I64(6);
	m->redeemed = COL_I64(7);
	m->expired = COL_I64(8);
	m->qualifying = COL_NUM(9);
	m->lifetime_spend = COL_NUM(10);
	m->lifetime_visits = COL_I64(11);
	m->last_activity_at = DatumGetTimestampTz(COL(12));
	m->has_last_activity = !isnull;
	m->last_entry_at = DatumGetTimestampTz(COL(13));
	m->has_last_entry = !isnull;
	m->next_transition_at = DatumGetTimestampTz(COL(14));
	m->q_start = DatumGetTimestampTz(COL(15));
	m->has_q_state = !isnull;
	m->q_oldest = DatumGetTimestampTz(COL(16));
	m->has_q_oldest = !isnull;
	m->q_asof = DatumGetTimestampTz(COL(17));
	m->tier_review_at = DatumGetTimestampTz(COL(18));
	m->grace_until = DatumGetTimestampTz(COL(19));
	m->has_grace = !isnull;
	pinned_id = DatumGetInt64(COL(20));
	if (isnull)
		pinned_id = 0;
	m->pinned_until = DatumGetTimestampTz(COL(21));
	granted_id = DatumGetInt64(COL(22));
	if (isnull)
		granted_id = 0;
	m->granted_until = DatumGetTimestampTz(COL(23));
	m->has_grant = !isnull;
	grace_id = DatumGetInt64(COL(24));
	if (isnull)
		grace_id = 0;
	earned_id = DatumGetInt64(COL(25));
	if (isnull)
		earned_id = tier_id;

	m->prog = (known && known->id == program_id) ? known : ly_program_unchecked(program_id);
	if (!program_has_tiers(m->prog, tier_id, pinned_id, granted_id, grace_id, earned_id))
		m->prog = ly_read_program_unchecked(program_id);	/* a tier newer than our copy: read afresh */
	m->tier = m->earned_tier = m->pinned_tier = m->granted_tier = m->grace_tier = -1;
	for (i = 0; i < m->prog->ntiers; i++)
	{
		if (m->prog->tiers[i].id == tier_id)
			m->tier = i;
		if (m->prog->tiers[i].id == pinned_id)
			m->pinned_tier = i;
		if (m->prog->tiers[i].id == granted_id)
			m->granted_tier = i;
		if (m->prog->tiers[i].id == grace_id)
			m->grace_tier = i;
		if (m->prog->tiers[i].id == earned_id)
			m->earned_tier = i;
	}
	if (m->tier < 0)
		elog(ERROR, "loyalty: tier %lld of member %lld not found", (long long) tier_id, (long long) member_id);
#undef COL
#undef COL_I64
#undef COL_NUM
	return m;
}

/* q_save_member for many members at once, from arrays (earn_batch, set-based tier review) */
LyQuery ly_q_save_members = {
	"UPDATE loyalty.member m SET tier_id = a2, tier_since = a3, available = a4, pending = a5, "
	"       lifetime_earned = a6, redeemed = a7, expired = a8, qualifying = a9, "
	"       lifetime_spend = a10, lifetime_visits = a11, last_activity_at = a12, "
	"       last_entry_at = a13, next_transition_at = a14, q_start = a15, q_oldest = a16, "
	"       q_asof = a17, tier_review_at = a18, grace_until = a19, pinned_tier_id = a20, "
	"       pinned_until = a21, granted_tier_id = a22, granted_until = a23, grace_tier_id = a24, "
	"       earned_tier_id = a25 "
	"  FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
	"              $18, $19, $20, $21, $22, $23, $24, $25) "
	"       AS u(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, "
	"            a18, a19, a20, a21, a22, a23, a24, a25) "
	" WHERE m.id = a1", 25,
	{INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	 INT8ARRAYOID, INT8ARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID, INT8ARRAYOID,
	 TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	 TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	 INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
	 INT8ARRAYOID}, NULL};

static LyQuery q_save_member = {
	"UPDATE loyalty.member SET tier_id = $2, tier_since = $3, available = $4, pending = $5, "
	"       lifetime_earned = $6, redeemed = $7, expired = $8, qualifying = $9, "
	"       lifetime_spend = $10, lifetime_visits = $11, last_activity_at = $12, "
	"       last_entry_at = $13, next_transition_at = $14, q_start = $15, q_oldest = $16, "
	"       q_asof = $17, tier_review_at = $18, grace_until = $19, pinned_tier_id = $20, "
	"       pinned_until = $21, granted_tier_id = $22, granted_until = $23, grace_tier_id = $24, "
	"       earned_tier_id = $25 "
	" WHERE id = $1", 25,
	{INT8OID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	 NUMERICOID, NUMERICOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	 TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	 INT8OID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID}, NULL};

void
ly_member_save_values(Member *m, Datum *v, char *n)
{
	memset(n, ' ', LY_MEMBER_COLUMNS);
	v[0] = Int64GetDatum(m->id);
	v[1] = Int64GetDatum(m->prog->tiers[m->tier].id);
	v[2] = TimestampTzGetDatum(m->tier_since);
	v[3] = Int64GetDatum(m->available);
	v[4] = Int64GetDatum(m->pending);
	v[5] = Int64GetDatum(m->lifetime_earned);
	v[6] = Int64GetDatum(m->redeemed);
	v[7] = Int64GetDatum(m->expired);
	v[8] = NumericGetDatum(m->qualifying);
	v[9] = NumericGetDatum(m->lifetime_spend);
	v[10] = Int64GetDatum(m->lifetime_visits);
	v[11] = TimestampTzGetDatum(m->last_activity_at);
	n[11] = m->has_last_activity ? ' ' : 'n';
	v[12] = TimestampTzGetDatum(m->last_entry_at);
	n[12] = m->has_last_entry ? ' ' : 'n';
	v[13] = TimestampTzGetDatum(Min(m->next_transition_at, ly_tier_next_event(m)));
	v[14] = TimestampTzGetDatum(m->q_start);
	n[14] = m->has_q_state ? ' ' : 'n';
	v[15] = TimestampTzGetDatum(m->q_oldest);
	n[15] = m->has_q_oldest ? ' ' : 'n';
	v[16] = TimestampTzGetDatum(m->q_asof);
	n[16] = m->has_q_state ? ' ' : 'n';
	v[17] = TimestampTzGetDatum(m->tier_review_at);
	v[18] = TimestampTzGetDatum(m->grace_until);
	n[18] = m->has_grace ? ' ' : 'n';
	v[19] = Int64GetDatum(m->pinned_tier >= 0 ? m->prog->tiers[m->pinned_tier].id : 0);
	n[19] = m->pinned_tier >= 0 ? ' ' : 'n';
	v[20] = TimestampTzGetDatum(m->pinned_until);
	n[20] = m->pinned_tier >= 0 ? ' ' : 'n';
	v[21] = Int64GetDatum(m->granted_tier >= 0 ? m->prog->tiers[m->granted_tier].id : 0);
	n[21] = m->granted_tier >= 0 ? ' ' : 'n';
	v[22] = TimestampTzGetDatum(m->granted_until);
	n[22] = m->has_grant ? ' ' : 'n';
	v[23] = Int64GetDatum(m->has_grace && m->grace_tier >= 0 ? m->prog->tiers[m->grace_tier].id : 0);
	n[23] = m->has_grace && m->grace_tier >= 0 ? ' ' : 'n';
	v[24] = Int64GetDatum(m->prog->tiers[m->earned_tier].id);
}

void
ly_save_member(Member *m)
{
	Datum		v[LY_MEMBER_COLUMNS];
	char		n[LY_MEMBER_COLUMNS];

	ly_member_save_values(m, v, n);
	if (!(ly_batch_active && ly_batch_defer_save(m, v, n)))
		ly_run(&q_save_member, v, n, 0);
}

const char *
ly_tier_code(Member *m)
{
	return m->prog->tiers[m->tier].code;
}

/* ---- SQL-callable admin functions ---- */

static LyQuery q_program_by_code = {
	"SELECT id, tenant::oid FROM loyalty.program WHERE code = $1", 1, {TEXTOID}, NULL};

/* The id of the program with this code; LY001 if unknown or not the caller's (tenancy.c). */
int64
ly_program_by_code(const char *code)
{
	Datum		arg = CStringGetTextDatum(code);
	bool		isnull;
	Datum		tenant;

	/* a program the caller may not use is reported as unknown (tenancy.c) */
	if (ly_run(&q_program_by_code, &arg, NULL, 1) != 1 ||
		(tenant = ly_get(0, 2, &isnull), !isnull && !ly_tenant_allows(DatumGetObjectId(tenant))))
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program \"%s\" does not exist", code)));
	return ly_get_int64(0, 1);
}

static LyQuery q_insert_program = {
	"INSERT INTO loyalty.program (code, name, settings, points_per_unit, rounding, timezone, "
	"       pending_days, expiry_policy, expiry_months, expiry_period, negative_balance, "
	"       tier_basis, tier_window, tier_window_months, downgrade, grace_days, tier_retention_periods, "
	"       cost_per_point, voucher_refund_expiry) "
	"VALUES ($1, $2, jsonb_build_object("
	"         'points_per_unit', $3, 'rounding', $4, 'timezone', $5, 'pending_days', $6, "
	"         'expiry', CASE $7 WHEN 'none' THEN jsonb_build_object('policy', $7) "
	"                           WHEN 'end_of_period' THEN jsonb_build_object('policy', $7, 'months', $8, 'period', $9) "
	"                           ELSE jsonb_build_object('policy', $7, 'months', $8) END, "
	"         'negative_balance', $10, 'tier_basis', $11, "
	"         'tier_window', CASE $12 WHEN 'rolling' THEN jsonb_build_object('rolling_months', $13) "
	"                                 ELSE to_jsonb($12) END, "
	"         'downgrade', $14, 'grace_days', $15, 'tier_retention_periods', $16, "
	"         'cost_per_point', $17, 'voucher_refund_expiry', $18), "
	"        $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) "
	"ON CONFLICT (code) DO NOTHING RETURNING id", 18,
	{TEXTOID, TEXTOID, NUMERICOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID, TEXTOID,
	 TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INT4OID, NUMERICOID, TEXTOID}, NULL};

/* create_program(code, name, settings): validate settings, store them normalised */
PG_FUNCTION_INFO_V1(loyalty_create_program);
Datum
loyalty_create_program(PG_FUNCTION_ARGS)
{
	char	   *code = ly_arg_name(fcinfo, 0, "code");
	char	   *name = ly_arg_name(fcinfo, 1, "name");
	Jsonb	   *settings;
	Settings	s;
	Datum		v[18];
	char		n[18];
	int64		id;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(LY_NULL_VALUE),
				 errmsg("settings must not be null"),
				 errhint("Pass '{}' for the defaults.")));
	settings = PG_GETARG_JSONB_P(2);
	ly_parse_settings(settings, &s);

	memset(n, ' ', sizeof(n));
	v[0] = CStringGetTextDatum(code);
	v[1] = CStringGetTextDatum(name);
	v[2] = NumericGetDatum(s.points_per_unit);
	v[3] = CStringGetTextDatum(ly_rounding_name(s.rounding));
	v[4] = CStringGetTextDatum(s.timezone);
	v[5] = Int32GetDatum(s.pending_days);
	v[6] = CStringGetTextDatum(ly_expiry_name(s.expiry_policy));
	v[7] = Int32GetDatum(s.expiry_months);
	if (s.expiry_period == PERIOD_NONE)
	{
		v[8] = (Datum) 0;
		n[8] = 'n';
	}
	else
		v[8] = CStringGetTextDatum(ly_period_name(s.expiry_period));
	v[9] = CStringGetTextDatum(ly_negative_name(s.negative_balance));
	v[10] = CStringGetTextDatum(ly_basis_name(s.tier_basis));
	v[11] = CStringGetTextDatum(ly_window_name(s.tier_window));
	v[12] = Int32GetDatum(s.tier_window_months);
	v[13] = CStringGetTextDatum(ly_downgrade_name(s.downgrade));
	v[14] = Int32GetDatum(s.grace_days);
	v[15] = Int32GetDatum(s.tier_retention_periods);
	v[16] = NumericGetDatum(s.cost_per_point);
	v[17] = CStringGetTextDatum(s.refund_fresh_expiry ? "fresh" : "original");

	SPI_connect();
	if (ly_run(&q_insert_program, v, n, 0) != 1)
		ereport(ERROR,
				(errcode(LY_DUPLICATE),
				 errmsg("program \"%s\" already exists", code)));
	id = ly_get_int64(0, 1);
	SPI_finish();
	PG_RETURN_INT64(id);
}

static LyQuery q_insert_tier = {
	"INSERT INTO loyalty.tier (program_id, code, name, threshold, earn_multiplier, benefits) "
	"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id", 6,
	{INT8OID, TEXTOID, TEXTOID, NUMERICOID, NUMERICOID, JSONBOID}, NULL};

static LyQuery q_tier_conflict = {
	"SELECT code FROM loyalty.tier WHERE program_id = $1 AND (code = $2 OR threshold = $3)", 3,
	{INT8OID, TEXTOID, NUMERICOID}, NULL};

/* add_tier(program, code, name, threshold, earn_multiplier, benefits) */
PG_FUNCTION_INFO_V1(loyalty_add_tier);
Datum
loyalty_add_tier(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	char	   *code = ly_arg_name(fcinfo, 1, "code");
	char	   *name = ly_arg_name(fcinfo, 2, "name");
	Numeric		threshold;
	Numeric		mult;
	Jsonb	   *benefits = ly_arg_object(fcinfo, 5, "benefits", true);
	Datum		v[6];
	int64		program_id;
	int64		id;

	if (PG_ARGISNULL(3))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("threshold must not be null")));
	if (PG_ARGISNULL(4))
		ereport(ERROR, (errcode(LY_NULL_VALUE), errmsg("earn_multiplier must not be null")));
	threshold = PG_GETARG_NUMERIC(3);
	mult = PG_GETARG_NUMERIC(4);
	if (numeric_is_nan(threshold) || numeric_is_inf(threshold) ||
		ly_num_cmp(threshold, ly_num_zero()) < 0)
		ereport(ERROR,
				(errcode(LY_INVALID_TIER),
				 errmsg("tier threshold must be a finite number of 0 or more")));
	if (numeric_is_nan(mult) || numeric_is_inf(mult) || ly_num_cmp(mult, ly_num_zero()) <= 0)
		ereport(ERROR,
				(errcode(LY_INVALID_TIER),
				 errmsg("earn_multiplier must be a finite number greater than 0")));

	SPI_connect();
	program_id = ly_program_by_code(program);
	v[0] = Int64GetDatum(program_id);
	v[1] = CStringGetTextDatum(code);
	v[2] = CStringGetTextDatum(name);
	v[3] = NumericGetDatum(threshold);
	v[4] = NumericGetDatum(mult);
	v[5] = JsonbPGetDatum(benefits);
	if (ly_run(&q_insert_tier, v, NULL, 0) != 1)
	{
		Datum		c[3] = {v[0], v[1], v[3]};
		char	   *other = ly_run(&q_tier_conflict, c, NULL, 1) == 1 ? ly_get_text(0, 1) : NULL;

		if (other && strcmp(other, code) == 0)
			ereport(ERROR,
					(errcode(LY_DUPLICATE),
					 errmsg("program \"%s\" already has a tier \"%s\"", program, code)));
		ereport(ERROR,
				(errcode(LY_DUPLICATE),
				 errmsg("program \"%s\" already has a tier with threshold %s", program,
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(threshold)))),
				 other ? errdetail("Tier \"%s\" has that threshold.", other) : 0));
	}
	id = ly_get_int64(0, 1);
	SPI_finish();
	PG_RETURN_INT64(id);
}

static LyQuery q_base_tier = {
	"SELECT id, code FROM loyalty.tier WHERE program_id = $1 AND threshold = 0", 1, {INT8OID}, NULL};

static LyQuery q_referrer = {
	"SELECT id FROM loyalty.member WHERE program_id = $1 AND referral_code = $2", 2,
	{INT8OID, TEXTOID}, NULL};

static LyQuery q_existing_member = {
	"SELECT id FROM loyalty.member WHERE program_id = $1 AND external_ref = $2", 2,
	{INT8OID, TEXTOID}, NULL};

static LyQuery q_insert_member = {
	"INSERT INTO loyalty.member (program_id, external_ref, enrolled_at, referral_code, "
	"       referred_by, tier_id, tier_since) "
	"VALUES ($1, $2, $3, $4, $5, $6, $3) "
	"ON CONFLICT (program_id, external_ref) DO NOTHING RETURNING id", 6,
	{INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INT8OID, INT8OID}, NULL};

/* enroll(program, external_ref, at, referral_code): idempotent on external_ref */
PG_FUNCTION_INFO_V1(loyalty_enroll);
Datum
loyalty_enroll(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	char	   *ref = ly_arg_name(fcinfo, 1, "external_ref");
	TimestampTz at = ly_arg_at(fcinfo, 2);
	char	   *referral = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	int64		program_id;
	int64		referrer = 0;
	int64		base_tier;
	char	   *base_code;
	int64		id;
	Datum		v[6];
	char		n[6];
	char		code[9];

	SPI_connect();
	program_id = ly_program_by_code(program);

	v[0] = Int64GetDatum(program_id);
	v[1] = CStringGetTextDatum(ref);
	if (ly_run(&q_existing_member, v, NULL, 1) == 1)
	{
		id = ly_get_int64(0, 1);
		if (referral != NULL)
			(void) ly_referral_existing(id, program_id, referral);	/* same referrer, or an error */
		SPI_finish();
		PG_RETURN_INT64(id);
	}

	if (ly_run(&q_base_tier, v, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_NO_BASE_TIER),
				 errmsg("program \"%s\" has no tier with threshold 0", program),
				 errhint("Add the base tier first: SELECT loyalty.add_tier('%s', 'base', 'Base', 0);", program)));
	base_tier = ly_get_int64(0, 1);
	base_code = ly_get_text(0, 2);

	if (referral != NULL)
	{
		v[1] = CStringGetTextDatum(referral);
		if (ly_run(&q_referrer, v, NULL, 1) != 1)
			ereport(ERROR,
					(errcode(LY_UNKNOWN_REFERRAL_CODE),
					 errmsg("referral code \"%s\" does not exist in program \"%s\"", referral, program)));
		referrer = ly_get_int64(0, 1);
	}

	ly_random_code(code, 8);
	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(program_id);
	v[1] = CStringGetTextDatum(ref);
	v[2] = TimestampTzGetDatum(at);
	v[3] = CStringGetTextDatum(code);
	v[4] = Int64GetDatum(referrer);
	n[4] = referrer ? ' ' : 'n';
	v[5] = Int64GetDatum(base_tier);
	if (ly_run(&q_insert_member, v, n, 0) != 1)
	{
		/* a concurrent enroll of the same external_ref committed first */
		ly_run(&q_existing_member, v, NULL, 1);
		if (SPI_processed != 1)
			elog(ERROR, "loyalty: concurrent enroll of \"%s\" not visible", ref);
		id = ly_get_int64(0, 1);
		SPI_finish();
		PG_RETURN_INT64(id);
	}
	id = ly_get_int64(0, 1);
	ly_record_tier_change(id, at, NULL, base_code, "enroll", NULL, NULL);
	if (referrer)
		ly_referral_enrolled(id, referrer, program_id, at);
	ly_event_signup(id, program_id, at);
	ly_outbox_emit(program_id, id, "member_enrolled", at, ly_jsonb(psprintf("{\"external_ref\": %s, \"tier\": %s}", ly_json_str(ref), ly_json_str(base_code))));
	SPI_finish();
	PG_RETURN_INT64(id);
}
