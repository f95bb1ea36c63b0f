-- Finished realm jobs (moves, realm-wide erasures) are deleted once their retention has passed (the sweeper;
-- JOB_RETENTION_DAYS, and RECEIPT_RETENTION_DAYS for erasures): by completion time, finished ones only.
CREATE INDEX jobs_finished_by_completion ON jobs (completed_at) WHERE status IN ('completed', 'failed');

-- Statements the control database shares with the shards (the sweeper's, job failures', event delivery's) ask
-- whether a job's application is frozen for a move (shard: app_storage.frozen_at). Realm jobs never are: here the
-- question is asked of an empty view.
CREATE VIEW app_storage AS SELECT NULL AS app_id, NULL AS frozen_at, NULL AS deleted_at WHERE 0;
