-- Enrollment records the PCR banks the TPM had allocated (issue 12): a later
-- quote that omits a requested bank the TPM had is a fault. A comma-separated
-- list of evidence bank names; '' when the agent sent none (an older agent).
ALTER TABLE activation_challenges ADD COLUMN pcr_banks TEXT NOT NULL DEFAULT '';
ALTER TABLE ak_enrollments ADD COLUMN pcr_banks TEXT NOT NULL DEFAULT '';
