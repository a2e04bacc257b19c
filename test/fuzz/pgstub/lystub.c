/*
 * lystub.c: stand-ins for the extension's own helpers that the fuzzed parsers
 * call but that need a backend (spi_util.c's numerics, calendar.c's time zones).
 */
#include "loyalty.h"

int
ly_num_cmp(Numeric a, Numeric b)
{
	return pgstub_numeric_cmp(a, b);
}

Numeric
ly_num_zero(void)
{
	return int64_to_numeric(0);
}

char *
ly_json_num(Numeric n)
{
	return pgstub_numeric_text(n);
}

/* a few real zone names; anything else is refused as pg_tzset would refuse it */
static const char *const zones[] = {
	"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
};
#define ZONE_TOKEN ((pg_tz *) (uintptr_t) 1)

pg_tz *
ly_timezone(const char *name)
{
	size_t		i;

	for (i = 0; name && i < lengthof(zones); i++)
		if (strcmp(zones[i], name) == 0)
			return ZONE_TOKEN;
	ereport(ERROR,
			(errcode(LY_INVALID_SETTING),
			 errmsg("time zone \"%s\" is not recognized", name ? name : "")));
	return NULL;
}
