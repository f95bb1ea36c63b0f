-- The move journal's triggers, again, as upserts. They were written INSERT OR REPLACE; but SQLite applies the
-- conflict policy of the statement that fired a trigger to the statements inside it whenever that statement has one
-- of its own: a write with an upsert of its own (the learner tag count's, a registration's repeat of a learner tag)
-- aborted on the journal's primary key when its key was journaled already, and the write answered 500 while its
-- application was moving. An upsert inside the trigger handles the key itself, whatever fired it.

DROP TRIGGER registrations_journal_insert;
CREATE TRIGGER registrations_journal_insert AFTER INSERT ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'registration', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER registrations_journal_update;
CREATE TRIGGER registrations_journal_update AFTER UPDATE ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'registration', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER registrations_journal_delete;
CREATE TRIGGER registrations_journal_delete AFTER DELETE ON registrations
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'registration', OLD.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER registration_tags_journal_insert;
CREATE TRIGGER registration_tags_journal_insert AFTER INSERT ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'registration', NEW.registration_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER registration_tags_journal_update;
CREATE TRIGGER registration_tags_journal_update AFTER UPDATE ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'registration', NEW.registration_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER registration_tags_journal_delete;
CREATE TRIGGER registration_tags_journal_delete AFTER DELETE ON registration_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'registration', OLD.registration_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tags_journal_insert;
CREATE TRIGGER learner_tags_journal_insert AFTER INSERT ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tags_journal_update;
CREATE TRIGGER learner_tags_journal_update AFTER UPDATE ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tags_journal_delete;
CREATE TRIGGER learner_tags_journal_delete AFTER DELETE ON learner_tags
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'learner', OLD.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tag_counts_journal_insert;
CREATE TRIGGER learner_tag_counts_journal_insert AFTER INSERT ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tag_counts_journal_update;
CREATE TRIGGER learner_tag_counts_journal_update AFTER UPDATE ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'learner', NEW.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER learner_tag_counts_journal_delete;
CREATE TRIGGER learner_tag_counts_journal_delete AFTER DELETE ON learner_tag_counts
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'learner', OLD.learner_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER jobs_journal_insert;
CREATE TRIGGER jobs_journal_insert AFTER INSERT ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER jobs_journal_update;
CREATE TRIGGER jobs_journal_update AFTER UPDATE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER jobs_journal_delete;
CREATE TRIGGER jobs_journal_delete AFTER DELETE ON jobs
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'job', OLD.id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER idempotency_keys_journal_insert;
CREATE TRIGGER idempotency_keys_journal_insert AFTER INSERT ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'idempotency', NEW.key_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER idempotency_keys_journal_update;
CREATE TRIGGER idempotency_keys_journal_update AFTER UPDATE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'idempotency', NEW.key_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER idempotency_keys_journal_delete;
CREATE TRIGGER idempotency_keys_journal_delete AFTER DELETE ON idempotency_keys
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'idempotency', OLD.key_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER suppressions_journal_insert;
CREATE TRIGGER suppressions_journal_insert AFTER INSERT ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'suppression', NEW.learner_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER suppressions_journal_update;
CREATE TRIGGER suppressions_journal_update AFTER UPDATE ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'suppression', NEW.learner_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER suppressions_journal_delete;
CREATE TRIGGER suppressions_journal_delete AFTER DELETE ON suppressions
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'suppression', OLD.learner_hash, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER job_members_journal_insert;
CREATE TRIGGER job_members_journal_insert AFTER INSERT ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.job_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER job_members_journal_update;
CREATE TRIGGER job_members_journal_update AFTER UPDATE ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = NEW.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (NEW.app_id, 'job', NEW.job_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;

DROP TRIGGER job_members_journal_delete;
CREATE TRIGGER job_members_journal_delete AFTER DELETE ON job_members
WHEN EXISTS (SELECT 1 FROM moving_apps WHERE app_id = OLD.app_id)
BEGIN
  INSERT INTO move_journal (app_id, kind, key, version) VALUES (OLD.app_id, 'job', OLD.job_id, 1)
  ON CONFLICT (app_id, kind, key) DO UPDATE SET version = version + 1;
END;
