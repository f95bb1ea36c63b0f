-- Privacy beyond erasure (SPEC §12) in the control database: realm-wide exports as realm jobs, the audit trail, and
-- each application's retention policy.

-- 1. Realm jobs, rebuilt so that a realm-wide export (type exportLearnerData, app_id "") may be recorded. As on the
-- shards (shard 0010), the CHECK on type is not carried over: the service validates every job's type itself.
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
CREATE INDEX jobs_by_app ON jobs (app_id, type, status);
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_events_due ON jobs (notify_status, notify_due_at) WHERE notify_status IN ('new', 'pending');
CREATE INDEX jobs_events_new_by_app ON jobs (app_id) WHERE notify_status = 'new';
CREATE INDEX jobs_finished_by_completion ON jobs (completed_at) WHERE status IN ('completed', 'failed');
-- A realm-wide export lists the realm jobs that named its learner (by the realm-wide HMAC).
CREATE INDEX jobs_by_learner ON jobs (learner_hash, id) WHERE learner_hash IS NOT NULL;
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

CREATE TRIGGER jobs_event AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('completed', 'failed') AND OLD.status IN ('queued', 'running') AND NEW.parent_id IS NULL
BEGIN
  UPDATE jobs SET event_id = 'evt_' || lower(hex(randomblob(16))),
    event_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    notify_status = 'new', notify_attempts = 0, notify_last_status = NULL, notify_last_error = NULL,
    notify_due_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
  WHERE id = NEW.id;
END;

-- 2. The audit trail (SPEC §12): one hash chain for the realm. An entry is appended in the same transaction as the
-- action it records where that action is written here (src/db/audit.ts), its seq the head's + 1 and its time never
-- before the head's, both computed by the INSERT itself: D1 runs one transaction at a time, so two actions at once
-- get consecutive entries and the chain cannot fork. D1's SQL has no hash function, so prev_hash and hash are
-- filled in afterwards ("sealed"), in seq order, by whoever reads the trail next or by the next sweep: each is
-- SHA-256(prev_hash || canonical entry), a pure function of the entries before it, so concurrent sealers write the
-- same values. Entries hold ids and HMACs, never personal data.
CREATE TABLE audit_log (
  seq         INTEGER PRIMARY KEY,
  at          TEXT NOT NULL,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  -- Canonical JSON of the entry's target ids (src/receipts.ts canonicalJson), exactly as hashed.
  target      TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  prev_hash   TEXT,
  hash        TEXT
);
-- GET /appManagement/audit?action=: an action's entries in seq order.
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
-- GET /appManagement/audit?since=: the first entry at or after a time (times never decrease along seq).
CREATE INDEX audit_log_by_at ON audit_log (at);
-- Sealing reads the entries still without a hash, in seq order.
CREATE INDEX audit_log_unsealed ON audit_log (seq) WHERE hash IS NULL;

-- Sealed entries are never changed: a statement that would rewrite one aborts. (This guards the service's own code;
-- what proves the chain unaltered to an auditor is the signed heads it keeps: README, "Audit trail".)
CREATE TRIGGER audit_log_sealed_entries_stay BEFORE UPDATE ON audit_log
WHEN OLD.hash IS NOT NULL OR NEW.seq IS NOT OLD.seq OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
  OR NEW.action IS NOT OLD.action OR NEW.target IS NOT OLD.target OR NEW.request_id IS NOT OLD.request_id
BEGIN
  SELECT RAISE(ABORT, 'audit_entry_sealed');
END;

-- 3. Each application's retention policy (SPEC §12): learners with no write for learner_inactive_days are erased by
-- the sweeper. No row: no policy (the default). Deleted with its application (markApplicationDeleted).
CREATE TABLE retention_policies (
  app_id                 TEXT PRIMARY KEY,
  learner_inactive_days  INTEGER NOT NULL CHECK (learner_inactive_days BETWEEN 1 AND 36500),
  created_at             TEXT NOT NULL,
  updated_at             TEXT NOT NULL
) WITHOUT ROWID;
