-- Triage: police unit directory, cases, their messages and decisions, followers, contacts.
-- depends: 0002_ingest_dedup

CREATE TABLE IF NOT EXISTS units (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    code        text,
    name        text NOT NULL,
    parent_id   text REFERENCES units (id) DEFERRABLE INITIALLY DEFERRED,
    aliases     text[] NOT NULL DEFAULT '{}',
    oa_ids      text[] NOT NULL DEFAULT '{}',
    active_from date,
    active_to   date,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS units_code ON units (code);
CREATE INDEX IF NOT EXISTS units_oa_ids ON units USING gin (oa_ids);

CREATE TABLE IF NOT EXISTS cases (
    id                uuid PRIMARY KEY,
    reference         text NOT NULL UNIQUE,
    oa_id             text NOT NULL,
    citizen_pseudonym text NOT NULL,
    status            text NOT NULL DEFAULT 'new',
    category          text NOT NULL,
    subcategory       text,
    urgency           text NOT NULL,
    confidence        real NOT NULL DEFAULT 0,
    explanation       text NOT NULL DEFAULT '',
    decided_by        text NOT NULL DEFAULT 'auto',
    owner_unit_id     text,
    info_unit_ids     text[] NOT NULL DEFAULT '{}',
    lane              text NOT NULL DEFAULT 'tips',
    location          jsonb,
    location_unknown  boolean NOT NULL DEFAULT true,
    outside_province  boolean NOT NULL DEFAULT false,
    message_count     integer NOT NULL DEFAULT 0,
    opened_at         timestamptz NOT NULL,
    last_message_at   timestamptz NOT NULL,
    closed_at         timestamptz,
    version           integer NOT NULL DEFAULT 1,
    ack_requested_at  timestamptz
);
CREATE INDEX IF NOT EXISTS cases_open_by_citizen
    ON cases (oa_id, citizen_pseudonym, last_message_at DESC)
    WHERE status NOT IN ('closed', 'rejected');
CREATE INDEX IF NOT EXISTS cases_owner ON cases (owner_unit_id, last_message_at DESC);

CREATE TABLE IF NOT EXISTS case_messages (
    id           bigserial PRIMARY KEY,
    case_id      uuid NOT NULL REFERENCES cases (id),
    event_id     text NOT NULL UNIQUE,
    msg_id       text,
    event_name   text NOT NULL,
    text         text,
    attachments  jsonb NOT NULL DEFAULT '[]'::jsonb,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS case_messages_case ON case_messages (case_id, occurred_at);

-- Every decision on a case; operator decisions (decided_by 'operator:<id>') are the labelled
-- feedback triage learns from and always win over automatic ones.
CREATE TABLE IF NOT EXISTS triage_decisions (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id),
    version     integer NOT NULL,
    decided_by  text NOT NULL,
    category    text NOT NULL,
    subcategory text,
    urgency     text NOT NULL,
    confidence  real,
    explanation text,
    location    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS triage_decisions_case ON triage_decisions (case_id, id);

-- Who follows which OA (pseudonyms only).
CREATE TABLE IF NOT EXISTS followers (
    oa_id             text NOT NULL,
    citizen_pseudonym text NOT NULL,
    following         boolean NOT NULL,
    source            text,
    changed_at        timestamptz NOT NULL,
    PRIMARY KEY (oa_id, citizen_pseudonym)
);

-- How to reach a citizen again (sealed), and when they last interacted with the OA.
CREATE TABLE IF NOT EXISTS citizen_contacts (
    oa_id                  text NOT NULL,
    citizen_pseudonym      text NOT NULL,
    sealed_user_id         text NOT NULL,
    anonymous              boolean NOT NULL DEFAULT false,
    sealed_conversation_id text,
    last_interaction_at    timestamptz NOT NULL,
    last_greeting_on       date,
    PRIMARY KEY (oa_id, citizen_pseudonym)
);
