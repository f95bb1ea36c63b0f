-- Idempotency-Key (SPEC §8): the response to a POST made with a key, kept 24 hours so that a retry with the same
-- key replays it instead of doing the work again. Written in the same transaction as the work it answers for:
-- a live key already there aborts that transaction (its primary key), so the work is never done twice. The key
-- is stored hashed (SHA-256), the request as a keyed hash; `learner_hash` (the HMAC of jobs.learner_hash) marks a
-- response to a request that named a learner, which an erasure of that learner deletes.
CREATE TABLE idempotency_keys (
  app_id        TEXT NOT NULL,
  key_hash      TEXT NOT NULL,
  request_hash  TEXT NOT NULL,
  status        INTEGER NOT NULL,
  location      TEXT,
  body          TEXT,
  learner_hash  TEXT,
  created_at    TEXT NOT NULL,
  expires_at    TEXT NOT NULL,
  PRIMARY KEY (app_id, key_hash)
) WITHOUT ROWID;
-- The sweeper's deletion of expired keys.
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
-- An erasure deletes the responses that named its learner.
CREATE INDEX idempotency_keys_by_learner ON idempotency_keys (app_id, learner_hash) WHERE learner_hash IS NOT NULL;

-- Keys move with their application (src/db/move.ts): changes to them are journaled like the other tables', under
-- a kind of their own, which the journal's CHECK must allow (the journal is empty outside a move: recreated).
DROP TABLE move_journal;
CREATE TABLE move_journal (
  app_id   TEXT NOT NULL,
  kind     TEXT NOT NULL CHECK (kind IN ('registration', 'learner', 'job', 'idempotency')),
  key      TEXT NOT NULL,
  version  INTEGER NOT NULL,
  PRIMARY KEY (app_id, kind, key)
) WITHOUT ROWID;

CREATE TRIGGER idempotency_keys_journal_insert AFTER INSERT ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'idempotency', NEW.key_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'idempotency' AND key = NEW.key_hash), 0) + 1);
END;

CREATE TRIGGER idempotency_keys_journal_update AFTER UPDATE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'idempotency', NEW.key_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'idempotency' AND key = NEW.key_hash), 0) + 1);
END;

CREATE TRIGGER idempotency_keys_journal_delete AFTER DELETE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'idempotency', OLD.key_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'idempotency' AND key = OLD.key_hash), 0) + 1);
END;
