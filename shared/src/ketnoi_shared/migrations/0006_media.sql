-- Citizens' attachments fetched by the media worker: the original sealed, a display copy.
-- depends: 0005_outbox_cleanup_index

CREATE TABLE IF NOT EXISTS media_objects (
    id                   bigserial PRIMARY KEY,
    event_id             text NOT NULL,
    msg_id               text,
    position             int NOT NULL,          -- index of the attachment in the message
    oa_id                text NOT NULL,
    citizen_pseudonym    text NOT NULL,
    kind                 text NOT NULL,         -- image | gif | video | audio | file
    status               text NOT NULL CHECK (status IN ('stored', 'rejected', 'failed')),
    error                text,                  -- short machine reason: too_large, expired, ...
    content_type         text,                  -- detected from the magic bytes, not the header
    file_name            text,
    size_bytes           bigint,
    sha256               text,                  -- hex SHA-256 of the original bytes
    sealed_original      bytea,                 -- AES-256-GCM, purpose 'media_original'
    display              bytea,                 -- what the console shows (metadata stripped)
    display_content_type text,
    fetched_at           timestamptz NOT NULL DEFAULT now(),
    attempts             int NOT NULL DEFAULT 0, -- download attempts (0: refused unasked)
    UNIQUE (event_id, position)
);

CREATE INDEX IF NOT EXISTS media_objects_msg_id ON media_objects (msg_id);
CREATE INDEX IF NOT EXISTS media_objects_citizen ON media_objects (oa_id, citizen_pseudonym);
CREATE INDEX IF NOT EXISTS media_objects_sha256 ON media_objects (sha256) WHERE sha256 IS NOT NULL;

-- Ciphertext and JPEG/MP4 do not compress: store them out of line without trying.
ALTER TABLE media_objects ALTER COLUMN sealed_original SET STORAGE EXTERNAL;
ALTER TABLE media_objects ALTER COLUMN display SET STORAGE EXTERNAL;
