-- One TPM attests one host: enrollment refuses an EK that another host is
-- enrolled with (package enroll, EKInUse). That check was a read before the
-- write, so two replicas enrolling two hosts with one EK at the same
-- instant both passed it. A unique index on the EK digest makes it a
-- constraint (PutAKEnrollment: ErrEKInUse).
--
-- Enrollments a race (or a version before the check) left sharing an EK are
-- all deleted: which host is the TPM's own is not known here. Each of those
-- hosts fails its next report (not enrolled) until it enrolls again; the
-- first to enroll takes the EK and the others are refused EKInUse. Digests
-- are compared in lower case, as PutAKEnrollment stores them.
DELETE FROM ak_enrollments WHERE host_id NOT IN (SELECT id FROM hosts);
UPDATE ak_enrollments SET ek_public_sha256 = lower(ek_public_sha256)
    WHERE ek_public_sha256 <> lower(ek_public_sha256);
DELETE FROM ak_enrollments WHERE ek_public_sha256 IN
    (SELECT ek_public_sha256 FROM ak_enrollments GROUP BY ek_public_sha256 HAVING count(*) > 1);
DROP INDEX ak_enrollments_ek_public_sha256;
CREATE UNIQUE INDEX ak_enrollments_one_per_ek ON ak_enrollments (ek_public_sha256);
