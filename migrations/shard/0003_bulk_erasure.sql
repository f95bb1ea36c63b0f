-- Bulk erasure (SPEC §9): one job covering up to 1000 learners, each erased by a child erasure job of its own
-- (`parent_id`), which the bulk job runs one after another and sums. SQLite cannot change a CHECK: the jobs
-- table is rebuilt with the new type allowed, its rows, indexes and move-journal triggers kept.
CREATE TABLE jobs_rebuilt (
  id                      TEXT PRIMARY KEY,
  seq                     INTEGER NOT NULL,
  app_id                  TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('updateLearnerInfo', 'deleteAllLearnerData', 'deleteApplication', 'deleteLearnersData')),
  status                  TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  learner_id              TEXT,
  learner_hash            TEXT,
  payload                 TEXT,
  requested_by            TEXT,
  -- Progress: chunks done (also the optimistic-concurrency version), the last registration pk visited,
  -- and the attempt that wrote the last chunk. A chunk's writes apply only under the lease its attempt took.
  cursor                  INTEGER NOT NULL DEFAULT 0,
  position                INTEGER NOT NULL DEFAULT 0,
  lease                   TEXT,
  registrations_affected  INTEGER NOT NULL DEFAULT 0,
  tags_removed            INTEGER NOT NULL DEFAULT 0,
  error                   TEXT,
  created_at              TEXT NOT NULL,
  started_at              TEXT,
  completed_at            TEXT,
  -- When a worker or the sweeper last attended to the unfinished job, and how many times the sweeper re-sent its
  -- message. NULL touched_at: the message could not be sent when the job was accepted; the next sweep sends it.
  touched_at              TEXT,
  resends                 INTEGER NOT NULL DEFAULT 0,
  -- A bulk erasure's learners are each an erasure job of their own, run one after another by it.
  parent_id               TEXT
);
INSERT INTO jobs_rebuilt (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease, registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends) SELECT id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease, registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_rebuilt RENAME TO jobs;
CREATE INDEX jobs_by_learner ON jobs (app_id, learner_hash, type, status);
CREATE INDEX jobs_by_app ON jobs (app_id, id);
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
-- A bulk erasure's children, in the order it runs them.
CREATE INDEX jobs_by_parent ON jobs (parent_id, id) WHERE parent_id IS NOT NULL;

CREATE TRIGGER jobs_journal_insert AFTER INSERT ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'job', NEW.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'job' AND key = NEW.id), 0) + 1);
END;

CREATE TRIGGER jobs_journal_update AFTER UPDATE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'job', NEW.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'job' AND key = NEW.id), 0) + 1);
END;

CREATE TRIGGER jobs_journal_delete AFTER DELETE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'job', OLD.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'job' AND key = OLD.id), 0) + 1);
END;
