-- Operators' dashboards: each dead-lettered record (DLQ topic, partition, offset) is replayed
-- at most once by accident; who replayed it and why is also in audit_log ("dlq.replay").
-- depends: 0009_console_media

CREATE TABLE IF NOT EXISTS dlq_replays (
    topic          text NOT NULL,
    partition      integer NOT NULL,
    "offset"       bigint NOT NULL,
    original_topic text NOT NULL,
    event_id       text,
    replayed_by    bigint REFERENCES accounts (id),
    reason         text NOT NULL,
    replayed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
