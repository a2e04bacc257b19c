/*
 * referrals.c: referral bonuses (issue 4). Placeholder: purchases pay no bonus yet.
 */
#include "loyalty.h"

void
ly_referral_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	(void) op;
	(void) purchase;
	(void) attrs;
}

void
ly_referral_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
				   bool full)
{
	(void) op;
	(void) refund;
	(void) purchase_entry_id;
	(void) refunded_amount;
	(void) full;
}
