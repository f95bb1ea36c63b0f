-- A shard database (bindings listed in wrangler.toml [vars] SHARDS): every row of the applications placed on it
-- (migrations/control/ holds the applications themselves, their placement and credentials).

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
-- The job runners walk a learner's registrations in pk order.
CREATE INDEX registrations_by_app_learner ON registrations (app_id, learner_id);
CREATE INDEX registrations_by_app_created ON registrations (app_id, created_at);
CREATE INDEX registrations_by_app_updated ON registrations (app_id, updated_at);
-- GET /registrations?learnerId= / ?courseId= in created order (the default): a page comes out of one index range
-- already in order, so it reads about as many rows as it returns, however many registrations match.
CREATE INDEX registrations_by_app_learner_created ON registrations (app_id, learner_id, created_at);
CREATE INDEX registrations_by_app_course_created ON registrations (app_id, course_id, created_at);

-- Tags on a learner; rowid order is the order in which each tag was first applied.
CREATE TABLE learner_tags (
  app_id      TEXT NOT NULL,
  learner_id  TEXT NOT NULL,
  tag         TEXT NOT NULL
);
CREATE UNIQUE INDEX learner_tags_by_learner ON learner_tags (app_id, learner_id, tag);
-- Ends, implicitly, in rowid: reading a learner's tags through it yields them in order without a sort.
CREATE INDEX learner_tags_in_order ON learner_tags (app_id, learner_id);
-- GET /learners?tags= finds learners by tag: each tag's learners come out of one range of this index, in learner
-- id order (the directory's order), so a page reads about as many entries as it holds learners.
CREATE INDEX learner_tags_by_tag ON learner_tags (app_id, tag, learner_id);

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
-- deleting jobs (with their application) can never turn it back: registrations are stamped with it. A move
-- brings the destination's clock up to the source's, so the moved application's stamps stay in the past.
CREATE TABLE job_clock (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL
);
INSERT INTO job_clock (id, seq) VALUES (1, 0);

-- Background jobs of the applications on this shard (learner info updates, GDPR erasures, application
-- deletions). Queue messages carry only the job id (which names the application, and so the shard); everything
-- else lives here. learner_id and payload hold personal data only until the job is done: an erasure nulls them
-- and keeps learner_hash, an HMAC of the learner id.
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
  completed_at            TEXT,
  -- When a worker or the sweeper last attended to the unfinished job, and how many times the sweeper re-sent its
  -- message. NULL touched_at: the message could not be sent when the job was accepted; the next sweep sends it.
  touched_at              TEXT,
  resends                 INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_learner ON jobs (app_id, learner_hash, type, status);
-- An application's jobs in id order: its deletion's and a move's chunks.
CREATE INDEX jobs_by_app ON jobs (app_id, id);
-- The sweeper's scan: unfinished jobs by when they were last attended to (a small index: finished jobs leave it).
CREATE INDEX jobs_unfinished_by_touch ON jobs (touched_at) WHERE status IN ('queued', 'running');

-- One row per application placed on (or moved away from) this shard: whether writes may land here, how many rows
-- it stores, and what its writes spent of this minute's budget. Every write batch starts by updating this row
-- (src/db/app-storage.ts), so the checks below run in the same transaction as the write, whatever any isolate's
-- credential cache believes; a refused check aborts the whole batch.
CREATE TABLE app_storage (
  app_id         TEXT PRIMARY KEY,
  -- Set in the same transaction that accepts the application's deletion: from then on every write is refused.
  deleted_at     TEXT,
  -- Set while the application is moving in or out (and kept on the shard it left): writes are refused with
  -- "retry shortly" while the placement flips, and for good on the old shard.
  frozen_at      TEXT,
  -- The move step that last wrote here (a fencing token: a late step of the same move cannot overwrite a newer one).
  move_step      INTEGER NOT NULL DEFAULT 0,
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

-- Nor while its placement flips between shards, nor on a shard it has left.
CREATE TRIGGER app_storage_refuse_frozen BEFORE UPDATE OF budget_spent ON app_storage
WHEN OLD.frozen_at IS NOT NULL AND OLD.deleted_at IS NULL
BEGIN
  SELECT RAISE(ABORT, 'application_moving');
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

-- Moving an application (src/db/move.ts): while it is being copied away from this shard, it has a row here, and
-- every change to one of its rows notes the row's key in move_journal (the registration id, learner id or job id,
-- with a version that grows on each change). The copy then brings those keys over again. The table is empty but
-- for applications moving out, so the triggers' check costs one failed index probe per changed row.
CREATE TABLE moving_apps (
  app_id  TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE move_journal (
  app_id   TEXT NOT NULL,
  kind     TEXT NOT NULL CHECK (kind IN ('registration', 'learner', 'job')),
  key      TEXT NOT NULL,
  version  INTEGER NOT NULL,
  PRIMARY KEY (app_id, kind, key)
) WITHOUT ROWID;

CREATE TRIGGER registrations_journal_insert AFTER INSERT ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'registration', NEW.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'registration' AND key = NEW.id), 0) + 1);
END;

CREATE TRIGGER registrations_journal_update AFTER UPDATE ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'registration', NEW.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'registration' AND key = NEW.id), 0) + 1);
END;

CREATE TRIGGER registrations_journal_delete AFTER DELETE ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'registration', OLD.id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'registration' AND key = OLD.id), 0) + 1);
END;

CREATE TRIGGER registration_tags_journal_insert AFTER INSERT ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'registration', NEW.registration_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'registration' AND key = NEW.registration_id), 0) + 1);
END;

CREATE TRIGGER registration_tags_journal_update AFTER UPDATE ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'registration', NEW.registration_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'registration' AND key = NEW.registration_id), 0) + 1);
END;

CREATE TRIGGER registration_tags_journal_delete AFTER DELETE ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'registration', OLD.registration_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'registration' AND key = OLD.registration_id), 0) + 1);
END;

CREATE TRIGGER learner_tags_journal_insert AFTER INSERT ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'learner', NEW.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'learner' AND key = NEW.learner_id), 0) + 1);
END;

CREATE TRIGGER learner_tags_journal_update AFTER UPDATE ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'learner', NEW.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'learner' AND key = NEW.learner_id), 0) + 1);
END;

CREATE TRIGGER learner_tags_journal_delete AFTER DELETE ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'learner', OLD.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'learner' AND key = OLD.learner_id), 0) + 1);
END;

CREATE TRIGGER learner_tag_counts_journal_insert AFTER INSERT ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'learner', NEW.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'learner' AND key = NEW.learner_id), 0) + 1);
END;

CREATE TRIGGER learner_tag_counts_journal_update AFTER UPDATE ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'learner', NEW.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'learner' AND key = NEW.learner_id), 0) + 1);
END;

CREATE TRIGGER learner_tag_counts_journal_delete AFTER DELETE ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'learner', OLD.learner_id,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'learner' AND key = OLD.learner_id), 0) + 1);
END;

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
