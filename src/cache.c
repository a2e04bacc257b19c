/*
 * cache.c: a per-backend cache of programs and their tiers.
 *
 * Every operation needs its program's settings and tier ladder; reading them
 * with two queries per call costs more than the ledger write itself. They
 * change rarely (create_program, add_tier), so each backend keeps a copy,
 * dropped whenever loyalty.program or loyalty.tier changes: a statement
 * trigger on both tables sends a relcache invalidation, which every backend
 * processes at its next transaction start (and this one at once).
 *
 * Each lookup first takes the invalidations queued since (so a long READ
 * COMMITTED transaction sees another session's add_tier at its next call, as
 * its queries would). The cache is only filled under READ COMMITTED, where
 * the loading query sees everything committed before it; under REPEATABLE READ a snapshot could
 * predate an invalidation already consumed, so those transactions always
 * read the tables.
 */
#include "loyalty.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef struct CacheEntry
{
	int64		program_id;		/* hash key */
	Program    *program;
} CacheEntry;

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;
static Oid	program_relid = InvalidOid;
static Oid	tier_relid = InvalidOid;
static bool callback_registered = false;

static void
cache_reset(Datum arg, Oid relid)
{
	(void) arg;
	if (relid != InvalidOid && relid != program_relid && relid != tier_relid)
		return;
	if (cache_cxt)
		MemoryContextReset(cache_cxt);
	cache = NULL;
	program_relid = tier_relid = InvalidOid;
}

static Program *
copy_program(Program *src)
{
	Program    *p = palloc(sizeof(Program));
	int			i;

	*p = *src;
	p->s.points_per_unit = DatumGetNumericCopy(NumericGetDatum(src->s.points_per_unit));
	p->s.timezone = pstrdup(src->s.timezone);
	p->tiers = palloc(sizeof(Tier) * (src->ntiers > 0 ? src->ntiers : 1));
	for (i = 0; i < src->ntiers; i++)
	{
		p->tiers[i].id = src->tiers[i].id;
		p->tiers[i].code = pstrdup(src->tiers[i].code);
		p->tiers[i].threshold = DatumGetNumericCopy(NumericGetDatum(src->tiers[i].threshold));
		p->tiers[i].multiplier = DatumGetNumericCopy(NumericGetDatum(src->tiers[i].multiplier));
	}
	return p;
}

/* Remember which relations invalidate the cache; false if the schema is gone. */
static bool
cache_open(void)
{
	Oid			nsp;
	HASHCTL		ctl;

	if (cache != NULL)
		return true;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(cache_reset, (Datum) 0);
		callback_registered = true;
	}
	nsp = get_namespace_oid("loyalty", true);
	if (!OidIsValid(nsp))
		return false;
	program_relid = get_relname_relid("program", nsp);
	tier_relid = get_relname_relid("tier", nsp);
	if (!OidIsValid(program_relid) || !OidIsValid(tier_relid))
		return false;
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "loyalty program cache",
										  ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = cache_cxt;
	cache = hash_create("loyalty programs", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return true;
}

/* The program with its tiers, as a copy the caller owns, if the calling role may use it. */
Program *
ly_program(int64 program_id)
{
	Program    *p = ly_program_unchecked(program_id);

	ly_check_program(p);
	return p;
}

/* The same without the tenant check (ly_lock_member reports a foreign member as unknown). */
Program *
ly_program_unchecked(int64 program_id)
{
	CacheEntry *e;
	bool		found;
	Program    *loaded;
	MemoryContext old;

	/* take invalidations sent since this transaction's last lock (add_tier elsewhere) */
	AcceptInvalidationMessages();
	if (IsolationUsesXactSnapshot() || !cache_open())
		return ly_read_program_unchecked(program_id);
	e = hash_search(cache, &program_id, HASH_FIND, NULL);
	if (e != NULL)
		return copy_program(e->program);

	loaded = ly_read_program_unchecked(program_id);
	/* reading may have processed an invalidation that dropped the cache */
	if (cache == NULL && !cache_open())
		return loaded;
	old = MemoryContextSwitchTo(cache_cxt);
	e = hash_search(cache, &program_id, HASH_ENTER, &found);
	e->program = copy_program(loaded);
	MemoryContextSwitchTo(old);
	return loaded;
}

/* invalidate_program_cache: statement trigger on loyalty.program and loyalty.tier */
PG_FUNCTION_INFO_V1(loyalty_invalidate_program_cache);
Datum
loyalty_invalidate_program_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "loyalty_invalidate_program_cache: not called by trigger manager");
	CacheInvalidateRelcache(trig->tg_relation);
	return PointerGetDatum(NULL);	/* an AFTER trigger's result is ignored */
}
