/*
 * tenancy.c: which role may use which program, the audit log, anonymisation.
 *
 * A program may be bound to a role (program.tenant). Only roles with the
 * privileges of that role (members of it, directly or through other roles,
 * with INHERIT, or after SET ROLE) may use the program; the extension's owner
 * and superusers may use every program. An unbound program is usable by every
 * role that may execute the function at all.
 *
 * The C functions are SECURITY DEFINER (they write tables the application
 * roles cannot), so inside them GetUserId() is the owner and row-level
 * security does not apply. The checks here therefore look at GetOuterUserId():
 * the role in effect outside every SECURITY DEFINER function, i.e. the session
 * user or the role chosen with SET ROLE. Row-level policies (98_security.sql)
 * protect the same rows for reads by the invoker's rights (views, reading
 * functions) and use the current user, as policies do.
 *
 * A program or member the caller may not use is reported exactly as an
 * unknown one (LY001/LY002, same message), so a tenant cannot probe another.
 */
#include "loyalty.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

/* true if role has the privileges of the owner of loyalty.program (the extension's owner) */
static bool
owner_privs(Oid role)
{
	Oid			nsp = get_namespace_oid("loyalty", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("program", nsp) : InvalidOid;

	return OidIsValid(rel) && pg_class_ownercheck(rel, role);
}

static bool
role_may_use(Oid role, Oid tenant)
{
	if (!OidIsValid(tenant))
		return true;
	/* superusers have every role's privileges; a dropped tenant role matches no one */
	if (has_privs_of_role(role, tenant))
		return true;
	return owner_privs(role);
}

bool
ly_tenant_allows(Oid tenant)
{
	return role_may_use(GetOuterUserId(), tenant);
}

bool
ly_program_allowed(Program *p)
{
	return ly_tenant_allows(p->tenant);
}

void
ly_check_program(Program *p)
{
	if (!ly_program_allowed(p))
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program %lld does not exist", (long long) p->id)));
}

char *
ly_acting_role(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/* caller_may_use(tenant regrole): may the role outside our SECURITY DEFINER functions use it */
PG_FUNCTION_INFO_V1(loyalty_caller_may_use);
Datum
loyalty_caller_may_use(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_ARGISNULL(0) || ly_tenant_allows(PG_GETARG_OID(0)));
}

/* tenant_visible(tenant regrole): the row-level policy test, for the current user */
PG_FUNCTION_INFO_V1(loyalty_tenant_visible);
Datum
loyalty_tenant_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_ARGISNULL(0) || role_may_use(GetUserId(), PG_GETARG_OID(0)));
}

/* acting_role(): the role in effect outside SECURITY DEFINER functions */
PG_FUNCTION_INFO_V1(loyalty_acting_role);
Datum
loyalty_acting_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ly_acting_role()));
}

/* ---- audit ---- */

static LyQuery q_audit = {
	"INSERT INTO loyalty.audit (session_role, acting_role, action, program_id, member_id, reason, detail) "
	"VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'))", 7,
	{TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, TEXTOID, JSONBOID}, NULL};

/* One audit row: who (session user and acting role), what, on which program/member, why. */
void
ly_audit(const char *action, int64 program_id, int64 member_id, const char *reason, Jsonb *detail)
{
	Datum		v[7];
	char		n[7];

	memset(n, ' ', sizeof(n));
	v[0] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	v[1] = CStringGetTextDatum(ly_acting_role());
	v[2] = CStringGetTextDatum(action);
	v[3] = Int64GetDatum(program_id);
	n[3] = program_id ? ' ' : 'n';
	v[4] = Int64GetDatum(member_id);
	n[4] = member_id ? ' ' : 'n';
	v[5] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	n[5] = reason ? ' ' : 'n';
	v[6] = detail ? JsonbPGetDatum(detail) : (Datum) 0;
	n[6] = detail ? ' ' : 'n';
	ly_run(&q_audit, v, n, 0);
}

/* ---- binding programs to tenant roles ---- */

static LyQuery q_program_tenant = {
	"SELECT id, tenant::oid FROM loyalty.program WHERE code = $1 FOR UPDATE", 1, {TEXTOID}, NULL};

static LyQuery q_bind = {
	"UPDATE loyalty.program SET tenant = $2::oid::regrole WHERE id = $1", 2, {INT8OID, OIDOID}, NULL};

/* bind_program(program, tenant): only roles with tenant's privileges may use the program */
PG_FUNCTION_INFO_V1(loyalty_bind_program);
Datum
loyalty_bind_program(PG_FUNCTION_ARGS)
{
	char	   *program = ly_arg_name(fcinfo, 0, "program");
	Oid			tenant = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	Oid			outer = GetOuterUserId();
	Datum		v[2];
	bool		isnull;
	int64		id;
	Oid			old;

	SPI_connect();
	v[0] = CStringGetTextDatum(program);
	if (ly_run(&q_program_tenant, v, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program \"%s\" does not exist", program)));
	id = ly_get_int64(0, 1);
	old = DatumGetObjectId(ly_get(0, 2, &isnull));
	if (isnull)
		old = InvalidOid;
	if (!role_may_use(outer, old))
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PROGRAM),
				 errmsg("program \"%s\" does not exist", program)));
	/* unbinding opens the program to every role: the owner's decision only */
	if (!OidIsValid(tenant) && !owner_privs(outer))
		ereport(ERROR,
				(errcode(LY_NOT_TENANT_MEMBER),
				 errmsg("only the extension's owner can unbind a program"),
				 errdetail("An unbound program can be used by every role that can execute the functions.")));
	/* a role cannot hand a program to (or take one into) a tenant it does not belong to */
	if (OidIsValid(tenant) && !has_privs_of_role(outer, tenant) && !owner_privs(outer))
		ereport(ERROR,
				(errcode(LY_NOT_TENANT_MEMBER),
				 errmsg("must have the privileges of role \"%s\" to bind a program to it",
						GetUserNameFromId(tenant, false))));
	if (OidIsValid(tenant) && superuser_arg(tenant))
		ereport(ERROR,
				(errcode(LY_ROLE_UNSAFE),
				 errmsg("cannot bind a program to superuser role \"%s\"", GetUserNameFromId(tenant, false)),
				 errdetail("A tenant role is meant to be a group role of one tenant's users.")));
	v[0] = Int64GetDatum(id);
	v[1] = ObjectIdGetDatum(tenant);
	ly_run(&q_bind, v, OidIsValid(tenant) ? "  " : " n", 0);
	/* the program row's audit trigger records the old and new tenant */
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- data protection ---- */

static LyQuery q_anon_state = {
	"SELECT anonymised_at IS NOT NULL FROM loyalty.member WHERE id = $1", 1, {INT8OID}, NULL};

/*
 * Personal columns other features may add to loyalty.member: each one that
 * exists is reset to its default (attrs '{}', birthday NULL, ...).
 */
static const char *const personal_columns[] = {
	"attrs", "birthday", "birth_date", "email", "phone", "name", "first_name", "last_name",
	"postal_code", NULL
};

/* anonymise_member(member, reason): erase who the member is, keep the ledger */
PG_FUNCTION_INFO_V1(loyalty_anonymise_member);
Datum
loyalty_anonymise_member(PG_FUNCTION_ARGS)
{
	int64		member_id = ly_arg_id(fcinfo, 0, "member");
	char	   *reason = ly_arg_reason(fcinfo, 1, true);
	Member	   *m;
	StringInfoData sql;
	Oid			nsp;
	Oid			rel;
	int			i;
	unsigned char rnd[16];
	char		ref[64];
	char		code[9];
	Datum		v[3];
	int			ret;

	SPI_connect();
	/* the member's lock: no operation runs while the row changes; foreign = unknown */
	m = ly_lock_member(member_id, NULL);
	{
		Datum		arg = Int64GetDatum(member_id);
		bool		isnull;

		ly_run(&q_anon_state, &arg, NULL, 1);
		if (DatumGetBool(ly_get(0, 1, &isnull)))
		{
			SPI_finish();
			PG_RETURN_BOOL(false);	/* already anonymised: nothing to do, nothing to audit */
		}
	}

	/* a random reference: unique in practice, derived from nothing about the person */
	ly_random_bytes(rnd, sizeof(rnd));
	strcpy(ref, "anonymised-");
	for (i = 0; i < (int) sizeof(rnd); i++)
		sprintf(ref + strlen(ref), "%02x", rnd[i]);
	ly_random_code(code, 8);

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "UPDATE loyalty.member SET external_ref = $2, referral_code = $3, "
						   "referred_by = NULL, anonymised_at = pg_catalog.clock_timestamp()");
	nsp = get_namespace_oid("loyalty", false);
	rel = get_relname_relid("member", nsp);
	for (i = 0; personal_columns[i]; i++)
		if (get_attnum(rel, personal_columns[i]) != InvalidAttrNumber)
			appendStringInfo(&sql, ", %s = DEFAULT", quote_identifier(personal_columns[i]));
	appendStringInfoString(&sql, " WHERE id = $1");
	v[0] = Int64GetDatum(member_id);
	v[1] = CStringGetTextDatum(ref);
	v[2] = CStringGetTextDatum(code);
	ret = SPI_execute_with_args(sql.data, 3, (Oid[]) {INT8OID, TEXTOID, TEXTOID}, v, NULL, false, 0);
	if (ret != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "loyalty: anonymising member " INT64_FORMAT " failed", member_id);

	ly_growth_forget_member(member_id);	/* events.c: the birth date */
	/* events already in the outbox (member_enrolled) named the member: unname them */
	v[1] = CStringGetTextDatum(ref);
	SPI_execute_with_args("UPDATE loyalty.outbox SET payload = pg_catalog.jsonb_set(payload, '{external_ref}', pg_catalog.to_jsonb($2)) "
						  " WHERE member_id = $1 AND payload OPERATOR(pg_catalog.?) 'external_ref'",
						  2, (Oid[]) {INT8OID, TEXTOID}, v, NULL, false, 0);
	/* the audit row names the member id only: nothing it records identifies the person */
	ly_audit("anonymise_member", m->prog->id, member_id, reason, NULL);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/* ---- settings ---- */

static char *audit_reason = NULL;

/* loyalty.audit_reason: the reason recorded for settings changes made in this session */
void
ly_tenancy_init(void)
{
	DefineCustomStringVariable("loyalty.audit_reason",
							   "Reason recorded in loyalty.audit for settings changes.",
							   "Set it (SET LOCAL) before create_program, add_tier, bind_program, ...",
							   &audit_reason, NULL, PGC_USERSET, 0, NULL, NULL, NULL);
}
