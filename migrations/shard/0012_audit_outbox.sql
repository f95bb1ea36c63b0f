-- The audit outbox (SPEC §12; src/db/audit-outbox.ts; src/db/storage-schema.md, "audit_outbox"): an action written on
-- a shard (an erasure, a bulk erasure, an export, a suppression lift, a retention erasure) writes its audit record here
-- in its own transaction, conditioned as the action is, so that a performed action always leaves one. The request
-- appends the entry to the control database's audit_log right after, as before; the sweeper copies what is here there
-- too (the append's dedupe by request, action and target makes the second copy a no-op) and then deletes it. Ids,
-- HMACs and times only. AUTOINCREMENT: an id is never reused, so the sweeper's delete of every id up to the last it
-- copied never takes a row written after it read.
CREATE TABLE audit_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  request_id TEXT NOT NULL
);
