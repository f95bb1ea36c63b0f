-- Realm-wide erasure (SPEC §9): a realm job whose children are one erasure per application holding the learner,
-- each on its application's shard (the payload names them: application and job ids, with each learner HMAC).
-- SQLite cannot change a CHECK: the jobs table is rebuilt with the new type allowed (and parent_id, so a jobs row
-- has one shape in every database).
CREATE TABLE jobs_rebuilt (
  id                      TEXT PRIMARY KEY,
  seq                     INTEGER NOT NULL,
  app_id                  TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('moveApplication', 'deleteRealmLearnerData')),
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
  -- As on the shards (bulk erasures' children); unused here.
  parent_id               TEXT
);
INSERT INTO jobs_rebuilt (id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease, registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends) SELECT id, seq, app_id, type, status, learner_id, learner_hash, payload, requested_by, cursor, position, lease, registrations_affected, tags_removed, error, created_at, started_at, completed_at, touched_at, resends FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_rebuilt RENAME TO jobs;
CREATE INDEX jobs_by_app ON jobs (app_id, type, status);
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
