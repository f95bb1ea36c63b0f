-- An action's entry by the request that appended it: the append finds its own entry when its batch runs again after a
-- lost reply (src/db/audit-append.ts), and a removal answers from it. One seek per entry appended.
CREATE INDEX audit_log_by_request ON audit_log (request_id, action, target);
