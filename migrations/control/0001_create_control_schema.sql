-- The control database (binding DB): the realm's applications, where each one's data lives, its credentials, the
-- realm's users, and realm jobs (moves between shards). Everything an application holds lives on one shard
-- (migrations/shard/).

-- Applications of this realm. deleted_at is set the moment deletion is requested: from then on the
-- application's credentials stop working, and a job on its shard removes its data in chunks.
-- Placement: data_region is the region asked for at creation ('default' or 'eu'), shard the binding of the shard
-- database that holds every row of the application's data (wrangler.toml [vars] SHARDS). A move changes shard.
CREATE TABLE applications (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  data_region  TEXT NOT NULL CHECK (data_region IN ('default', 'eu')),
  shard        TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  deleted_at   TEXT,
  -- Set once the deletion job is recorded on the shard: the sweeper finishes a deletion left half-requested.
  deletion_recorded_at TEXT
);
-- Placement counts live applications per shard: the new application goes to the open shard of its region with
-- the fewest.
CREATE INDEX applications_by_shard ON applications (shard) WHERE deleted_at IS NULL;
-- The sweeper's scan for deletions accepted here but not yet recorded on the shard.
CREATE INDEX applications_deletion_unrecorded ON applications (deleted_at)
  WHERE deleted_at IS NOT NULL AND deletion_recorded_at IS NULL;

-- API credentials. The secret is never stored: only its SHA-256 (hex).
CREATE TABLE credentials (
  id           TEXT PRIMARY KEY,
  app_id       TEXT NOT NULL REFERENCES applications (id),
  name         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,
  enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
-- Basic auth: lookup by (app id, hash of the presented secret).
CREATE UNIQUE INDEX credentials_by_app_secret ON credentials (app_id, secret_hash);

-- Realm users: who may request a GDPR erasure. email_key is the lower-cased address (emails compare
-- case-insensitively); email keeps the spelling it was created with.
CREATE TABLE realm_users (
  email_key   TEXT PRIMARY KEY,
  email       TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- Realm jobs: work on an application that spans databases (moving it between shards). Same shape as a shard's
-- jobs table, so one reader serves both; payload holds the move's plan and progress (shard names and keys, no
-- personal data).
CREATE TABLE job_clock (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL
);
INSERT INTO job_clock (id, seq) VALUES (1, 0);

CREATE TABLE jobs (
  id                      TEXT PRIMARY KEY,
  seq                     INTEGER NOT NULL,
  app_id                  TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('moveApplication')),
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
  resends                 INTEGER NOT NULL DEFAULT 0
);
-- One unfinished move per application; the sweeper's scan.
CREATE INDEX jobs_by_app ON jobs (app_id, type, status);
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');
