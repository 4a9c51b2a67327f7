-- HVS: hosts, flavor groups, flavors and trust reports.
--
-- Booleans are BIGINT 0/1. JSON documents (flavors, match policies, reports,
-- a host's boot state) are BYTEA owned by HVS; the store indexes only the
-- columns it filters on.
CREATE TABLE hosts (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    connection_string TEXT NOT NULL,
    description       TEXT NOT NULL,
    hardware_uuid     TEXT NOT NULL,
    status            TEXT NOT NULL,
    status_at         BIGINT,
    last_connected    BIGINT,
    -- The boot of the last verified quote: NULL reset count means "none yet".
    reset_count       BIGINT,
    rebooted_at       BIGINT,
    boot_state        BYTEA NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX hosts_hardware_uuid ON hosts (hardware_uuid);

CREATE TABLE flavor_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    policies   BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- A group in use by a host cannot be deleted (no cascade).
CREATE TABLE host_flavor_groups (
    host_id  TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES flavor_groups (id),
    PRIMARY KEY (host_id, group_id)
);
CREATE INDEX host_flavor_groups_group_id ON host_flavor_groups (group_id);

-- host_id and hardware_uuid bind a flavor to one host ('' = any host).
CREATE TABLE flavors (
    id            TEXT PRIMARY KEY,
    part          TEXT NOT NULL,
    label         TEXT NOT NULL,
    host_id       TEXT NOT NULL,
    hardware_uuid TEXT NOT NULL,
    signed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX flavors_host_id_part ON flavors (host_id, part);

CREATE TABLE flavor_group_flavors (
    group_id  TEXT NOT NULL REFERENCES flavor_groups (id) ON DELETE CASCADE,
    flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, flavor_id)
);
CREATE INDEX flavor_group_flavors_flavor_id ON flavor_group_flavors (flavor_id);

-- Report ids are time-ordered (UUIDv7): id order is creation order, which
-- keyset pagination and "latest per host" rely on.
CREATE TABLE reports (
    id         TEXT PRIMARY KEY,
    host_id    TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    host_name  TEXT NOT NULL,
    trusted    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    report     BYTEA NOT NULL,
    jws        TEXT NOT NULL
);
CREATE INDEX reports_host_id_id ON reports (host_id, id);
CREATE INDEX reports_created_at ON reports (created_at);
