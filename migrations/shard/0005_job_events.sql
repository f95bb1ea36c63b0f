-- Webhook events (SPEC §8): when a job ends (completed or failed) it gets an event, delivered to its application's
-- webhook if it has one (src/jobs/webhooks.ts). The event lives on the job's own row, so it moves, and is deleted,
-- with the job. A trigger creates it, so every way a job can end (a chunk, the dead-letter consumer, the sweeper, an
-- erasure cancelling the learner's other jobs) gets one, in the same transaction. A bulk erasure's children do not:
-- the bulk job's event stands for them.
--
-- notify_status: 'new' (the event exists; whether the application has a webhook is not yet looked up), 'pending'
-- (being delivered: the next attempt is due at notify_due_at), 'delivered', 'failed' (given up after 24 hours), or
-- NULL (no event, or no webhook to deliver it to).
ALTER TABLE jobs ADD COLUMN event_id TEXT;
ALTER TABLE jobs ADD COLUMN event_at TEXT;
ALTER TABLE jobs ADD COLUMN notify_status TEXT CHECK (notify_status IN ('new', 'pending', 'delivered', 'failed'));
ALTER TABLE jobs ADD COLUMN notify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN notify_last_status INTEGER;
ALTER TABLE jobs ADD COLUMN notify_last_error TEXT;
ALTER TABLE jobs ADD COLUMN notify_due_at TEXT;

-- Events still to look up or deliver, by when they are due: the consumer's look after a job ends (app_id) and the
-- sweeper's (due time) read only these.
CREATE INDEX jobs_events_due ON jobs (notify_status, notify_due_at) WHERE notify_status IN ('new', 'pending');
CREATE INDEX jobs_events_new_by_app ON jobs (app_id) WHERE notify_status = 'new';

CREATE TRIGGER jobs_event AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('completed', 'failed') AND OLD.status IN ('queued', 'running') AND NEW.parent_id IS NULL
BEGIN
  UPDATE jobs SET event_id = 'evt_' || lower(hex(randomblob(16))),
    event_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    notify_status = 'new', notify_attempts = 0, notify_last_status = NULL, notify_last_error = NULL,
    notify_due_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
  WHERE id = NEW.id;
END;
