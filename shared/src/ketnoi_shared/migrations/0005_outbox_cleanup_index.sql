-- The relay removes published outbox rows after a retention period: index what it scans.
-- depends: 0004_notifier

CREATE INDEX IF NOT EXISTS outbox_published_at ON outbox (published_at)
    WHERE published_at IS NOT NULL;

-- Inbox claims older than the longest topic retention are removed the same way.
CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox (processed_at);
