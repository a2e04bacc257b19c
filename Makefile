# loyalty: PostgreSQL extension built with PGXS.
EXTENSION    = loyalty
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big   = loyalty
OBJS         = src/loyalty.o src/calendar.o src/settings.o src/crypto.o src/spi_util.o \
               src/programs.o src/cache.o src/lots.o src/tiers.o src/memberships.o src/vouchers.o src/codes.o src/operations.o src/maintenance.o \
               src/triggers.o src/outbox.o src/bgworker.o \
               src/hooks.o src/engagement.o src/referrals.o src/segments.o \
               src/rules.o src/rules_parse.o src/partners.o \
               src/tenancy.o src/batch.o src/events.o src/expiry_batch.o src/tier_review.o
# The install script of the current version is built from one file per concern in
# sql/loyalty/, concatenated in name order. Released install scripts are frozen as
# committed files (sql/loyalty--1.0.sql). The upgrade script to the current version is
# built from sql/upgrade/1.0--$(EXTVERSION)/*.sql in name order: ALTERs for objects that
# changed, and symlinks to the sql/loyalty/ files that are new since 1.0.
INSTALL_SQL  = sql/$(EXTENSION)--$(EXTVERSION).sql
UPGRADE_SQL  = sql/$(EXTENSION)--1.0--$(EXTVERSION).sql
DATA_built   = $(INSTALL_SQL) $(UPGRADE_SQL)
DATA         = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
# PostgreSQL headers are system headers, so -Wextra judges our code, not theirs
PG_CPPFLAGS  = -I$(srcdir)/src -isystem $(shell $(PG_CONFIG) --includedir-server)
SHLIB_LINK   = -lcrypto
# CI adds -Werror through PG_CFLAGS; locally warnings are shown, not fatal.
override PG_CFLAGS += -Wall -Wextra

# pg_regress inputs live in sql/, outputs in expected/; isolation specs in test/specs.
REGRESS      = setup programs members operations reverse expiry maintenance invariants tiers rewards
REGRESS_OPTS = --load-extension=$(EXTENSION)
ISOLATION    = redeem_race idempotency_race redeem_vs_expiry transfer_deadlock earn_vs_maintenance tier_race last_in_stock two_tills cache_invalidation challenge_once stamp_last_voucher rule_cap_race batch_vs_earn referral_race birthday_race segment_backfill outbox_order expiry_batch tier_review_vs_earn tier_delete_vs_promotion
ISOLATION_OPTS = --load-extension=$(EXTENSION)
EXTRA_CLEAN  = META.json results output_iso regression.diffs regression.out

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# pg_isolation_regress looks for specs in ./specs; ours live in test/specs.
override ISOLATION_OPTS += --inputdir=test

all: META.json

$(INSTALL_SQL): $(sort $(wildcard sql/$(EXTENSION)/*.sql))
	cat $^ > $@

$(UPGRADE_SQL): $(sort $(wildcard sql/upgrade/1.0--$(EXTVERSION)/*.sql))
	cat $^ > $@

META.json: META.json.in $(EXTENSION).control
	sed 's/@VERSION@/$(EXTVERSION)/g' $< > $@

# pgTAP suites, run with pg_prove against the installed extension.
.PHONY: prove
prove:
	pg_prove --ext .sql --recurse --failures test/pgtap

# every C file includes the shared header
$(OBJS): src/loyalty.h
src/rules.o src/rules_parse.o: src/rules_parse.h
