-- Token revocation (AAS): every token carries the token generation of the
-- user on whose authority it was issued; changing the user's password or
-- taking a role (or a role's permissions) away moves the generation on, and
-- the verifier then refuses the user's older tokens.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
