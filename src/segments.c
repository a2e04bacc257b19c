/*
 * segments.c: member segments (issue 4). Placeholder: no member is in any segment yet.
 */
#include "loyalty.h"

bool
ly_member_in_segment(Member *m, int64 segment_id, TimestampTz at)
{
	(void) m;
	(void) segment_id;
	(void) at;
	return false;
}
