-- Users, roles and login failures (AAS).
--
-- Every migration runs unchanged on SQLite and PostgreSQL, so it sticks to
-- TEXT, BIGINT and BYTEA (SQLite gives BYTEA numeric affinity, which stores
-- blobs unchanged). Times are BIGINT Unix microseconds, UTC; NULL means "none".
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash BYTEA NOT NULL,
    locked_until  BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE roles (
    id         TEXT PRIMARY KEY,
    service    TEXT NOT NULL,
    name       TEXT NOT NULL,
    context    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (service, name, context)
);

CREATE TABLE role_permissions (
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id ON user_roles (role_id);

CREATE TABLE login_failures (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_user_id_failed_at ON login_failures (user_id, failed_at);
