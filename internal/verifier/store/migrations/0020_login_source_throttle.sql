-- Failed logins per source across users: the AAS refuses every login from a
-- source that fails too many within its window, whatever the usernames,
-- which slows password spraying. Before, each replica counted in its own
-- memory, so N replicas let a source try N times as many passwords, and a
-- restart forgot a throttle. One row a source, forgotten once its window
-- and its refusal are over (CountLoginSourceFailure).
CREATE TABLE login_source_throttle (
    source        TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    failures      INTEGER NOT NULL,
    refused_until BIGINT NOT NULL
);
CREATE INDEX login_source_throttle_window_start ON login_source_throttle (window_start);
