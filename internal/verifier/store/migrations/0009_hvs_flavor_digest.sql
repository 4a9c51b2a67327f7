-- HVS: the SHA-256 of each flavor's signed bytes (issue 13), so that a report
-- finds its flavors in the verifier's cache of verified flavors without
-- reading the signed documents. '' for a flavor stored before: its bytes are
-- read and hashed as before.
ALTER TABLE flavors ADD COLUMN signed_sha256 BYTEA NOT NULL DEFAULT '';
