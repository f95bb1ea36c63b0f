-- Webhooks (SPEC §8): one endpoint per application, told when its jobs end. The signing secret is needed to sign
-- each delivery, so it is kept sealed (AES-GCM under a key derived from LEARNER_HASH_KEY, bound to the application
-- id: src/jobs/webhook-secret.ts), never in the clear. Kept with a deleted application's row (which holds no learner
-- data), so its deletion's own event can still be delivered.
CREATE TABLE webhooks (
  app_id      TEXT PRIMARY KEY,
  url         TEXT NOT NULL,
  secret      TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- Realm jobs (moves, realm-wide erasures) get events too, as a shard's jobs do (migrations/shard 0005): a move's
-- goes to its application's webhook; a realm-wide erasure has no application (its children, one erasure in each
-- application, have events of their own).
ALTER TABLE jobs ADD COLUMN event_id TEXT;
ALTER TABLE jobs ADD COLUMN event_at TEXT;
ALTER TABLE jobs ADD COLUMN notify_status TEXT CHECK (notify_status IN ('new', 'pending', 'delivered', 'failed'));
ALTER TABLE jobs ADD COLUMN notify_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN notify_last_status INTEGER;
ALTER TABLE jobs ADD COLUMN notify_last_error TEXT;
ALTER TABLE jobs ADD COLUMN notify_due_at TEXT;

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
