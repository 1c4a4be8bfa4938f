-- Console part 2: escalations raised once per case and kind (an unanswered emergency, a case
-- about to leave Zalo's reply window), visible to the units that see the case.
-- depends: 0009_console_media

CREATE TABLE IF NOT EXISTS escalations (
    case_id         uuid NOT NULL REFERENCES cases (id),
    kind            text NOT NULL,          -- emergency_unanswered | reply_window_closing
    raised_at       timestamptz NOT NULL DEFAULT now(),
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    seen_by         bigint REFERENCES accounts (id),
    seen_at         timestamptz,
    PRIMARY KEY (case_id, kind)
);
CREATE INDEX IF NOT EXISTS escalations_open ON escalations (raised_at DESC) WHERE seen_at IS NULL;

ALTER TABLE escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE escalations FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON escalations;
CREATE POLICY service_all ON escalations TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON escalations;
CREATE POLICY console_units ON escalations TO ketnoi_console
    USING (ketnoi_case_visible(case_id)) WITH CHECK (ketnoi_case_visible(case_id));
GRANT SELECT ON escalations TO ketnoi_console;
GRANT UPDATE (seen_by, seen_at) ON escalations TO ketnoi_console;

CREATE OR REPLACE FUNCTION escalations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ketnoi_cases', NEW.case_id::text);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS escalations_notify ON escalations;
CREATE TRIGGER escalations_notify AFTER INSERT ON escalations
    FOR EACH ROW EXECUTE FUNCTION escalations_notify();

CREATE INDEX IF NOT EXISTS cases_opened_at ON cases (opened_at DESC);
CREATE INDEX IF NOT EXISTS case_actions_reply ON case_actions (case_id, at) WHERE kind = 'reply';
