-- Console: need-to-know on the media worker's attachments and on the news service's
-- candidate answers, and live updates when an attachment or a delivery result arrives.
-- depends: 0006_media 0007_news 0008_console

ALTER TABLE media_objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE media_objects FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON media_objects;
CREATE POLICY service_all ON media_objects TO ketnoi_service USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON media_objects;
-- Visible when the message it came with belongs to a case the officer may see.
CREATE POLICY console_units ON media_objects TO ketnoi_console
    USING (EXISTS (SELECT 1 FROM case_messages m WHERE m.event_id = media_objects.event_id));
GRANT SELECT (id, event_id, msg_id, position, kind, status, error, content_type, file_name,
              size_bytes, sha256, display, display_content_type, fetched_at)
    ON media_objects TO ketnoi_console;

ALTER TABLE procedure_candidates ENABLE ROW LEVEL SECURITY;
ALTER TABLE procedure_candidates FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_all ON procedure_candidates;
CREATE POLICY service_all ON procedure_candidates TO ketnoi_service
    USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS console_units ON procedure_candidates;
CREATE POLICY console_units ON procedure_candidates TO ketnoi_console
    USING (ketnoi_case_visible(case_id));
GRANT SELECT ON procedure_candidates TO ketnoi_console;

-- Wake the case page when an attachment is stored or a reply's delivery result arrives.
CREATE OR REPLACE FUNCTION media_objects_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner_case uuid;
BEGIN
    SELECT case_id INTO owner_case FROM case_messages WHERE event_id = NEW.event_id LIMIT 1;
    IF owner_case IS NOT NULL THEN
        PERFORM pg_notify('ketnoi_cases', owner_case::text);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS media_objects_notify ON media_objects;
CREATE TRIGGER media_objects_notify AFTER INSERT OR UPDATE ON media_objects
    FOR EACH ROW EXECUTE FUNCTION media_objects_notify();

CREATE OR REPLACE FUNCTION delivery_results_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.case_id IS NOT NULL THEN
        PERFORM pg_notify('ketnoi_cases', NEW.case_id::text);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS delivery_results_notify ON delivery_results;
CREATE TRIGGER delivery_results_notify AFTER INSERT OR UPDATE ON delivery_results
    FOR EACH ROW EXECUTE FUNCTION delivery_results_notify();
