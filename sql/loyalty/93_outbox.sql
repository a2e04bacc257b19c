-- ---------------------------------------------------------------------------
-- Outbox: events written in the same transaction as the change (src/outbox.c)
-- ---------------------------------------------------------------------------

-- One row per event. `id` is taken when the event is written; `pos` is the
-- delivery order, given by next_events to events that have committed, in one
-- transaction at a time. Ids are not a safe cursor: a transaction can take id 5,
-- commit after another one wrote id 6, and a reader that had already moved past
-- 6 would never see 5. Positions are only given to committed rows, under a
-- lock held until the positioning transaction ends, so every reader sees them
-- as a gap-free prefix (an aborted positioning leaves a hole no one can fill).
-- No foreign keys: only the core writes here, and the row must outlive nothing.
CREATE SEQUENCE loyalty.outbox_id_seq;
CREATE SEQUENCE loyalty.outbox_pos_seq;
CREATE TABLE loyalty.outbox (
    id         bigint PRIMARY KEY DEFAULT nextval('loyalty.outbox_id_seq'),
    program_id bigint NOT NULL,
    member_id  bigint,
    kind       text NOT NULL CHECK (kind <> ''),
    at         timestamptz NOT NULL,
    payload    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    pos        bigint
);
ALTER SEQUENCE loyalty.outbox_id_seq OWNED BY loyalty.outbox.id;
ALTER SEQUENCE loyalty.outbox_pos_seq OWNED BY loyalty.outbox.pos;
CREATE UNIQUE INDEX outbox_pos ON loyalty.outbox (pos);
CREATE INDEX outbox_unpositioned ON loyalty.outbox (id) WHERE pos IS NULL;
COMMENT ON TABLE loyalty.outbox IS
    'events (member_enrolled, tier_changed, voucher_issued, voucher_used, points_expiring, ...) written with the change';

-- A consumer's cursor: every event up to acked_pos is acknowledged.
CREATE TABLE loyalty.outbox_consumer (
    name       text PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 512),
    acked_pos  bigint NOT NULL DEFAULT 0,
    acked_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Expiry reminders: the horizons (days before a lot expires) a program sends
-- points_expiring at, and for each open lot the smallest horizon already sent.
ALTER TABLE loyalty.program ADD COLUMN expiry_reminder_days integer[] NOT NULL DEFAULT '{}';
CREATE TABLE loyalty.expiry_reminder (
    member_id bigint NOT NULL,
    lot_id    bigint NOT NULL,
    days      integer NOT NULL,
    sent_at   timestamptz NOT NULL,    -- the business time of the maintenance run
    PRIMARY KEY (member_id, lot_id)
);

SELECT pg_catalog.pg_extension_config_dump('loyalty.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.outbox_pos_seq', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.outbox_consumer', '');
SELECT pg_catalog.pg_extension_config_dump('loyalty.expiry_reminder', '');

-- Positions the committed events that have none, in id order (at most 10000 per
-- call). Only one transaction positions at a time: the others skip it and read
-- what is already positioned. Under REPEATABLE READ or SERIALIZABLE the snapshot
-- is older than the lock, so those read only.
CREATE FUNCTION loyalty.position_events() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock('loyalty.outbox'::regclass::oid::bigint) THEN
        RETURN 0;
    END IF;
    -- a new statement: its snapshot sees every positioning that committed before the lock
    WITH todo AS (
        SELECT t.id, nextval('loyalty.outbox_pos_seq') AS pos
          FROM (SELECT o.id FROM loyalty.outbox o WHERE o.pos IS NULL ORDER BY o.id LIMIT 10000) t
         ORDER BY t.id
    )
    UPDATE loyalty.outbox o SET pos = todo.pos FROM todo WHERE o.id = todo.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION loyalty.position_events() IS
    'give committed events their delivery position (next_events calls it)';

CREATE FUNCTION loyalty.next_events(consumer text, max_events integer DEFAULT 100)
    RETURNS TABLE (id bigint, program_id bigint, member_id bigint, kind text, at timestamptz,
                   payload jsonb, created_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cursor_pos bigint;
BEGIN
    IF consumer IS NULL OR max_events IS NULL THEN
        RAISE EXCEPTION 'consumer and max_events must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF consumer = '' OR octet_length(consumer) > 512 THEN
        RAISE EXCEPTION 'consumer must be 1 to 512 bytes long' USING ERRCODE = 'LY037';
    END IF;
    IF max_events NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'max_events must be between 1 and 10000' USING ERRCODE = 'LY038',
            DETAIL = format('The value given was %s.', max_events);
    END IF;
    PERFORM loyalty.position_events();
    INSERT INTO loyalty.outbox_consumer (name) VALUES (next_events.consumer) ON CONFLICT DO NOTHING;
    SELECT c.acked_pos INTO cursor_pos FROM loyalty.outbox_consumer c WHERE c.name = next_events.consumer;
    RETURN QUERY
        SELECT o.id, o.program_id, o.member_id, o.kind, o.at, o.payload, o.created_at
          FROM loyalty.outbox o
         WHERE o.pos > cursor_pos
           -- a tenant's consumer sees its programs' events only (98_security.sql)
           AND EXISTS (SELECT FROM loyalty.program p
                        WHERE p.id = o.program_id AND loyalty.caller_may_use(p.tenant))
         ORDER BY o.pos
         LIMIT max_events;
END
$$;
COMMENT ON FUNCTION loyalty.next_events(text, integer) IS
    'the next events after the consumer''s acknowledged cursor, in commit order; the same again until ack_events';

CREATE FUNCTION loyalty.ack_events(consumer text, up_to bigint)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_pos bigint;
    new_pos bigint;
    n bigint := 0;
BEGIN
    IF consumer IS NULL OR up_to IS NULL THEN
        RAISE EXCEPTION 'consumer and up_to must not be null' USING ERRCODE = 'LY034';
    END IF;
    SELECT o.pos INTO new_pos FROM loyalty.outbox o
     WHERE o.id = up_to
       AND EXISTS (SELECT FROM loyalty.program p WHERE p.id = o.program_id AND loyalty.caller_may_use(p.tenant));
    IF new_pos IS NULL THEN
        RAISE EXCEPTION 'event % has not been delivered (or was purged)', up_to USING ERRCODE = 'LY160',
            HINT = 'Acknowledge the id of an event next_events returned.';
    END IF;
    -- the row lock orders concurrent acks of one consumer; the cursor never moves back
    SELECT c.acked_pos INTO old_pos FROM loyalty.outbox_consumer c WHERE c.name = ack_events.consumer FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', consumer USING ERRCODE = 'LY161',
            HINT = 'A consumer is created by its first call to next_events.';
    END IF;
    IF new_pos > old_pos THEN
        UPDATE loyalty.outbox_consumer c SET acked_pos = new_pos, acked_at = now()
         WHERE c.name = ack_events.consumer;
        SELECT count(*) INTO n FROM loyalty.outbox o WHERE o.pos > old_pos AND o.pos <= new_pos;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION loyalty.ack_events(text, bigint) IS
    'acknowledge every event up to and including event up_to (as ordered by next_events); returns how many were new';

CREATE FUNCTION loyalty.purge_events(before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    safe bigint;
    n bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF EXISTS (SELECT FROM loyalty.outbox_consumer) THEN
        -- acknowledged by every consumer (acks only move cursors forward: an older min is safe)
        SELECT min(c.acked_pos) INTO safe FROM loyalty.outbox_consumer c;
        DELETE FROM loyalty.outbox o WHERE o.pos <= safe AND o.created_at < before
           AND EXISTS (SELECT FROM loyalty.program p WHERE p.id = o.program_id AND loyalty.caller_may_use(p.tenant));
    ELSE
        DELETE FROM loyalty.outbox o WHERE o.created_at < before
           AND EXISTS (SELECT FROM loyalty.program p WHERE p.id = o.program_id AND loyalty.caller_may_use(p.tenant));
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- reminders of lots that are closed can never be sent again
    DELETE FROM loyalty.expiry_reminder r
     USING loyalty.lot l
     WHERE l.member_id = r.member_id AND l.id = r.lot_id AND l.state = 'x' AND r.sent_at < before;
    RETURN n;
END
$$;
COMMENT ON FUNCTION loyalty.purge_events(timestamptz) IS
    'delete events created before `before` that every consumer has acknowledged (all of them if there is no consumer)';

CREATE FUNCTION loyalty.set_expiry_reminders(program text, days integer[])
    RETURNS integer[]
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    normal integer[];
BEGIN
    IF program IS NULL OR days IS NULL THEN
        RAISE EXCEPTION 'program and days must not be null' USING ERRCODE = 'LY034';
    END IF;
    IF array_position(days, NULL) IS NOT NULL OR cardinality(days) > 10
       OR EXISTS (SELECT FROM unnest(days) AS d WHERE d NOT BETWEEN 1 AND 3650) THEN
        RAISE EXCEPTION 'expiry reminder days must be at most 10 numbers from 1 to 3650'
            USING ERRCODE = 'LY162', DETAIL = format('The value given was %s.', days);
    END IF;
    SELECT coalesce(array_agg(DISTINCT d ORDER BY d DESC), '{}') INTO normal FROM unnest(days) AS d;
    UPDATE loyalty.program p SET expiry_reminder_days = normal
     WHERE p.code = set_expiry_reminders.program AND loyalty.caller_may_use(p.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'program "%" does not exist', program USING ERRCODE = 'LY001';
    END IF;
    RETURN normal;
END
$$;
COMMENT ON FUNCTION loyalty.set_expiry_reminders(text, integer[]) IS
    'send points_expiring events this many days before each lot expires (empty: none)';

-- Consumers need EXECUTE on next_events and ack_events only (SECURITY DEFINER: they
-- position events and move cursors, which no role should do by hand); grant them.
REVOKE EXECUTE ON FUNCTION loyalty.position_events(),
                           loyalty.next_events(text, integer),
                           loyalty.ack_events(text, bigint),
                           loyalty.purge_events(timestamptz)
    FROM PUBLIC;
