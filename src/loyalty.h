/*
 * loyalty.h: shared declarations of the loyalty extension.
 *
 * The C core keeps one invariant above all: every change to a member's points
 * happens while holding that member's row lock, and writes the ledger entry,
 * the lots it touches and the member's balance row in the same transaction.
 */
#ifndef LOYALTY_H
#define LOYALTY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* ---- SQLSTATEs: class LY, one per business error (documented in README) ---- */
#define LY_UNKNOWN_PROGRAM        MAKE_SQLSTATE('L','Y','0','0','1')
#define LY_UNKNOWN_MEMBER         MAKE_SQLSTATE('L','Y','0','0','2')
#define LY_UNKNOWN_REFERRAL_CODE  MAKE_SQLSTATE('L','Y','0','0','4')
#define LY_UNKNOWN_PURCHASE       MAKE_SQLSTATE('L','Y','0','0','5')
#define LY_INSUFFICIENT_POINTS    MAKE_SQLSTATE('L','Y','0','1','0')
#define LY_NEGATIVE_BALANCE       MAKE_SQLSTATE('L','Y','0','1','1')
#define LY_KEY_REUSED             MAKE_SQLSTATE('L','Y','0','2','0')
#define LY_KEY_REQUIRED           MAKE_SQLSTATE('L','Y','0','2','1')
#define LY_INVALID_SETTING        MAKE_SQLSTATE('L','Y','0','3','0')
#define LY_INVALID_AMOUNT         MAKE_SQLSTATE('L','Y','0','3','1')
#define LY_INVALID_POINTS         MAKE_SQLSTATE('L','Y','0','3','2')
#define LY_INVALID_TIMESTAMP      MAKE_SQLSTATE('L','Y','0','3','3')
#define LY_NULL_VALUE             MAKE_SQLSTATE('L','Y','0','3','4')
#define LY_INVALID_JSON           MAKE_SQLSTATE('L','Y','0','3','5')
#define LY_REASON_REQUIRED        MAKE_SQLSTATE('L','Y','0','3','6')
#define LY_INVALID_NAME           MAKE_SQLSTATE('L','Y','0','3','7')
#define LY_INVALID_ARGUMENT       MAKE_SQLSTATE('L','Y','0','3','8')
#define LY_NO_BASE_TIER           MAKE_SQLSTATE('L','Y','0','4','0')
#define LY_DUPLICATE              MAKE_SQLSTATE('L','Y','0','4','1')
#define LY_INVALID_TIER           MAKE_SQLSTATE('L','Y','0','4','2')
#define LY_TIER_HELD              MAKE_SQLSTATE('L','Y','0','4','3')	/* raised by 52_tier_guard.sql */
#define LY_REFUND_EXCEEDS         MAKE_SQLSTATE('L','Y','0','5','1')
#define LY_UNKNOWN_TIER           MAKE_SQLSTATE('L','Y','0','0','3')
#define LY_UNKNOWN_PLAN           MAKE_SQLSTATE('L','Y','0','0','6')
#define LY_NO_SUBSCRIPTION        MAKE_SQLSTATE('L','Y','0','7','0')
#define LY_ALREADY_SUBSCRIBED     MAKE_SQLSTATE('L','Y','0','7','1')
#define LY_UNKNOWN_REWARD         MAKE_SQLSTATE('L','Y','0','0','7')
#define LY_REWARD_UNAVAILABLE     MAKE_SQLSTATE('L','Y','0','8','0')
#define LY_REWARD_TIER            MAKE_SQLSTATE('L','Y','0','8','1')
#define LY_REWARD_LIMIT           MAKE_SQLSTATE('L','Y','0','8','2')
#define LY_OUT_OF_STOCK           MAKE_SQLSTATE('L','Y','0','8','3')
#define LY_CODE_MALFORMED         MAKE_SQLSTATE('L','Y','0','9','0')
#define LY_CODE_MISTYPED          MAKE_SQLSTATE('L','Y','0','9','1')
#define LY_CODE_FORGED            MAKE_SQLSTATE('L','Y','0','9','2')
#define LY_KEY_REVOKED            MAKE_SQLSTATE('L','Y','0','9','3')
#define LY_VOUCHER_EXPIRED        MAKE_SQLSTATE('L','Y','0','9','4')
#define LY_VOUCHER_USED           MAKE_SQLSTATE('L','Y','0','9','5')
#define LY_VOUCHER_CANCELLED      MAKE_SQLSTATE('L','Y','0','9','6')
#define LY_NO_VOUCHER_KEY         MAKE_SQLSTATE('L','Y','0','9','7')
#define LY_APPEND_ONLY            MAKE_SQLSTATE('L','Y','0','6','0')
#define LY_INVALID_TRANSFER       MAKE_SQLSTATE('L','Y','0','6','1')
/* engagement (stamp cards, challenges): raised by the SQL definitions in 88_engagement.sql */
#define LY_INVALID_STAMP_MATCH    MAKE_SQLSTATE('L','Y','1','2','0')
#define LY_INVALID_STAMPS_NEEDED  MAKE_SQLSTATE('L','Y','1','2','1')
#define LY_INVALID_ENGAGE_REWARD  MAKE_SQLSTATE('L','Y','1','2','2')
#define LY_INVALID_CHALLENGE      MAKE_SQLSTATE('L','Y','1','2','3')
/* earning rules, baskets, partners (rules.c, partners.c): LY100-LY119 */
#define LY_INVALID_RULE           MAKE_SQLSTATE('L','Y','1','0','0')
#define LY_UNKNOWN_RULE           MAKE_SQLSTATE('L','Y','1','0','1')
#define LY_INVALID_LINES          MAKE_SQLSTATE('L','Y','1','0','2')
#define LY_UNKNOWN_PARTNER        MAKE_SQLSTATE('L','Y','1','0','3')
#define LY_INVALID_PARTNER        MAKE_SQLSTATE('L','Y','1','0','4')
#define LY_INVALID_RETURN         MAKE_SQLSTATE('L','Y','1','0','5')
#define LY_RULE_ENDED             MAKE_SQLSTATE('L','Y','1','0','6')
/* security (tenancy.c, sql/loyalty/98_security.sql): LY150-LY159 */
#define LY_ROLE_UNSAFE            MAKE_SQLSTATE('L','Y','1','5','0')
#define LY_NOT_TENANT_MEMBER      MAKE_SQLSTATE('L','Y','1','5','1')
#define LY_SCHEMA_UNSAFE          MAKE_SQLSTATE('L','Y','1','5','2')	/* raised by 98_security.sql */
/* batch.c (LY170-LY179) */
#define LY_BATCH_INPUT            MAKE_SQLSTATE('L','Y','1','7','0')
/* growth (events, referrals, segments, offers, birthdays): LY130-LY149 */
#define LY_UNKNOWN_EVENT          MAKE_SQLSTATE('L','Y','1','3','0')
#define LY_INVALID_EVENT          MAKE_SQLSTATE('L','Y','1','3','1')
#define LY_SELF_REFERRAL          MAKE_SQLSTATE('L','Y','1','3','2')
#define LY_REFERRAL_LOOP          MAKE_SQLSTATE('L','Y','1','3','3')
#define LY_REFERRAL_FIXED         MAKE_SQLSTATE('L','Y','1','3','4')
#define LY_INVALID_REFERRAL_TERMS MAKE_SQLSTATE('L','Y','1','3','5')
#define LY_UNKNOWN_SEGMENT        MAKE_SQLSTATE('L','Y','1','3','6')
#define LY_INVALID_SEGMENT        MAKE_SQLSTATE('L','Y','1','3','7')
#define LY_INVALID_OFFER          MAKE_SQLSTATE('L','Y','1','3','8')
#define LY_INVALID_BIRTH_DATE     MAKE_SQLSTATE('L','Y','1','3','9')
#define LY_REWARD_SEGMENT         MAKE_SQLSTATE('L','Y','1','4','0')
/* outbox and scheduling (LY160-LY169) */
#define LY_EVENT_NOT_DELIVERED    MAKE_SQLSTATE('L','Y','1','6','0')
#define LY_UNKNOWN_CONSUMER       MAKE_SQLSTATE('L','Y','1','6','1')
#define LY_INVALID_REMINDER       MAKE_SQLSTATE('L','Y','1','6','2')

/* Keys, codes and external references are indexed: bound them well below a btree row. */
#define LY_MAX_KEY	512
#define LY_MAX_NAME	512

/* ---- program settings (settings.c) ---- */
typedef enum { ROUND_FLOOR, ROUND_HALF_UP, ROUND_CEIL } Rounding;
typedef enum { EXPIRY_NONE, EXPIRY_ROLLING, EXPIRY_END_OF_PERIOD, EXPIRY_INACTIVITY } ExpiryPolicy;
typedef enum { PERIOD_NONE, PERIOD_MONTH, PERIOD_QUARTER, PERIOD_YEAR } Period;
typedef enum { NEG_DENY, NEG_ALLOW, NEG_CLAMP } NegativePolicy;
typedef enum { BASIS_POINTS, BASIS_SPEND, BASIS_VISITS } TierBasis;
typedef enum { WINDOW_LIFETIME, WINDOW_CALENDAR_YEAR, WINDOW_ROLLING } TierWindow;
typedef enum { DOWNGRADE_NEVER, DOWNGRADE_PERIOD_END, DOWNGRADE_ONE_STEP } Downgrade;

typedef struct Settings
{
	Numeric		points_per_unit;
	Rounding	rounding;
	char	   *timezone;
	int			pending_days;
	ExpiryPolicy expiry_policy;
	int			expiry_months;
	Period		expiry_period;
	NegativePolicy negative_balance;
	TierBasis	tier_basis;
	TierWindow	tier_window;
	int			tier_window_months;
	Downgrade	downgrade;
	int			grace_days;
	int			tier_retention_periods;
	Numeric		cost_per_point;	/* money a point costs the business (liability) */
	bool		refund_fresh_expiry;	/* cancelled vouchers: fresh lots, not the old dates */
} Settings;

extern void ly_parse_settings(Jsonb *settings, Settings *out);
extern const char *ly_rounding_name(Rounding r);
extern const char *ly_expiry_name(ExpiryPolicy p);
extern const char *ly_period_name(Period p);
extern const char *ly_negative_name(NegativePolicy p);
extern const char *ly_basis_name(TierBasis b);
extern const char *ly_window_name(TierWindow w);
extern const char *ly_downgrade_name(Downgrade d);
extern const char *const ly_rounding_names[];
extern const char *const ly_expiry_names[];
extern const char *const ly_period_names[];
extern const char *const ly_negative_names[];
extern const char *const ly_basis_names[];
extern const char *const ly_window_names[];
extern const char *const ly_downgrade_names[];
#define LY_N_ROUNDING 3
#define LY_N_EXPIRY 4
#define LY_N_PERIOD 4
#define LY_N_NEGATIVE 3
#define LY_N_BASIS 3
#define LY_N_WINDOW 3
#define LY_N_DOWNGRADE 3
extern int	ly_enum_value(const char *name, const char *const *names, int n);
extern char *ly_enum_names(const char *const *names, int n);

/* ---- calendar arithmetic in a program's time zone (calendar.c) ---- */
extern pg_tz *ly_timezone(const char *name);
extern TimestampTz ly_add_months(TimestampTz t, int months, pg_tz *tz);
extern TimestampTz ly_add_days(TimestampTz t, int days, pg_tz *tz);
extern TimestampTz ly_period_end(TimestampTz t, Period period, pg_tz *tz);
extern TimestampTz ly_year_start(TimestampTz t, pg_tz *tz);

/* ---- in-memory program, tiers and locked member (programs.c) ---- */
typedef struct Tier
{
	int64		id;
	char	   *code;
	Numeric		threshold;
	Numeric		multiplier;
} Tier;

typedef struct Program
{
	int64		id;
	Oid			tenant;			/* program.tenant: the role that may use it; InvalidOid: any */
	Settings	s;
	pg_tz	   *tz;
	int			ntiers;
	Tier	   *tiers;			/* ordered by threshold ascending */
} Program;

typedef struct Member
{
	int64		id;
	Program    *prog;
	int			tier;			/* the tier held: index into prog->tiers */
	int			earned_tier;	/* the tier qualified for (tier = max(earned, floors)) */
	TimestampTz tier_since;
	int64		available;
	int64		pending;
	int64		lifetime_earned;
	int64		redeemed;
	int64		expired;
	Numeric		qualifying;
	Numeric		lifetime_spend;
	int64		lifetime_visits;
	bool		has_last_activity;
	TimestampTz last_activity_at;
	bool		has_last_entry;
	TimestampTz last_entry_at;
	TimestampTz next_transition_at;
	/* the qualifying window, kept incrementally (tiers.c) */
	bool		has_q_state;
	TimestampTz q_start;		/* lower edge applied to `qualifying` */
	TimestampTz q_asof;			/* business time `qualifying` is exact for */
	bool		has_q_oldest;
	TimestampTz q_oldest;		/* oldest contribution still inside */
	/* tier lifecycle */
	TimestampTz tier_review_at;	/* next period-end evaluation */
	bool		has_grace;
	TimestampTz grace_until;
	int			grace_tier;		/* where the review that started the grace would go */
	int			pinned_tier;	/* index, -1 if none (set_tier) */
	TimestampTz pinned_until;
	bool		has_grant;		/* a subscription runs until granted_until */
	int			granted_tier;	/* its tier's index, -1 for a plan of benefits only */
	TimestampTz granted_until;
	int64		referred_by;	/* 0 if none (referrals.c) */
} Member;

/* Both refuse (LY001, as for an unknown id) a program the calling role may not use. */
extern Program *ly_read_program(int64 program_id);
extern Program *ly_read_program_unchecked(int64 program_id);
extern Program *ly_program(int64 program_id);	/* cache.c */
extern Program *ly_program_unchecked(int64 program_id);	/* cache.c: no tenant check */
extern int64 ly_program_by_code(const char *code);	/* LY001 if unknown or not the caller's */
extern Member *ly_lock_member(int64 member_id, Program *known);
extern Member *ly_try_lock_member(int64 member_id, Program *known);
extern Member *ly_lock_member_key(int64 member_id, const char *key, bool *key_unused);
extern void ly_save_member(Member *m);
extern void ly_member_save_values(Member *m, Datum *v, char *n);	/* q_save_member's $1..$25 */
#define LY_MEMBER_COLUMNS 25	/* what lock_member reads: LY_MEMBER_SELECT */
/* those columns, in ly_member_from_columns' order (c[k - 1] is column k) */
#define LY_MEMBER_SELECT \
	"program_id, tier_id, tier_since, available, pending, lifetime_earned, redeemed, " \
	"expired, qualifying, lifetime_spend, lifetime_visits, last_activity_at, " \
	"last_entry_at, next_transition_at, q_start, q_oldest, q_asof, tier_review_at, " \
	"grace_until, pinned_tier_id, pinned_until, granted_tier_id, granted_until, grace_tier_id, " \
	"earned_tier_id"
extern Member *ly_member_from_columns(int64 member_id, Datum *c, bool *cn, Program *known);
extern const char *ly_tier_code(Member *m);

/* ---- SPI helpers (spi_util.c) ---- */
typedef struct LyQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[48];	/* operations.c q_write_credit has 48 */
	SPIPlanPtr	plan;
} LyQuery;

extern uint64 ly_run(LyQuery *q, Datum *values, const char *nulls, long count);
extern LyQuery ly_q_save_members;	/* programs.c: ly_save_member for many members, from 25 arrays */
extern Datum ly_get(uint64 row, int col, bool *isnull);
extern int64 ly_get_int64(uint64 row, int col);
extern bool ly_get_int64_null(uint64 row, int col, int64 *out);
extern char *ly_get_text(uint64 row, int col);
extern Numeric ly_get_numeric(uint64 row, int col);
extern Datum ly_int8_array(int64 *values, int n);
extern int64 ly_nextval(const char *seqname);
extern Numeric ly_int64_numeric(int64 v);
extern int64 ly_add_points(int64 a, int64 b);
extern Numeric ly_num_add(Numeric a, Numeric b);
extern Numeric ly_num_sub(Numeric a, Numeric b);
extern Numeric ly_num_mul(Numeric a, Numeric b);
extern int	ly_num_cmp(Numeric a, Numeric b);
extern Numeric ly_num_zero(void);
extern Numeric ly_div_rounded(Numeric num, Numeric den, Rounding r);
extern int64 ly_numeric_points(Numeric n, const char *what);
extern Jsonb *ly_jsonb(const char *text);

/* ---- argument checks shared by SQL-callable functions (loyalty.c) ---- */
extern int64 ly_arg_id(FunctionCallInfo fcinfo, int n, const char *name);
extern int64 ly_arg_points(FunctionCallInfo fcinfo, int n, const char *name, bool allow_negative);
extern Numeric ly_arg_amount(FunctionCallInfo fcinfo, int n, const char *name, bool allow_null);
extern char *ly_arg_key(FunctionCallInfo fcinfo, int n);
extern char *ly_arg_name(FunctionCallInfo fcinfo, int n, const char *name);
extern char *ly_arg_reason(FunctionCallInfo fcinfo, int n, bool required);
extern TimestampTz ly_arg_at(FunctionCallInfo fcinfo, int n);
extern Jsonb *ly_arg_object(FunctionCallInfo fcinfo, int n, const char *name, bool null_is_empty);
extern void ly_check_at(TimestampTz at);

/* ---- OpenSSL (crypto.c, the only file that includes it) ---- */
extern void ly_random_bytes(unsigned char *buf, int len);
extern void ly_random_code(char *buf, int len);
extern void ly_hmac_sha256(const unsigned char *key, int keylen, const unsigned char *msg,
						   size_t msglen, unsigned char *out);
extern bool ly_equal_ct(const void *a, const void *b, size_t len);

/* ---- lots: creation, draws, sweeping time-based transitions (lots.c) ---- */
typedef struct SweepStats
{
	int64		released_lots;
	int64		released_points;
	int64		expired_lots;
	int64		expired_points;
	int64		expire_entries;
} SweepStats;

typedef struct Draw
{
	int64		lot_id;
	int64		points;			/* taken from the lot (negative settles debt) */
	bool		from_pending;
	bool		has_expiry;
	TimestampTz expires_at;
} Draw;

typedef struct DrawList
{
	int			n;
	int			cap;
	Draw	   *d;
	int64		total;			/* sum of positive draws */
	int64		from_pending;	/* part of total taken from pending lots */
	int64		later;			/* points skipped: not available yet at the draw's time */
} DrawList;

/* A credit about to become a lot: ly_credit counts it in the member's
 * balances (before the entry is written), ly_write_lot stores it (after). */
typedef struct NewLot
{
	int64		points;			/* negative for a debt lot */
	TimestampTz at;
	TimestampTz available_at;
	bool		has_expiry;
	TimestampTz expires_at;
	int64		source_lot;		/* 0 if none (transfers name the sender's lot) */
	char		state;			/* set by ly_credit */
} NewLot;

extern bool ly_lot_expiry(Program *p, TimestampTz available_at, TimestampTz *expires_at);
extern void ly_credit(Member *m, NewLot *lot);
extern void ly_write_lot(Member *m, int64 entry_id, NewLot *lot);
extern void ly_lot_values(Member *m, int64 entry_id, NewLot *lot, Datum *v, char *n);	/* q_insert_lot's $1..$8 */
extern void ly_note_transition(Member *m, TimestampTz t);
extern void ly_note_activity(Member *m, TimestampTz at);
extern int64 ly_draw_from_lot(Member *m, int64 lot_id, int64 want, DrawList *dl);
extern int64 ly_draw_available(Member *m, int64 want, int64 skip_lot, TimestampTz at, DrawList *dl);
extern void ly_write_draws(Member *m, int64 entry_id, TimestampTz at, DrawList *dl);
extern void ly_sweep(Member *m, TimestampTz t, SweepStats *st);
/*
 * expiry_batch.c: run_maintenance's set-based pass: locks and reads the due members once,
 * expires the plain ones, reviews the tier-only ones (tier_review.c), and returns the
 * others (*rest, in order, still locked) for the per-member sweep
 */
extern int64 ly_expiry_pass(TimestampTz now, int64 limit, SweepStats *st, int64 **rest,
							uint64 *nrest);
extern void ly_expiry_batch_init(void);	/* _PG_init: loyalty.set_based_expiry */
extern void ly_maintenance_rollups(void);	/* run_rollups, at most every 10 s per session */

/* ---- ledger entries (operations.c) ---- */
typedef struct EntryRow
{
	int64		id;
	const char *kind;
	int64		points;
	TimestampTz at;
	const char *key;			/* NULL for system entries */
	Jsonb	   *request;
	Numeric		amount;			/* NULL if none */
	const char *reason;
	int64		ref_entry_id;	/* 0 if none */
	int64		counterparty_id;	/* 0 if none */
	Numeric		qualifying;		/* NULL means 0 */
	TimestampTz qualifying_at;
	Jsonb	   *detail;			/* NULL means {} */
} EntryRow;

extern void ly_insert_entry(Member *m, EntryRow *e);

/* what every money-like operation returns */
typedef struct Receipt
{
	int64		entry_id;
	int64		member_id;
	int64		points;
	int64		available;
	int64		pending;
	char	   *tier;
	bool		replayed;
} Receipt;

/* the shape every operation shares: lock, replay check, sweep, write, receipt */
typedef struct Op
{
	const char *kind;
	char	   *key;
	Jsonb	   *request;		/* the arguments a replay must match */
	Numeric		earn_amount;	/* earn: request built from these when needed */
	Jsonb	   *earn_attrs;
	TimestampTz at;
	Member	   *m;
	Receipt		r;
	MemoryContext callcxt;
} Op;

extern void ly_op_init(Op *op, const char *kind, char *key, TimestampTz at);
extern void ly_entry_init(EntryRow *e, Op *op, const char *kind, int64 points);
extern void ly_insufficient(Member *m, int64 want) pg_attribute_noreturn();
extern void ly_draw_debit(Member *m, int64 want, TimestampTz at, DrawList *dl);
extern bool ly_op_replayed(Op *op, int64 member_id);
extern bool ly_op_begin(Op *op, int64 member_id);
extern void ly_op_receipt(Op *op, int64 entry_id, int64 points);
extern Datum ly_receipt_datum(FunctionCallInfo fcinfo, Receipt *r);
extern void ly_receipt_values(Receipt *r, Datum *v, bool *n);
extern void ly_write_credit(Op *op, const char *kind, int64 points, const char *reason,
							Numeric amount, Jsonb *detail);
extern char *ly_json_num(Numeric n);
extern char *ly_json_str(const char *s);

/* ---- tiers (tiers.c) ---- */
extern Numeric ly_qualifying_at(Member *m, TimestampTz at, Numeric extra, TimestampTz extra_at);
extern Numeric ly_figure_at(Member *m, TimestampTz at);
extern void ly_promote(Member *m, Numeric qualifying, TimestampTz at);
extern void ly_apply_tier(Member *m, TimestampTz at, const char *reason, Numeric figure,
						  Jsonb *detail, bool always);
extern void ly_lower_earned(Member *m, int tier, TimestampTz at);
extern TimestampTz ly_first_review(Member *m, TimestampTz at);
extern void ly_review_tiers(Member *m, TimestampTz t);
extern TimestampTz ly_tier_next_event(Member *m);
extern int	ly_tier_index(Program *p, const char *code);
extern void ly_record_tier_change(int64 member_id, TimestampTz at, const char *from,
								  const char *to, const char *reason, Numeric qualifying,
								  Jsonb *detail);
extern TimestampTz ly_window_start(Program *p, TimestampTz at);
extern TimestampTz ly_add_periods(Member *m, TimestampTz from, int n);
/* the tier events, one at a time (ly_review_tiers loops over them) */
#define LY_TIER_NONE 0
#define LY_TIER_REVIEW 1
#define LY_TIER_GRACE_END 2
#define LY_TIER_PIN_END 3
#define LY_TIER_GRANT_END 4
extern int	ly_tier_due(Member *m, TimestampTz t, TimestampTz *at);
extern bool ly_tier_event_needs_figure(Member *m, int which);
extern void ly_tier_event(Member *m, int which, TimestampTz e, Numeric figure);
/* tier changes buffered instead of written while a buffer is set (tier_review.c) */
typedef struct LyTierChanges
{
	int			n;
	int			cap;
	int64	   *member;
	TimestampTz *at;
	const char **from;
	const char **to;
	const char **reason;
	Numeric    *qualifying;		/* NULL: none */
} LyTierChanges;
extern void ly_tier_changes_buffer(LyTierChanges *buf);

/* ---- set-based tier reviews of run_maintenance (tier_review.c) ---- */
extern bool ly_set_based_tier_review;	/* GUC loyalty.set_based_tier_review */
extern void ly_tier_review_init(void);	/* _PG_init: defines the GUC */
extern uint64 ly_tier_review_members(Member **ms, const TimestampTz *next, const int64 *live,
									  bool *handled, int n, TimestampTz now);

/*
 * ---- what else a purchase moves (hooks.c dispatches) ----
 * Called by earn and reverse with the member locked, once the operation's entry is
 * fully computed (its id is known) but before it is inserted and the member saved,
 * so the entry's receipt columns, which a replay returns, count whatever the hooks
 * paid. They may write more entries (ids after the purchase's, rows before it).
 */
extern void ly_after_purchase(Op *op, EntryRow *purchase, Jsonb *attrs);
extern void ly_after_refund(Op *op, EntryRow *refund, int64 purchase_entry_id,
							Numeric refunded_amount, bool full);
/* engagement.c: stamp cards, challenges, badges */
extern void ly_engagement_purchase(Op *op, EntryRow *purchase, Jsonb *attrs);
extern void ly_engagement_refund(Op *op, EntryRow *refund, int64 purchase_entry_id,
								 Numeric refunded_amount, bool full);
/* vouchers.c: a voucher given, not bought (a full stamp card); 0 if the reward cannot be issued now */
extern int64 ly_issue_free_voucher(Member *m, int64 reward_id, int64 entry_id, TimestampTz at);
/* referrals.c: the referee's first qualifying purchase pays the referral bonuses */
extern void ly_referral_purchase(Op *op, EntryRow *purchase, Jsonb *attrs);
extern void ly_referral_refund(Op *op, EntryRow *refund, int64 purchase_entry_id,
							   Numeric refunded_amount, bool full);
/* segments.c: does the member belong to the segment right now */
extern bool ly_member_in_segment(Member *m, int64 segment_id, TimestampTz at);
extern void ly_segment_purchase(Op *op, EntryRow *purchase, Jsonb *attrs);
extern void ly_check_reward_segment(Member *m, int64 reward_id, const char *reward, TimestampTz at);
extern void ly_segment_refund(Op *op, EntryRow *refund, int64 purchase_entry_id,
							  Numeric refunded_amount, bool full);

/* ---- growth (events.c): event awards, signup, birthdays; referrals at enrol ---- */
extern bool ly_growth_installed(void);
extern void ly_growth_forget_member(int64 member_id);
extern void ly_event_signup(int64 member_id, int64 program_id, TimestampTz at);
extern int64 ly_growth_credit(Member *m, TimestampTz at, const char *key, Jsonb *request,
							  int64 points, const char *reason, Jsonb *detail);
extern int64 ly_birthday_pass(TimestampTz now, int64 limit);
extern int64 ly_referral_pass(TimestampTz now, int64 limit);
extern void ly_referral_enrolled(int64 member_id, int64 referrer_id, int64 program_id,
								 TimestampTz at);
extern int64 ly_referral_existing(int64 member_id, int64 program_id, const char *code);

/*
 * ---- earning rules (rules.c) and partners (partners.c) ----
 * ly_rules_earn computes a purchase's points (base, rule bonuses, basket lines),
 * books cap usage, and appends its detail keys (", \"rules\": ...") to *detail.
 * ly_rules_refund splits the points a refund takes back over the rules that gave
 * them, gives cap usage back, and appends the refund's detail keys.
 */
extern int64 ly_rules_earn(Member *m, Numeric amount, Jsonb *attrs, TimestampTz at,
						   Numeric tier_multiplier, StringInfo detail);
typedef struct RuleTake
{
	int			n;
	int64	   *rule;			/* rule ids */
	int64	   *points;
} RuleTake;
extern void ly_rules_refund(Member *m, int64 purchase_entry_id, Jsonb *purchase_detail,
							int64 earned, int64 due, bool full, Numeric cumulative,
							Numeric paid, RuleTake *cand, StringInfo detail);
extern void ly_lines_return(Member *m, int64 purchase_entry_id, Jsonb *purchase_detail,
							Jsonb *ret, Numeric *amount, int64 *points, RuleTake *cand,
							StringInfo detail);
/* a partner named by earn's attrs or a redemption: id and price per point; errors LY103 */
extern int64 ly_partner(int64 program_id, const char *code, Numeric *price);
/* ---- tenancy and audit (tenancy.c) ---- */
/*
 * The role a check is about: inside our SECURITY DEFINER functions GetUserId()
 * is the extension's owner, GetOuterUserId() the role in effect outside them
 * (the session user, or what SET ROLE chose).
 */
extern bool ly_tenant_allows(Oid tenant);	/* may the outer role use a program bound to tenant */
extern bool ly_program_allowed(Program *p);
extern void ly_check_program(Program *p);	/* LY001 (as unknown) unless allowed */
extern void ly_audit(const char *action, int64 program_id, int64 member_id, const char *reason,
					 Jsonb *detail);
extern char *ly_acting_role(void);	/* name of GetOuterUserId() */
extern void ly_tenancy_init(void);	/* _PG_init: the loyalty.audit_reason setting */

/* ---- outbox (outbox.c): events written in the caller's transaction ---- */
/* kind: 'member_enrolled', 'tier_changed', 'voucher_issued', 'voucher_used',
 * 'challenge_completed', 'points_expiring', ...; payload may be NULL. */
/* program_id 0: the member's. Also queues NOTIFY loyalty_events '<program_id>'. */
extern void ly_outbox_emit(int64 program_id, int64 member_id, const char *kind,
						   TimestampTz at, Jsonb *payload);
/* n events at once (the set-based tier review); skipped, as one, without an outbox */
extern void ly_outbox_emit_many(int n, int64 *program_ids, int64 *member_ids, const char *kind,
								TimestampTz *ats, Jsonb **payloads);
/* maintenance: points_expiring reminders due at now; -1 if no program sets any */
extern int64 ly_outbox_reminders(TimestampTz now, int64 limit);

/* ---- the maintenance background worker and its settings (bgworker.c) ---- */
extern void ly_bgworker_init(void);

/*
 * ---- bulk ingestion (batch.c) ----
 * While earn_batch runs, the entries, lots and member row of the member it is
 * processing are buffered and written set-based (multi-row INSERT and UPDATE from
 * arrays). The contract for code earn calls: every query (ly_run) first writes what
 * is buffered for that member, so earn reads what it wrote; rows of members the batch
 * is done with may still be buffered, and locking any other member (ly_lock_member)
 * writes them: read another member's rows only after locking it.
 */
extern bool ly_batch_active;
extern void ly_batch_before_query(void);
extern bool ly_batch_defer_entry(int64 member_id, const char *key, Datum *v, const char *n);
extern bool ly_batch_defer_lot(int64 member_id, Datum *v, const char *n);
extern bool ly_batch_defer_save(Member *m, Datum *v, const char *n);
extern Member *ly_batch_locked_member(int64 member_id, Program *known);
extern bool ly_batch_key_unused(int64 member_id, const char *key);
/* what earn_batch read ahead for a chunk of members: a lock of another member forgets it */
extern void ly_batch_forget_ahead(void);
/* tiers.c: the member's window [start, at], if earn_batch read it ahead */
extern bool ly_batch_window(int64 member_id, TimestampTz start, TimestampTz at, Numeric *sum,
							TimestampTz *oldest, bool *has_oldest);

#endif							/* LOYALTY_H */
