/*
 * hooks.c: what else a purchase or a refund moves besides points and tiers. One place
 * that lists, in order, the features that follow purchases, so earn and reverse stay
 * about points.
 */
#include "loyalty.h"

void
ly_after_purchase(Op *op, EntryRow *purchase, Jsonb *attrs)
{
	ly_engagement_purchase(op, purchase, attrs);
	ly_referral_purchase(op, purchase, attrs);
	ly_segment_purchase(op, purchase, attrs);
}

void
ly_after_refund(Op *op, EntryRow *refund, int64 purchase_entry_id, Numeric refunded_amount,
				bool full)
{
	ly_engagement_refund(op, refund, purchase_entry_id, refunded_amount, full);
	ly_referral_refund(op, refund, purchase_entry_id, refunded_amount, full);
	ly_segment_refund(op, refund, purchase_entry_id, refunded_amount, full);
}
