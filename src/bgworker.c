/*
 * bgworker.c: the built-in maintenance scheduler, a background worker that
 * runs loyalty.run_maintenance every loyalty.maintenance_interval seconds in
 * one database, in batches of loyalty.maintenance_batch_size members, each
 * batch its own transaction (as CALL loyalty.maintain() does).
 *
 * It exists only when loyalty is in shared_preload_libraries and
 * loyalty.maintenance_database is set; with loyalty.maintenance_interval = 0
 * (the default) it sleeps until the setting changes. An error (the extension
 * not installed yet, a cancel, a lock timeout) is logged and the run retried
 * after a backoff that doubles up to 5 minutes; SIGHUP re-reads the settings,
 * SIGTERM ends it at once (the open batch rolls back). Running beside pg_cron
 * or a manual CALL is safe: maintenance locks members with SKIP LOCKED, and a
 * lot's state changes only under its member's lock.
 */
#include "loyalty.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void loyalty_maintenance_main(Datum arg);

static int	maintenance_interval = 0;	/* seconds; 0 = off */
static int	maintenance_batch_size = 50;	/* the README's advice: locks held well under 100 ms */
static char *maintenance_database = NULL;
static char *maintenance_role = NULL;

#define MAX_BACKOFF_S 300

void
ly_bgworker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("loyalty.maintenance_interval",
							"Seconds between two maintenance runs of the background worker (0: off).",
							"Needs loyalty in shared_preload_libraries and loyalty.maintenance_database.",
							&maintenance_interval, 0, 0, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("loyalty.maintenance_batch_size",
							"Members per maintenance transaction of the background worker.",
							NULL, &maintenance_batch_size, 50, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* PostgreSQL refuses PGC_POSTMASTER settings from a library loaded after startup */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("loyalty.maintenance_database",
							   "Database the maintenance background worker connects to (empty: no worker).",
							   NULL, &maintenance_database, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("loyalty.maintenance_role",
							   "Role the maintenance background worker runs as (empty: the bootstrap superuser).",
							   NULL, &maintenance_role, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	/* typos such as loyalty.maintenance_intervall are errors, not silent placeholders */
	MarkGUCPrefixReserved("loyalty");

	if (maintenance_database == NULL || maintenance_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;	/* after a FATAL, such as an unknown role */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "loyalty");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "loyalty_maintenance_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "loyalty maintenance on %s", maintenance_database);
	snprintf(worker.bgw_type, BGW_MAXLEN, "loyalty maintenance");
	RegisterBackgroundWorker(&worker);
}

/*
 * One batch in its own transaction: the counts run_maintenance returned
 * (members swept) and its whole result, for the log.
 */
static int64
run_batch(char **summary, int64 *reminders)
{
	int64		members = 0;
	bool		isnull;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "loyalty maintenance");

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'loyalty'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "loyalty: could not read pg_extension");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension loyalty is not installed in database \"%s\"", maintenance_database),
				 errhint("CREATE EXTENSION loyalty there, or set loyalty.maintenance_database.")));
	if (SPI_execute(psprintf("SELECT r::text, (r->>'members')::bigint, coalesce((r->>'reminders')::bigint, 0) "
							 "  FROM loyalty.run_maintenance(pg_catalog.now(), %d) AS r",
							 maintenance_batch_size), false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "loyalty: run_maintenance returned no row");
	*summary = MemoryContextStrdup(TopMemoryContext, ly_get_text(0, 1));
	members = DatumGetInt64(ly_get(0, 2, &isnull));
	*reminders = DatumGetInt64(ly_get(0, 3, &isnull));

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return members;
}

/* A whole run: batches until one is not full. Errors propagate to the caller. */
static void
run_maintenance_once(void)
{
	int64		total = 0;
	int			batches = 0;
	char	   *summary = NULL;
	int64		n;
	int64		reminders = 0;

	do
	{
		CHECK_FOR_INTERRUPTS();
		n = run_batch(&summary, &reminders);
		total += n;
		batches++;
		/* a batch that swept or reminded something is worth a line in the log */
		if (n > 0 || reminders > 0)
			ereport(LOG,
					(errmsg("loyalty maintenance: %s", summary)));
		pfree(summary);
		summary = NULL;
	} while (n >= maintenance_batch_size);
	ereport(DEBUG1,
			(errmsg("loyalty maintenance: run done, " INT64_FORMAT " members in %d batches", total, batches)));
}

void
loyalty_maintenance_main(Datum arg)
{
	volatile int failures = 0;
	volatile TimestampTz next_run;

	(void) arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(maintenance_database,
										 maintenance_role[0] ? maintenance_role : NULL, 0);
	pgstat_report_appname("loyalty maintenance");
	ereport(LOG,
			(errmsg("loyalty maintenance worker started in database \"%s\", interval %d s",
					maintenance_database, maintenance_interval)));
	next_run = GetCurrentTimestamp();

	for (;;)
	{
		long		wait_ms = -1;
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			int			old = maintenance_interval;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (old != maintenance_interval)
			{
				ereport(LOG,
						(errmsg("loyalty maintenance interval is now %d s", maintenance_interval)));
				next_run = GetCurrentTimestamp();
				failures = 0;
			}
		}

		now = GetCurrentTimestamp();
		if (maintenance_interval > 0 && now >= next_run)
		{
			MemoryContext cxt = CurrentMemoryContext;

			PG_TRY();
			{
				run_maintenance_once();
				if (failures > 0)
					ereport(LOG, (errmsg("loyalty maintenance succeeded again after %d failures", failures)));
				failures = 0;
				next_run = TimestampTzPlusMilliseconds(now, maintenance_interval * 1000L);
			}
			PG_CATCH();
			{
				int			backoff;
				ErrorData  *edata;

				/* log it, roll back, and try again later: an ERROR must not kill the worker */
				MemoryContextSwitchTo(cxt);
				edata = CopyErrorData();
				FlushErrorState();
				AbortCurrentTransaction();
				pgstat_report_activity(STATE_IDLE, NULL);
				failures++;
				backoff = maintenance_interval;
				for (int i = 0; i < failures && backoff < MAX_BACKOFF_S; i++)
					backoff *= 2;
				backoff = Min(backoff, MAX_BACKOFF_S);
				/* LOG, not ERROR: log_min_messages ranks LOG above ERROR, so it is always seen */
				ereport(LOG,
						(errmsg("loyalty maintenance failed (%d in a row), retrying in %d s: %s",
								failures, backoff, edata->message),
						 edata->hint ? errhint("%s", edata->hint) : 0));
				FreeErrorData(edata);
				next_run = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff * 1000L);
			}
			PG_END_TRY();
			now = GetCurrentTimestamp();
		}

		if (maintenance_interval > 0)
		{
			wait_ms = (long) ((next_run - now) / 1000);
			if (wait_ms < 1)
				wait_ms = 1;
			events |= WL_TIMEOUT;
		}
		(void) WaitLatch(MyLatch, events, wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
