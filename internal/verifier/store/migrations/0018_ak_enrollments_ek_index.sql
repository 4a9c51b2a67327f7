-- Enrollment looks up the hosts enrolled with an EK (HostsEnrolledWithEK:
-- one TPM attests one host) twice per enrollment, and deleting an EK
-- registration deletes the enrollments of its EK. Without an index each
-- scanned every enrollment: enrolling a fleet cost the square of its size.
CREATE INDEX ak_enrollments_ek_public_sha256 ON ak_enrollments (ek_public_sha256);
