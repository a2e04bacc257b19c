/*
 * partners.c: coalition partners. A partner named on an earn (attrs.partner) or a
 * redemption (partner_redeem) is recorded in the entry's detail with its price per
 * point at that moment, which partner_settlement values the points at.
 */
#include "loyalty.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static LyQuery q_partner = {
	"SELECT id, price_per_point FROM loyalty.partner WHERE program_id = $1 AND code = $2", 2,
	{INT8OID, TEXTOID}, NULL};

int64
ly_partner(int64 program_id, const char *code, Numeric *price)
{
	Datum		v[2] = {Int64GetDatum(program_id), CStringGetTextDatum(code)};

	if (ly_run(&q_partner, v, NULL, 1) != 1)
		ereport(ERROR,
				(errcode(LY_UNKNOWN_PARTNER),
				 errmsg("program has no partner \"%s\"", code),
				 errhint("Add it with loyalty.add_partner.")));
	*price = ly_get_numeric(0, 2);
	return ly_get_int64(0, 1);
}
