-- Job lists (GET /appManagement/jobs) and usage over realm jobs (moves, realm-wide erasures), served by indexes of
-- the same names and columns as the shards' (migrations/shard 0009), so one statement lists jobs on any database.
-- parent_id is always NULL here: the partial indexes hold every realm job.
CREATE INDEX jobs_listed_by_app ON jobs (app_id, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_status ON jobs (app_id, status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_app_type ON jobs (app_id, type, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed ON jobs (created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_status ON jobs (status, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_listed_by_type ON jobs (type, created_at, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_finished_by_app ON jobs (app_id, completed_at, status, notify_status, parent_id)
  WHERE parent_id IS NULL AND status IN ('completed', 'failed');

-- The operator console's drafts and one-time results (SPEC §10: Post/Redirect/Get): what a form sent, a refusal to
-- show beside its fields, an action awaiting its confirmation, a result to show once (a credential's secret). Each
-- is sealed (AES-GCM) under a key derived from a random token that only the browser holds (in the URL it is
-- redirected to), bound to the console session: this table never holds anything readable, and a row is useless
-- without the token and the session. `id` is the SHA-256 of the token. A one-time result is deleted as it is read;
-- every row is deleted by the sweeper once expired (minutes).
CREATE TABLE console_drafts (
  id          TEXT PRIMARY KEY,
  sealed      TEXT NOT NULL,
  once        INTEGER NOT NULL CHECK (once IN (0, 1)),
  expires_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_drafts_by_expiry ON console_drafts (expires_at);
