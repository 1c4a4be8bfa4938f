-- News: feed sources and items, welcome messages, procedure answers, broadcasts to followers.
-- depends: 0006_media

-- Polling state of each configured source (conditional GET and per-source backoff).
CREATE TABLE IF NOT EXISTS news_sources (
    source_id      text PRIMARY KEY,
    url            text NOT NULL,
    etag           text,
    last_modified  text,
    failures       integer NOT NULL DEFAULT 0,
    next_poll_at   timestamptz NOT NULL DEFAULT now(),
    last_polled_at timestamptz,
    last_status    text,
    last_error     text
);

-- Items, deduplicated across sources by canonical URL and by normalised title.
CREATE TABLE IF NOT EXISTS news_items (
    item_id       text PRIMARY KEY,
    source_id     text NOT NULL,
    url           text NOT NULL,
    url_key       text NOT NULL UNIQUE,
    title         text NOT NULL,
    title_key     text NOT NULL,
    summary       text NOT NULL DEFAULT '',
    published_at  timestamptz,
    province_code text,
    tags          text[] NOT NULL DEFAULT '{}',
    fetched_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS news_items_title_key ON news_items (title_key);
CREATE INDEX IF NOT EXISTS news_items_latest
    ON news_items (province_code, (coalesce(published_at, fetched_at)) DESC);

-- Follow state per citizen and OA: the epoch grows with every new follow after an unfollow;
-- a welcome is sent once per epoch (welcome_sent's key), never again on redelivery.
CREATE TABLE IF NOT EXISTS news_follows (
    oa_id             text NOT NULL,
    citizen_pseudonym text NOT NULL,
    epoch             integer NOT NULL DEFAULT 1,
    following         boolean NOT NULL,
    ever_followed     boolean NOT NULL,
    changed_at        timestamptz NOT NULL,
    PRIMARY KEY (oa_id, citizen_pseudonym)
);
CREATE TABLE IF NOT EXISTS welcome_sent (
    oa_id             text NOT NULL,
    citizen_pseudonym text NOT NULL,
    follow_epoch      integer NOT NULL,
    trigger           text NOT NULL,
    sent_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (oa_id, citizen_pseudonym, follow_epoch)
);

-- Procedure questions the knowledge base could not answer with confidence: the officers'
-- console shows the top candidates next to the question.
CREATE TABLE IF NOT EXISTS procedure_candidates (
    id           bigserial PRIMARY KEY,
    case_id      uuid NOT NULL,
    case_version integer NOT NULL,
    question     text NOT NULL,
    candidates   jsonb NOT NULL,
    answered     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, case_version)
);
CREATE INDEX IF NOT EXISTS procedure_candidates_open
    ON procedure_candidates (created_at DESC) WHERE NOT answered;

-- Alerts to followers: one article per broadcast and OA, sent through the OA API.
CREATE TABLE IF NOT EXISTS broadcasts (
    id           uuid PRIMARY KEY,
    title        text NOT NULL,
    author       text NOT NULL,
    description  text NOT NULL,
    body         text NOT NULL,
    cover_url    text,
    item_id      text,
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS broadcast_targets (
    broadcast_id     uuid NOT NULL REFERENCES broadcasts (id),
    oa_id            text NOT NULL,
    status           text NOT NULL DEFAULT 'pending',  -- pending, sent, refused, failed
    not_before       timestamptz NOT NULL DEFAULT now(),
    article_token    text,
    article_id       text,
    zalo_message_id  text,
    recipients       integer,
    attempts         integer NOT NULL DEFAULT 0,
    reason           text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (broadcast_id, oa_id)
);
CREATE INDEX IF NOT EXISTS broadcast_targets_due
    ON broadcast_targets (not_before) WHERE status = 'pending';

-- Broadcasts each follower received per month (Zalo's caps: per package per month, one a day).
CREATE TABLE IF NOT EXISTS broadcast_counts (
    oa_id             text NOT NULL,
    citizen_pseudonym text NOT NULL,
    month             date NOT NULL,
    count             integer NOT NULL DEFAULT 0,
    last_on           date NOT NULL,
    PRIMARY KEY (oa_id, citizen_pseudonym, month)
);
