-- One row per application in the database that holds its data: whether writes may still land there, how many
-- rows it stores, and what its writes spent of this minute's budget. Every write batch starts by updating this
-- row (src/db/app-storage.ts), so the checks below run in the same transaction as the write, whatever any
-- isolate's credential cache believes; a refused check aborts the whole batch.
CREATE TABLE app_storage (
  app_id         TEXT PRIMARY KEY,
  -- Set in the same transaction that accepts the application's deletion: from then on every write is refused.
  deleted_at     TEXT,
  -- Registrations + learner tags + registration tags, kept in step by every statement that adds or removes them.
  stored_rows    INTEGER NOT NULL DEFAULT 0,
  -- The quota and budget in force (configuration: APP_ROW_QUOTA, APP_WRITE_BUDGET), written by each write.
  row_quota      INTEGER NOT NULL DEFAULT 0,
  write_budget   INTEGER NOT NULL DEFAULT 0,
  -- The minute (unix time / 60) the spending below belongs to, and the rows the application's writes may
  -- have touched in it: a 1000 ids x 100 tags batch spends 100 000, a single-tag PUT 1.
  budget_minute  INTEGER NOT NULL DEFAULT 0,
  budget_spent   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Nothing is written into an application after its deletion was accepted.
CREATE TRIGGER app_storage_refuse_deleted BEFORE UPDATE OF budget_spent ON app_storage
WHEN OLD.deleted_at IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'application_deleted');
END;

-- A write may not spend more than the budget of the current minute.
CREATE TRIGGER app_storage_refuse_over_budget BEFORE UPDATE OF budget_spent ON app_storage
WHEN NEW.budget_spent > NEW.write_budget
BEGIN
  SELECT RAISE(ABORT, 'write_budget_exceeded');
END;

-- A write may not take the stored rows past the quota; removing rows is always allowed, even over a quota that
-- was lowered since.
CREATE TRIGGER app_storage_refuse_over_quota BEFORE UPDATE OF stored_rows ON app_storage
WHEN NEW.stored_rows > OLD.stored_rows AND NEW.stored_rows > NEW.row_quota
BEGIN
  SELECT RAISE(ABORT, 'row_quota_exceeded');
END;

INSERT INTO app_storage (app_id, deleted_at, stored_rows)
SELECT a.id, a.deleted_at,
  (SELECT count(*) FROM registrations r WHERE r.app_id = a.id)
  + (SELECT count(*) FROM learner_tags t WHERE t.app_id = a.id)
  + (SELECT count(*) FROM registration_tags t WHERE t.app_id = a.id)
FROM applications a;

-- When a worker or the sweeper last attended to an unfinished job, and how many times the sweeper re-sent its
-- message. NULL touched_at: the message could not be sent when the job was accepted; the next sweep sends it.
ALTER TABLE jobs ADD COLUMN touched_at TEXT;
ALTER TABLE jobs ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET touched_at = coalesce(started_at, created_at) WHERE status IN ('queued', 'running');
-- Application deletions are never failed from this version on (the sweeper sends them again until the data is
-- gone): one that an earlier version failed is resumed, for the next sweep to send.
UPDATE jobs SET status = CASE WHEN cursor = 0 THEN 'queued' ELSE 'running' END, completed_at = NULL, touched_at = NULL
WHERE type = 'deleteApplication' AND status = 'failed';
-- The sweeper's scan: unfinished jobs by when they were last attended to (a small index: finished jobs leave it).
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
