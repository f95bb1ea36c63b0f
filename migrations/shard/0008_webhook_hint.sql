-- Whether an application may have a webhook, kept on its shard (SPEC §6: a job's end costs no more D1 calls without
-- a webhook than before webhooks existed). The events of a job's end are created only where it may ('new', to be
-- looked up and delivered): without, nothing is looked up in the control database, and the consumer makes no call
-- for them. Conservative: existing applications start at 1; a new application at 0; setting a webhook sets it to 1
-- on the shard before the webhook is written in the control database (so no job ending after the webhook is
-- acknowledged is missed) and raises webhook_epoch; a look that finds no webhook clears it, unless the epoch it
-- read has moved on since (a webhook set meanwhile).
ALTER TABLE app_storage ADD COLUMN webhook_hint INTEGER NOT NULL DEFAULT 1;
ALTER TABLE app_storage ADD COLUMN webhook_epoch INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER jobs_event;
CREATE TRIGGER jobs_event AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('completed', 'failed') AND OLD.status IN ('queued', 'running') AND NEW.parent_id IS NULL
BEGIN
  UPDATE jobs SET event_id = 'evt_' || lower(hex(randomblob(16))),
    event_at = coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    notify_status = CASE WHEN coalesce((SELECT webhook_hint FROM app_storage WHERE app_id = NEW.app_id), 1) = 1 THEN 'new' END,
    notify_attempts = 0, notify_last_status = NULL, notify_last_error = NULL,
    notify_due_at = CASE WHEN coalesce((SELECT webhook_hint FROM app_storage WHERE app_id = NEW.app_id), 1) = 1
      THEN coalesce(NEW.completed_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) END
  WHERE id = NEW.id;
END;
