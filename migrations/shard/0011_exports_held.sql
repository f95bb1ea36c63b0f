-- Each application may hold at most APP_EXPORT_LIMIT exports at once (src/config.ts; src/db/storage-schema.md,
-- "Exports (R2)"): those whose objects are, or will be, in R2 — queued, running, or completed with their document and
-- not yet deleted (cancelled, failed and purged ones hold nothing). Accepting an export counts them with this index,
-- reading at most the limit's worth of rows however many exports the application has had; the oldest completion says
-- when one goes.
CREATE INDEX jobs_exports_held ON jobs (app_id, completed_at)
  WHERE type = 'exportLearnerData' AND json_extract(payload, '$.purged') IS NULL
    AND (status IN ('queued', 'running') OR (status = 'completed' AND error IS NULL));
