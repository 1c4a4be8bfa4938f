-- Ingest: edge deduplication of Zalo deliveries (retries, duplicates), shared by replicas.
-- depends: 0001_foundation

CREATE TABLE IF NOT EXISTS ingest_dedup (
    event_id    text        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ingest_dedup_received_at ON ingest_dedup (received_at);
