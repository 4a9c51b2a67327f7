-- Issue 14: when each host was last attempted and last attested, and which
-- verifier replica holds its scheduled report. Times are Unix microseconds.
--
-- last_attempt: a report of the host was started (by any replica, for any
-- reason: the manager's request, the refresh schedule, an agent's event).
-- last_success: a report was made from the agent's evidence (its quote was
-- read and appraised), whatever its verdict. A host whose last success is
-- older than 1.5 × the attestation interval is overdue (hvs.Config).
-- claimed_by / claimed_until: the replica that took the host's scheduled
-- refresh, until when; another replica takes it only once the claim lapses
-- (a dead replica's hosts are picked up then).
ALTER TABLE hosts ADD COLUMN last_attempt BIGINT;
ALTER TABLE hosts ADD COLUMN last_success BIGINT;
ALTER TABLE hosts ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN claimed_until BIGINT;
UPDATE hosts SET last_attempt = status_at, last_success = last_connected;
