-- End-to-end reconciliation (ketnoi_shared.reconcile): outbox rows whose effect is missing are
-- published again, at most a few times; ingest journals in the outbox the events it published
-- directly (already marked published), so a broker that loses them loses nothing for good.
-- depends: 0013_delivery_messages

ALTER TABLE outbox ADD COLUMN IF NOT EXISTS reconciled integer NOT NULL DEFAULT 0;

-- The reconciler looks at one topic's rows published in a window of time.
CREATE INDEX IF NOT EXISTS outbox_topic_published ON outbox (topic, published_at)
    WHERE published_at IS NOT NULL;

-- Wake the relays only when something is left to publish (journal rows are not).
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE published_at IS NULL) THEN
        PERFORM pg_notify('ketnoi_outbox', '');
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
