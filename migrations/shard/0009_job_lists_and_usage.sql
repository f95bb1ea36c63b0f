-- Job lists (GET /jobs, GET /appManagement/jobs) and usage figures (GET /appManagement/usage and
-- /appManagement/applications/{childAppId}/usage), index-served: a page of jobs reads about as many rows as it
-- returns, and no usage figure reads a table in full.
--
-- Jobs are listed newest first: by created_at, then id (both fixed at acceptance, and the same on every shard a
-- move copies the job to). A bulk erasure's children are not listed (their bulk job stands for them), hence the
-- partial indexes: a child never enters them. One application's jobs, all of them or of one status or type:
CREATE INDEX jobs_listed_by_app ON jobs (app_id, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_status ON jobs (app_id, status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_type ON jobs (app_id, type, created_at, id) WHERE parent_id IS NULL;
-- The shard's jobs across its applications (the realm's list merges every database's newest page):
CREATE INDEX jobs_listed ON jobs (created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_status ON jobs (status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_type ON jobs (type, created_at, id) WHERE parent_id IS NULL;
-- Usage: an application's jobs finished since a time, with what became of their webhook event; covering (parent_id
-- included so the planner needs no table row), so each finished job costs one index entry read.
CREATE INDEX jobs_finished_by_app ON jobs (app_id, completed_at, status, notify_status, parent_id)
  WHERE parent_id IS NULL AND status IN ('completed', 'failed');

-- Registrations and learners per application, so usage reads one row instead of counting. Kept in step as
-- stored_rows is, by the statements that add or remove registrations, in the same transaction (src/db/app-storage.ts,
-- countRows): a registration's creation and deletion, an erasure's chunks, an application's deletion (zeroed), and a
-- move (the destination takes the source's counts as it takes its stored_rows, just before the flip; the source is
-- zeroed once emptied). A learner counts while a registration names it (SPEC §3). Riding in the stored-row update
-- each of those statements makes already, they add no row written.
ALTER TABLE app_storage ADD COLUMN registrations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE app_storage ADD COLUMN learners INTEGER NOT NULL DEFAULT 0;
UPDATE app_storage SET
  registrations = (SELECT count(*) FROM registrations r WHERE r.app_id = app_storage.app_id),
  learners = (SELECT count(*) FROM (SELECT DISTINCT r.learner_id FROM registrations r WHERE r.app_id = app_storage.app_id));
