/*
 * calendar.c: calendar arithmetic in a program's time zone.
 *
 * "12 months later" and "end of the month" are local-time notions: a lot made
 * available at 09:00 in New York expires at 09:00 New York time a year later,
 * whatever daylight saving did in between. We convert to local broken-down
 * time, do the arithmetic on the calendar, and convert back with the zone's
 * offset at the result (PostgreSQL's own DetermineTimeZoneOffset).
 */
#include "loyalty.h"

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

pg_tz *
ly_timezone(const char *name)
{
	pg_tz	   *tz = (name && name[0]) ? pg_tzset(name) : NULL;

	if (tz == NULL)
		ereport(ERROR,
				(errcode(LY_INVALID_SETTING),
				 errmsg("time zone \"%s\" is not recognized", name ? name : ""),
				 errhint("Use an IANA time zone name such as \"Europe/Paris\" or \"UTC\".")));
	return tz;
}

static void
to_local(TimestampTz t, pg_tz *tz, struct pg_tm *tm, fsec_t *fsec)
{
	int			tzoff;

	if (timestamp2tm(t, &tzoff, tm, fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(LY_INVALID_TIMESTAMP),
				 errmsg("timestamp out of range"),
				 errdetail("A date computed from the business time (availability, expiry or a window edge) is outside PostgreSQL's range.")));
}

static TimestampTz
from_local(struct pg_tm *tm, fsec_t fsec, pg_tz *tz)
{
	int			tzoff = DetermineTimeZoneOffset(tm, tz);
	TimestampTz r;

	if (tm2timestamp(tm, fsec, &tzoff, &r) != 0 || !IS_VALID_TIMESTAMP(r))
		ereport(ERROR,
				(errcode(LY_INVALID_TIMESTAMP),
				 errmsg("timestamp out of range"),
				 errdetail("A date computed from the business time (availability, expiry or a window edge) is outside PostgreSQL's range.")));
	return r;
}

/* Move tm by whole months, clamping the day to the length of the month. */
static void
tm_add_months(struct pg_tm *tm, int months)
{
	int			m = (tm->tm_year * 12 + (tm->tm_mon - 1)) + months;
	int			mdays;

	tm->tm_year = m / 12;
	tm->tm_mon = m % 12 + 1;
	mdays = day_tab[isleap(tm->tm_year)][tm->tm_mon - 1];
	if (tm->tm_mday > mdays)
		tm->tm_mday = mdays;
}

TimestampTz
ly_add_months(TimestampTz t, int months, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;

	to_local(t, tz, &tm, &fsec);
	tm_add_months(&tm, months);
	return from_local(&tm, fsec, tz);
}

TimestampTz
ly_add_days(TimestampTz t, int days, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			j;

	to_local(t, tz, &tm, &fsec);
	j = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) + days;
	j2date(j, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	return from_local(&tm, fsec, tz);
}

/*
 * The first instant after the period (month, quarter, year) that contains t,
 * in local time: a lot "expiring at the end of March" is available through
 * 23:59:59.999999 on 31 March and expired from 00:00 on 1 April.
 */
TimestampTz
ly_period_end(TimestampTz t, Period period, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;

	to_local(t, tz, &tm, &fsec);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	fsec = 0;
	switch (period)
	{
		case PERIOD_MONTH:
			tm_add_months(&tm, 1);
			break;
		case PERIOD_QUARTER:
			tm.tm_mon = ((tm.tm_mon - 1) / 3) * 3 + 1;
			tm_add_months(&tm, 3);
			break;
		case PERIOD_YEAR:
		case PERIOD_NONE:
			tm.tm_mon = 1;
			tm_add_months(&tm, 12);
			break;
	}
	return from_local(&tm, fsec, tz);
}

TimestampTz
ly_year_start(TimestampTz t, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;

	to_local(t, tz, &tm, &fsec);
	tm.tm_mon = 1;
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return from_local(&tm, 0, tz);
}

/* add_months_local: the same arithmetic for SQL (balance() uses it). */
PG_FUNCTION_INFO_V1(loyalty_add_months_local);
Datum
loyalty_add_months_local(PG_FUNCTION_ARGS)
{
	TimestampTz t = PG_GETARG_TIMESTAMPTZ(0);
	int32		months = PG_GETARG_INT32(1);
	char	   *tzname = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (TIMESTAMP_NOT_FINITE(t))
		PG_RETURN_TIMESTAMPTZ(t);
	PG_RETURN_TIMESTAMPTZ(ly_add_months(t, months, ly_timezone(tzname)));
}
