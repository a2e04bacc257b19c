/*
 * engagement.c: stamp cards, challenges and badges (issue 4). Placeholder: purchases
 * move nothing here yet.
 */
#include "loyalty.h"

void
ly_engagement_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	(void) op;
	(void) purchase;
	(void) attrs;
}

void
ly_engagement_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
					 bool full)
{
	(void) op;
	(void) refund;
	(void) purchase_entry_id;
	(void) refunded_amount;
	(void) full;
}
