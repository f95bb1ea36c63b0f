-- Suppression (SPEC §9, as Segment's): an erasure asked with ?suppress=true keeps the learner id's HMAC (jobs.learner_hash)
-- here once it completes, and from then on a registration naming that learner in that application is refused (409)
-- until DELETE /learner/{learnerId}/suppression lifts it. Nothing else of the learner is kept.
CREATE TABLE suppressions (
  app_id        TEXT NOT NULL,
  learner_hash  TEXT NOT NULL,
  -- The erasure that suppressed the learner.
  job_id        TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  PRIMARY KEY (app_id, learner_hash)
) WITHOUT ROWID;

-- Suppressions move with their application (src/db/move.ts). The journal is recreated without its CHECK on kind
-- (empty outside a move), so a table added later needs no rebuild of it.
DROP TABLE move_journal;
CREATE TABLE move_journal (
  app_id   TEXT NOT NULL,
  kind     TEXT NOT NULL,
  key      TEXT NOT NULL,
  version  INTEGER NOT NULL,
  PRIMARY KEY (app_id, kind, key)
) WITHOUT ROWID;

CREATE TRIGGER suppressions_journal_insert AFTER INSERT ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'suppression', NEW.learner_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'suppression' AND key = NEW.learner_hash), 0) + 1);
END;

CREATE TRIGGER suppressions_journal_update AFTER UPDATE ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (NEW.app_id, 'suppression', NEW.learner_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = NEW.app_id AND kind = 'suppression' AND key = NEW.learner_hash), 0) + 1);
END;

CREATE TRIGGER suppressions_journal_delete AFTER DELETE ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT OR REPLACE INTO move_journal (app_id, kind, key, version)
  VALUES (OLD.app_id, 'suppression', OLD.learner_hash,
    coalesce((SELECT version FROM move_journal WHERE app_id = OLD.app_id AND kind = 'suppression' AND key = OLD.learner_hash), 0) + 1);
END;
