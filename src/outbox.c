/*
 * outbox.c: the events outbox (issue 6). Placeholder until the outbox lands: callers
 * may already emit events; they are discarded.
 */
#include "loyalty.h"

void
ly_outbox_emit(int64 program_id, int64 member_id, const char *kind, TimestampTz at,
			   Jsonb *payload)
{
	(void) program_id;
	(void) member_id;
	(void) kind;
	(void) at;
	(void) payload;
}
