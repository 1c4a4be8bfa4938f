-- Notifier: the OA tokens (sealed), the send ledger, the interaction window per citizen.
-- depends: 0003_triage

CREATE TABLE IF NOT EXISTS oa_tokens (
    oa_id             text PRIMARY KEY,
    sealed_access     text NOT NULL,
    sealed_refresh    text NOT NULL,
    access_expires_at timestamptz NOT NULL,
    refreshed_at      timestamptz NOT NULL DEFAULT now(),
    needs_reauth      boolean NOT NULL DEFAULT false,
    last_error        text
);

-- Each request is sent at most once: its state survives restarts and redelivery.
CREATE TABLE IF NOT EXISTS notify_ledger (
    request_id       text PRIMARY KEY,
    oa_id            text NOT NULL,
    status           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    zalo_message_ids text[] NOT NULL DEFAULT '{}',
    last_error_code  integer,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS interaction_window (
    oa_id               text NOT NULL,
    citizen_pseudonym   text NOT NULL,
    last_interaction_at timestamptz NOT NULL,
    PRIMARY KEY (oa_id, citizen_pseudonym)
);

-- Requests of OAs that need re-authorisation wait here (not lost, not dropped).
CREATE TABLE IF NOT EXISTS notify_parked (
    request_id text PRIMARY KEY,
    oa_id      text NOT NULL,
    request    jsonb NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now()
);

-- Calls to the Zalo API per app and minute, shared by every notifier replica
-- (Zalo allows 4,000 requests a minute per app).
CREATE TABLE IF NOT EXISTS zalo_rate (
    app_id text NOT NULL,
    minute timestamptz NOT NULL,
    calls  integer NOT NULL,
    PRIMARY KEY (app_id, minute)
);
