/*
 * rules_parse.h: the parsed form of an earning rule and its parser, which is pure
 * (no SPI, no caches) so the libFuzzer harness test/fuzz/fuzz_rules.c can build it outside the server.
 */
#ifndef LY_RULES_PARSE_H
#define LY_RULES_PARSE_H

#include "loyalty.h"

typedef enum { RK_EXCLUDE, RK_MULTIPLIER, RK_BONUS, RK_PER_UNIT } RuleKind;
static const char *const kind_names[] = {"exclude", "multiplier", "bonus", "per_unit"};

typedef enum { CAP_NONE, CAP_DAY, CAP_WEEK, CAP_MONTH, CAP_YEAR, CAP_EVER } CapPeriod;
static const char *const cap_names[] = {NULL, "day", "week", "month", "year", "ever"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

#define MAX_LIST 1000
#define MAX_LINES 1000

typedef struct MatchValue
{
	enum jbvType type;			/* jbvString, jbvNumeric, jbvBool */
	char	   *str;
	int			len;
	Numeric		num;
	bool		b;
} MatchValue;

typedef struct Match
{
	char	   *key;
	int			keylen;
	int			n;
	MatchValue *v;
} Match;

typedef struct Rule
{
	int64		id;
	char	   *code;
	char	   *name;
	RuleKind	kind;
	Numeric		factor;			/* multiplier */
	Numeric		points;			/* bonus: whole points; per_unit: points per unit */
	bool		per_qty;		/* per_unit per item instead of per currency unit */
	int			nmatch;
	Match	   *match;
	bool		has_from;
	TimestampTz valid_from;
	bool		has_to;
	TimestampTz valid_to;
	bool		has_end;
	TimestampTz ended_at;
	int			days;			/* bit per weekday (0 = Sunday); 0: every day */
	bool		has_hours;
	int			from_min;		/* minutes of the local day, [from, to), wrapping */
	int			to_min;
	Numeric		min_spend;		/* NULL: none */
	int			ntiers;
	char	  **tiers;
	int64		segment_id;		/* 0: none */
	CapPeriod	cap;
	int64		cap_points;
	char	   *group;			/* stacking group, NULL: none */
	int			priority;
} Rule;

static inline bool
is_container(JsonbValue *v, bool object)
{
	return v->type == jbvBinary &&
		(object ? JsonContainerIsObject(v->val.binary.data) : JsonContainerIsArray(v->val.binary.data));
}

/* Does the program have a tier with this code? NULL: do not check (stored rules). */
typedef bool (*LyTierExists) (const char *code, void *arg);

extern void ly_rule_parse(Jsonb *def, Rule *r, LyTierExists tier_exists, void *arg);

#endif							/* LY_RULES_PARSE_H */
