-- A bulk erasure's learners (SPEC §9), kept apart from its jobs row: each as [learner HMAC, erasure job id], in the
-- order the bulk erases them. A learner whose erasure was already pending when the bulk was asked joins that
-- erasure (its job id is listed) rather than starting a second; the others get a child erasure of the bulk's own
-- (jobs.parent_id). Written once, at acceptance: the bulk's row, which changes as it passes each learner, stays
-- small. Journaled as the job's key, so a move carries it with its job.
CREATE TABLE job_members (
  job_id   TEXT PRIMARY KEY,
  app_id   TEXT NOT NULL,
  members  TEXT NOT NULL
);
CREATE INDEX job_members_by_app ON job_members (app_id, job_id);

CREATE TRIGGER job_members_journal_insert AFTER INSERT ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'job', NEW.job_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'job' AND key = NEW.job_id), 0) + 1);
END;

CREATE TRIGGER job_members_journal_update AFTER UPDATE ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'job', NEW.job_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'job' AND key = NEW.job_id), 0) + 1);
END;

CREATE TRIGGER job_members_journal_delete AFTER DELETE ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'job', OLD.job_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'job' AND key = OLD.job_id), 0) + 1);
END;

-- Finished jobs are deleted once their retention has passed (the sweeper; JOB_RETENTION_DAYS, and
-- RECEIPT_RETENTION_DAYS for erasures, whose rows are their receipts): by completion time, finished ones only.
CREATE INDEX jobs_finished_by_completion ON jobs (completed_at) WHERE status IN ('completed', 'failed');
