-- Privacy beyond erasure (SPEC §12): subject-access exports run as jobs of a new type, and each learner's last write
-- is kept so that a retention policy can find learners inactive for too long without reading every registration.

-- 1. The jobs table, rebuilt so that exportLearnerData jobs may be recorded. SQLite cannot change a CHECK; this time
-- the CHECK on type is not carried over: the service validates the type of every job it writes and reads
-- (src/db/jobs.ts JOB_TYPES, the queue contract's schema), and a type added later then needs no rebuild. Rows,
-- indexes, the move journal's triggers (as upserts, shard 0007) and the event trigger (shard 0008) are kept as they
-- were.
CREATE TABLE jobs_rebuilt (
  id                      TEXT PRIMARY KEY,
  seq                     INTEGER NOT NULL,
  app_id                  TEXT NOT NULL,
  type                    TEXT NOT NULL,
  status                  TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  learner_id              TEXT,
  learner_hash            TEXT,
  payload                 TEXT,
  requested_by            TEXT,
  cursor                  INTEGER NOT NULL DEFAULT 0,
  position                INTEGER NOT NULL DEFAULT 0,
  lease                   TEXT,
  registrations_affected  INTEGER NOT NULL DEFAULT 0,
  tags_removed            INTEGER NOT NULL DEFAULT 0,
  error                   TEXT,
  created_at              TEXT NOT NULL,
  started_at              TEXT,
  completed_at            TEXT,
  touched_at              TEXT,
  resends                 INTEGER NOT NULL DEFAULT 0,
  parent_id               TEXT,
  event_id                TEXT,
  event_at                TEXT,
  notify_status           TEXT CHECK (notify_status IN ('new', 'pending', 'delivered', 'failed')),
  notify_attempts         INTEGER NOT NULL DEFAULT 0,
  notify_last_status      INTEGER,
  notify_last_error       TEXT,
  notify_due_at           TEXT
);
INSERT INTO jobs_rebuilt (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease,
  registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends, parent_id, event_id, event_at,
  notify_status, notify_attempts, notify_last_status, notify_last_error, notify_due_at)
SELECT id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease,
  registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends, parent_id, event_id, event_at,
  notify_status, notify_attempts, notify_last_status, notify_last_error, notify_due_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_rebuilt RENAME TO jobs;
CREATE INDEX jobs_by_learner ON jobs (app_id, learner_hash, type, status);
CREATE INDEX jobs_by_app ON jobs (app_id, id);
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_parent ON jobs (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_events_due ON jobs (notify_status, notify_due_at) WHERE notify_status IN ('new', 'pending');
CREATE INDEX jobs_events_new_by_app ON jobs (app_id) WHERE notify_status = 'new';
CREATE INDEX jobs_finished_by_completion ON jobs (completed_at) WHERE status IN ('completed', 'failed');
-- An export lists the jobs that named its learner, chunk by chunk in id order: one range of this index per chunk.
CREATE INDEX jobs_by_learner_id ON jobs (app_id, learner_hash, id) WHERE learner_hash IS NOT NULL;
-- Finished exports whose objects are still in R2, by completion: the sweeper deletes those past their retention
-- reading only them (src/db/exports.ts exportsToExpire).
CREATE INDEX jobs_exports_unpurged ON jobs (completed_at)
  WHERE type = 'exportLearnerData' AND status IN ('completed', 'failed') AND json_extract(payload, '$.purged') IS NULL;
-- The job lists' and usage's indexes (shard 0009, control 0008), made again on the rebuilt table: dropping the old
-- one dropped them.
CREATE INDEX jobs_listed_by_app ON jobs (app_id, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_status ON jobs (app_id, status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_type ON jobs (app_id, type, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed ON jobs (created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_status ON jobs (status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_type ON jobs (type, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_finished_by_app ON jobs (app_id, completed_at, status, notify_status, parent_id)
  WHERE parent_id IS NULL AND status IN ('completed', 'failed');

CREATE TRIGGER jobs_journal_insert AFTER INSERT ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER jobs_journal_update AFTER UPDATE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER jobs_journal_delete AFTER DELETE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'job', OLD.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER jobs_event AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('completed', 'failed') AND OLD.status IN ('queued', 'running') AND NEW.parent_id IS NULL
BEGIN
  UPDATE jobs SET event_id = 'evt_' || lower(hex(randomblob(16))),
    event_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    notify_status = CASE WHEN coalesce((SELECT webhook_hint FROM app_storage WHERE app_id = NEW.app_id), 1) = 1 THEN 'new' END,
    notify_attempts = 0, notify_last_status = NULL, notify_last_error = NULL,
    notify_due_at = CASE WHEN coalesce((SELECT webhook_hint FROM app_storage WHERE app_id = NEW.app_id), 1) = 1
      THEN coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) END
  WHERE id = NEW.id;
END;

-- 2. Each learner's last write (SPEC §12, retention): one row per learner that exists, written in the same
-- transaction as every write to the learner (a registration created or deleted, learner or registration tags, an
-- update accepted), and deleted with the learner (its last registration deleted, its erasure, its application's
-- deletion). The retention sweep reads the application's range of learner_activity_by_last_write up to the cutoff:
-- what it reads follows the learners it finds, not the size of the application.
CREATE TABLE learner_activity (
  app_id         TEXT NOT NULL,
  learner_id     TEXT NOT NULL,
  last_write_at  TEXT NOT NULL,
  PRIMARY KEY (app_id, learner_id)
) WITHOUT ROWID;
CREATE INDEX learner_activity_by_last_write ON learner_activity (app_id, last_write_at);

-- Learners that exist already: their newest registration's last change stands for their last write.
INSERT INTO learner_activity (app_id, learner_id, last_write_at)
SELECT app_id, learner_id, max(updated_at) FROM registrations GROUP BY app_id, learner_id;

-- It moves with its application, journaled under the learner's key as the learner's tags are (src/db/move.ts).
CREATE TRIGGER learner_activity_journal_insert AFTER INSERT ON learner_activity
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER learner_activity_journal_update AFTER UPDATE ON learner_activity
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER learner_activity_journal_delete AFTER DELETE ON learner_activity
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'learner', OLD.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;
