-- HVS: a report is stored without repeating what other columns or rows hold
-- (issue 13). A report's compact JWS is its protected header, its JSON (the
-- payload) and its signature. The JSON is in the report column, and the
-- header is the same for every report one signing key signs (it carries the
-- key's certificate chain, about 2.4 kB). So a report whose JWS payload is
-- its JSON keeps in jws only the signature, and in jws_header the SHA-256
-- of its header, which report_jws_headers holds once; a read puts the same
-- JWS back together. jws_header is NULL for a report stored whole (every
-- report stored before this migration), which reads as stored.
CREATE TABLE report_jws_headers (
    sha256 BYTEA PRIMARY KEY,
    header TEXT NOT NULL
);
ALTER TABLE reports ADD COLUMN jws_header BYTEA;
