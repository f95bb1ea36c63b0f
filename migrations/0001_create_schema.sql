-- Applications of this realm. deleted_at is set the moment deletion is requested: from then on the
-- application's credentials stop working, and a background job removes its data in chunks.
CREATE TABLE applications (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  deleted_at  TEXT
);

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

-- Registrations carry the learner: a learner exists while one of its application's registrations names it.
-- pk gives a stable, index-friendly order for paging.
CREATE TABLE registrations (
  pk                    INTEGER PRIMARY KEY,
  app_id                TEXT NOT NULL,
  id                    TEXT NOT NULL,
  course_id             TEXT NOT NULL,
  learner_id            TEXT NOT NULL,
  learner_email         TEXT,
  learner_first_name    TEXT,
  learner_last_name     TEXT,
  instance              INTEGER NOT NULL DEFAULT 0,
  xapi_registration_id  TEXT NOT NULL,
  -- Kept in step with registration_tags in the same transaction; the CHECK enforces the per-registration limit.
  tag_count             INTEGER NOT NULL DEFAULT 0 CONSTRAINT registration_tag_limit CHECK (tag_count BETWEEN 0 AND 1000),
  -- The jobs.seq of the update that last set each learner field (or the newest job when the registration was
  -- created): an update applies to a field only when it is newer, so updates land in acceptance order
  -- whatever order the queue delivers them in, and a redelivery changes nothing.
  email_seq             INTEGER NOT NULL DEFAULT 0,
  first_name_seq        INTEGER NOT NULL DEFAULT 0,
  last_name_seq         INTEGER NOT NULL DEFAULT 0,
  created_at            TEXT NOT NULL,
  updated_at            TEXT NOT NULL
);
CREATE UNIQUE INDEX registrations_by_app_id ON registrations (app_id, id);
-- Every index below ends, implicitly, in pk: rows come out in paging order without a sort.
CREATE INDEX registrations_by_app ON registrations (app_id);
CREATE INDEX registrations_by_app_learner ON registrations (app_id, learner_id);
CREATE INDEX registrations_by_app_course ON registrations (app_id, course_id);
CREATE INDEX registrations_by_app_created ON registrations (app_id, created_at);
CREATE INDEX registrations_by_app_updated ON registrations (app_id, updated_at);

-- Tags on a learner; rowid order is the order in which each tag was first applied.
CREATE TABLE learner_tags (
  app_id      TEXT NOT NULL,
  learner_id  TEXT NOT NULL,
  tag         TEXT NOT NULL
);
CREATE UNIQUE INDEX learner_tags_by_learner ON learner_tags (app_id, learner_id, tag);
-- Ends, implicitly, in rowid: reading a learner's tags through it yields them in order without a sort.
CREATE INDEX learner_tags_in_order ON learner_tags (app_id, learner_id);

-- How many tags each learner has, kept in step with learner_tags in the same transaction, so the limit of
-- 1000 tags per learner is enforced by the CHECK at O(1) cost: a write that would pass it aborts, whole.
CREATE TABLE learner_tag_counts (
  app_id      TEXT NOT NULL,
  learner_id  TEXT NOT NULL,
  tag_count   INTEGER NOT NULL CONSTRAINT learner_tag_limit CHECK (tag_count BETWEEN 0 AND 1000),
  PRIMARY KEY (app_id, learner_id)
) WITHOUT ROWID;

-- Tags on a registration; rowid order is the order in which each tag was first applied.
CREATE TABLE registration_tags (
  app_id           TEXT NOT NULL,
  registration_id  TEXT NOT NULL,
  tag              TEXT NOT NULL
);
CREATE UNIQUE INDEX registration_tags_by_registration ON registration_tags (app_id, registration_id, tag);
CREATE INDEX registration_tags_in_order ON registration_tags (app_id, registration_id);
CREATE INDEX registration_tags_by_tag ON registration_tags (app_id, tag);

-- The job clock: every accepted job takes the next value as its seq. Kept apart from the jobs table so that
-- deleting jobs (with their application) can never turn it back: registrations are stamped with it.
CREATE TABLE job_clock (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL
);
INSERT INTO job_clock (id, seq) VALUES (1, 0);

-- Background jobs (learner info updates, GDPR erasures, application deletions). Queue messages carry only
-- the job id; everything else lives here. learner_id and payload hold personal data only until the job is
-- done: an erasure nulls them and keeps learner_hash, an HMAC of the learner id.
CREATE TABLE jobs (
  id                      TEXT PRIMARY KEY,
  seq                     INTEGER NOT NULL,
  app_id                  TEXT NOT NULL,
  type                    TEXT NOT NULL CHECK (type IN ('updateLearnerInfo', 'deleteAllLearnerData', 'deleteApplication')),
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
  completed_at            TEXT
);
CREATE UNIQUE INDEX jobs_by_seq ON jobs (seq);
CREATE INDEX jobs_by_learner ON jobs (app_id, learner_hash, type, status);
