-- The media worker records an event's attachments as pending work (with their URL sealed) in the
-- transaction that claims the event, and downloads them apart from the consumer, leased row by
-- row: a URL that hangs holds one download slot, never a partition (reliability finding 10).
-- depends: 0014_reconcile

ALTER TABLE media_objects DROP CONSTRAINT IF EXISTS media_objects_status_check;
ALTER TABLE media_objects ADD CONSTRAINT media_objects_status_check
    CHECK (status IN ('pending', 'stored', 'rejected', 'failed'));

-- AES-256-GCM, purpose 'media_url': Zalo's attachment URLs carry signed tokens. Cleared once
-- the attachment is settled. Not granted to the console.
ALTER TABLE media_objects ADD COLUMN IF NOT EXISTS sealed_url bytea;
-- A downloader holds a pending row until lease_until; a crashed one's rows are taken again
-- after it, at most a few times (leases).
ALTER TABLE media_objects ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE media_objects ADD COLUMN IF NOT EXISTS leases int NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS media_objects_pending ON media_objects (id) WHERE status = 'pending';
