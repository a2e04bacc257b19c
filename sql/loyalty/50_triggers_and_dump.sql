-- ---------------------------------------------------------------------------
-- Append-only enforcement (C triggers)
-- ---------------------------------------------------------------------------

CREATE FUNCTION loyalty.forbid_change() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_forbid_change'
    SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER entry_append_only BEFORE UPDATE OR DELETE ON loyalty.entry
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER entry_no_truncate BEFORE TRUNCATE ON loyalty.entry
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER lot_draw_append_only BEFORE UPDATE OR DELETE ON loyalty.lot_draw
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER lot_draw_no_truncate BEFORE TRUNCATE ON loyalty.lot_draw
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER tier_change_append_only BEFORE UPDATE OR DELETE ON loyalty.tier_change
    FOR EACH ROW EXECUTE FUNCTION loyalty.forbid_change();
CREATE TRIGGER tier_change_no_truncate BEFORE TRUNCATE ON loyalty.tier_change
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.forbid_change();

-- Backends cache programs and tiers (src/cache.c); any change drops the caches.
CREATE FUNCTION loyalty.invalidate_program_cache() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'loyalty_invalidate_program_cache'
    SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER program_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.program
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();
CREATE TRIGGER plan_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.plan
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();
CREATE TRIGGER tier_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON loyalty.tier
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty.invalidate_program_cache();

-- pg_dump keeps what users put in these tables.
SELECT pg_catalog.pg_extension_config_dump('loyalty.program', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.entry', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot_draw', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_change', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.program_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.member_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.tier_change_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.plan', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.plan_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.entry_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.lot_id_seq', '');

