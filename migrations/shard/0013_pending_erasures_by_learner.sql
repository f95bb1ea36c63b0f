-- The learners whose erasure is pending, by learner id (src/db/activity.ts inactiveLearners): the retention sweep
-- passes over them — their erasure is under way — with one seek each, so that a backlog of pending erasures among
-- the longest inactive does not hide the learners after them. Partial: only pending erasures, which keep their
-- learner id until they finish.
CREATE INDEX jobs_erasing_by_learner ON jobs (app_id, learner_id) WHERE type = 'deleteAllLearnerData' AND status IN ('queued', 'running');
