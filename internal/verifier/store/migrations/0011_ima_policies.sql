-- IMA runtime policies (issue 16): allowlists of file digests, excluded
-- paths and trusted signing keys, by name, with versions. Every update is a
-- new version; a version is never changed. The document is the policy's
-- canonical JSON (package imapolicy), opaque here; signature is HVS's
-- compact JWS over the version's name, number and document digest, made
-- with the verifier's signing key like flavors are; document_sha256 lets a
-- report find the compiled policy in HVS's cache without reading the
-- document. latest_version is the version reports use. Times are Unix
-- microseconds.
CREATE TABLE ima_policies (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    description    TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE ima_policy_versions (
    policy_id       TEXT NOT NULL REFERENCES ima_policies (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    document        BYTEA NOT NULL,
    document_sha256 BYTEA NOT NULL,
    signature       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version)
);

-- A host or a flavor group has at most one policy; a host's own policy wins
-- over its groups'. An assigned policy is not deleted (no cascade) unless
-- the operator forces it, which deletes the assignments first.
CREATE TABLE ima_policy_hosts (
    host_id   TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    policy_id TEXT NOT NULL REFERENCES ima_policies (id)
);
CREATE INDEX ima_policy_hosts_policy_id ON ima_policy_hosts (policy_id);

CREATE TABLE ima_policy_groups (
    group_id  TEXT PRIMARY KEY REFERENCES flavor_groups (id) ON DELETE CASCADE,
    policy_id TEXT NOT NULL REFERENCES ima_policies (id)
);
CREATE INDEX ima_policy_groups_policy_id ON ima_policy_groups (policy_id);
