-- Console: accounts, sessions, audit, officers' actions on cases, and need-to-know enforced by
-- PostgreSQL itself (row-level security) for the console's application role.
-- depends: 0005_outbox_cleanup_index

-- Accounts of officers, unit leads, province supervisors and administrators.
CREATE TABLE IF NOT EXISTS accounts (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('officer', 'lead', 'supervisor', 'admin')),
    unit_id       text NOT NULL REFERENCES units (id),
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions: the cookie carries a signed random id; disabling an account or
-- resetting its password ends its sessions.
CREATE TABLE IF NOT EXISTS console_sessions (
    id          text PRIMARY KEY,          -- SHA-256 of the random session token
    account_id  bigint NOT NULL REFERENCES accounts (id),
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_account ON console_sessions (account_id);

-- Failed logins per username and per client address, for throttling.
CREATE TABLE IF NOT EXISTS login_failures (
    key        text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, failed_at);

-- Append-only audit log: logins, case views, attachment opens, identity reveals, actions.
CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    account_id  bigint REFERENCES accounts (id),
    username    text,
    action      text NOT NULL,
    case_id     uuid,
    unit_id     text,
    reason      text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    client      text
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC);
CREATE INDEX IF NOT EXISTS audit_log_case ON audit_log (case_id, at DESC);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- What officers did on a case: notes, replies, status changes, assignment, transfer,
-- reclassification. Replies carry the notify request id their delivery result refers to.
CREATE TABLE IF NOT EXISTS case_actions (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id),
    at          timestamptz NOT NULL DEFAULT now(),
    account_id  bigint REFERENCES accounts (id),
    kind        text NOT NULL,
    body        text,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text
);
CREATE INDEX IF NOT EXISTS case_actions_case ON case_actions (case_id, at);
CREATE INDEX IF NOT EXISTS case_actions_request ON case_actions (request_id)
    WHERE request_id IS NOT NULL;

-- Delivery results of messages sent to citizens (from notify.results.v1), per request.
CREATE TABLE IF NOT EXISTS delivery_results (
    request_id   text PRIMARY KEY,
    case_id      uuid,
    kind         text NOT NULL,
    status       text NOT NULL,
    error_kind   text,
    error_code   integer,
    attempt      integer NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_results_case ON delivery_results (case_id);

-- Which officer has read a case up to which message.
CREATE TABLE IF NOT EXISTS case_reads (
    account_id  bigint NOT NULL REFERENCES accounts (id),
    case_id     uuid NOT NULL REFERENCES cases (id),
    read_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, case_id)
);

ALTER TABLE cases ADD COLUMN IF NOT EXISTS assignee_id bigint REFERENCES accounts (id);
-- Set when an officer transferred the case: triage then keeps the owner it was given.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS owner_set_by text;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS status_reason text;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS search_text text NOT NULL DEFAULT '';

-- What a citizen chose to tell the OA (user_submit_info), sealed; shown only by an audited
-- reveal.
ALTER TABLE citizen_contacts ADD COLUMN IF NOT EXISTS sealed_name text;
ALTER TABLE citizen_contacts ADD COLUMN IF NOT EXISTS sealed_phone text;

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS cases_search_text ON cases USING gin (search_text gin_trgm_ops);

-- Live updates: every change of a case wakes the console's listeners (payload: case id).
CREATE OR REPLACE FUNCTION cases_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ketnoi_cases', NEW.id::text);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS cases_notify ON cases;
CREATE TRIGGER cases_notify AFTER INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION cases_notify();

-- ---------------------------------------------------------------------------------------
-- Need-to-know. The console runs every case query as ketnoi_console (SET LOCAL ROLE), a role
-- that owns nothing, cannot log in by default and has no BYPASSRLS, with the units it may see
-- set per transaction: set_config('ketnoi.units', 'unit-a,unit-b', true). No setting, no rows.
-- The services (triage, notifier, media, news) keep full access through ketnoi_service, which
-- the migrating role is a member of.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ketnoi_console') THEN
        CREATE ROLE ketnoi_console NOLOGIN NOBYPASSRLS NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ketnoi_service') THEN
        CREATE ROLE ketnoi_service NOLOGIN;
    END IF;
END $$;
GRANT ketnoi_service TO CURRENT_USER;
GRANT ketnoi_console TO CURRENT_USER;

CREATE OR REPLACE FUNCTION ketnoi_visible_units() RETURNS text[]
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        string_to_array(nullif(current_setting('ketnoi.units', true), ''), ','),
        '{}'::text[])
$$;

CREATE OR REPLACE FUNCTION ketnoi_case_visible(case_id uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM cases c WHERE c.id = case_id
           AND (c.owner_unit_id = ANY (ketnoi_visible_units())
                OR c.info_unit_ids && ketnoi_visible_units()))
$$;

ALTER TABLE cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE cases FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON cases;
CREATE POLICY service_all ON cases TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON cases;
CREATE POLICY console_units ON cases TO ketnoi_console
    USING (owner_unit_id = ANY (ketnoi_visible_units())
           OR info_unit_ids && ketnoi_visible_units())
    -- An update (status, transfer) may move the case to a unit the officer cannot see.
    WITH CHECK (true);

ALTER TABLE case_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_messages FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON case_messages;
CREATE POLICY service_all ON case_messages TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON case_messages;
CREATE POLICY console_units ON case_messages TO ketnoi_console
    USING (ketnoi_case_visible(case_id));

ALTER TABLE triage_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE triage_decisions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON triage_decisions;
CREATE POLICY service_all ON triage_decisions TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON triage_decisions;
CREATE POLICY console_units ON triage_decisions TO ketnoi_console
    USING (ketnoi_case_visible(case_id)) WITH CHECK (ketnoi_case_visible(case_id));

ALTER TABLE case_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_actions FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON case_actions;
CREATE POLICY service_all ON case_actions TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON case_actions;
CREATE POLICY console_units ON case_actions TO ketnoi_console
    USING (ketnoi_case_visible(case_id)) WITH CHECK (ketnoi_case_visible(case_id));

ALTER TABLE delivery_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_results FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON delivery_results;
CREATE POLICY service_all ON delivery_results TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON delivery_results;
CREATE POLICY console_units ON delivery_results TO ketnoi_console
    USING (ketnoi_case_visible(case_id));

-- A citizen's contact is visible only through a case of theirs the officer may see.
ALTER TABLE citizen_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE citizen_contacts FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON citizen_contacts;
CREATE POLICY service_all ON citizen_contacts TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON citizen_contacts;
CREATE POLICY console_units ON citizen_contacts TO ketnoi_console
    USING (EXISTS (SELECT 1 FROM cases c
                   WHERE c.oa_id = citizen_contacts.oa_id
                     AND c.citizen_pseudonym = citizen_contacts.citizen_pseudonym));

ALTER TABLE case_reads ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_reads FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON case_reads;
CREATE POLICY service_all ON case_reads TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON case_reads;
CREATE POLICY console_units ON case_reads TO ketnoi_console
    USING (ketnoi_case_visible(case_id)) WITH CHECK (ketnoi_case_visible(case_id));

-- What the console role may touch at all (tables without a grant are out of reach).
GRANT USAGE ON SCHEMA public TO ketnoi_console;
GRANT SELECT ON units, cases, case_messages, triage_decisions,
    citizen_contacts, delivery_results, case_actions, case_reads TO ketnoi_console;
GRANT UPDATE (status, status_reason, assignee_id, info_unit_ids, category, subcategory, urgency, decided_by, explanation, confidence, version, closed_at,
    lane) ON cases TO ketnoi_console;
GRANT INSERT ON case_actions, triage_decisions, case_reads, outbox TO ketnoi_console;
-- ON CONFLICT (topic, event_id) DO NOTHING reads the arbiter columns.
GRANT SELECT (topic, event_id) ON outbox TO ketnoi_console;
GRANT UPDATE (read_at) ON case_reads TO ketnoi_console;
GRANT SELECT (id, username, display_name, role, unit_id, disabled) ON accounts
    TO ketnoi_console;
GRANT INSERT ON audit_log TO ketnoi_console;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ketnoi_console;

-- A transfer moves a case out of the officer's sight, which row-level security rightly refuses
-- to a plain UPDATE (the new row must stay visible). This one function does it, after checking
-- that the case is owned by one of the caller's units.
CREATE OR REPLACE FUNCTION ketnoi_transfer_case(target uuid, new_owner text, by_whom text)
    RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    new_version integer;
BEGIN
    UPDATE cases SET owner_unit_id = new_owner, owner_set_by = by_whom, assignee_id = NULL,
                     version = version + 1
     WHERE id = target AND owner_unit_id = ANY (ketnoi_visible_units())
           AND EXISTS (SELECT 1 FROM units WHERE id = new_owner AND active_to IS NULL)
    RETURNING version INTO new_version;
    IF new_version IS NULL THEN
        RAISE EXCEPTION 'case % is not owned by a unit of the caller', target
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN new_version;
END $$;
REVOKE ALL ON FUNCTION ketnoi_transfer_case(uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ketnoi_transfer_case(uuid, text, text) TO ketnoi_console;
