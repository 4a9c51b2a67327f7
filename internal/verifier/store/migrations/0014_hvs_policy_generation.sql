-- HVS: the generation of what reports are appraised against (issue 13).
-- Every change of flavor groups, flavors, group memberships (of hosts and
-- of flavors) and IMA policies and their assignments moves it, in the
-- transaction of the change (the store's write functions do). A verifier
-- keeps each host's policies (ReportPolicies) with the generation they were
-- read at and commits a report appraised against them only while the
-- generation is still that one, so that a change made through any replica
-- is applied to every report committed after it.
CREATE TABLE hvs_policy_generation (
    id         BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO hvs_policy_generation (id, generation) VALUES (1, 1);
