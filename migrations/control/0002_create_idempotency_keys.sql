-- Idempotency-Key (SPEC §8) for the management API (app_id is empty: keys are the realm's): the response to a POST made with a key, kept 24 hours so that a retry with the same
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
