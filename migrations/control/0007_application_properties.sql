-- SCORM Cloud's application properties (UpdateApplicationSchema, ApplicationInfoSchema).
-- allow_delete: SCORM Cloud's guard against deleting an application by mistake; while it is 0, deletion is
-- refused (409) until it is set back to 1. Applications default to deletable, as they were before.
ALTER TABLE applications ADD COLUMN allow_delete INTEGER NOT NULL DEFAULT 1 CHECK (allow_delete IN (0, 1));
-- updated_at: the application's updateDate (a change of name or allowDelete); its creation date until then.
ALTER TABLE applications ADD COLUMN updated_at TEXT;
UPDATE applications SET updated_at = created_at;

-- GET /appManagement/applicationList pages live applications by creation or update date (orderBy), a since/until
-- bound on the same date being a range of the same index.
CREATE INDEX applications_by_created ON applications (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_updated ON applications (updated_at, id) WHERE deleted_at IS NULL;
