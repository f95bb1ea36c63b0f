-- The operator console's sign-outs (SPEC §10: signing out ends the session). A console session is a signed cookie
-- (src/console/session.ts), nothing stored at sign-in; signing out records its id here until the cookie would have
-- expired anyway, and every console request checks it, so a copied cookie stops working everywhere at once. The
-- sweeper deletes rows past their expiry.
CREATE TABLE console_sign_outs (
  session_id  TEXT PRIMARY KEY,
  expires_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sign_outs_by_expiry ON console_sign_outs (expires_at);
