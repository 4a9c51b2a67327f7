-- An AK enrollment goes with its host and with the EK registration that
-- vouched for it: deleting a host deletes its enrollment (DeleteHost), and
-- deleting a registration deletes the enrollments without an EK certificate
-- of its EK (DeleteEKRegistration). Before, both stayed: a deleted host's
-- enrollment kept its AK name (unique) from enrolling again under a new host
-- id, and a host whose registration was deleted kept being attested. This
-- deletes those left by deletions made before.
DELETE FROM ak_enrollments WHERE host_id NOT IN (SELECT id FROM hosts);
DELETE FROM ak_enrollments WHERE length(ek_certificate) = 0
    AND ek_public_sha256 NOT IN (SELECT ek_public_sha256 FROM ek_registrations);
