-- HVS: a report names its flavors (HostFlavorRefs) from this index alone,
-- without reading the flavor rows (issue 13). created_at and signed_sha256
-- follow the signed document in a row, so reading them from the table
-- walks every overflow page of the document on SQLite: tens of pages for
-- an 800-line IMA flavor, at every report. The index keeps the binding's
-- prefix (host id, hardware UUID) of the index it replaces.
CREATE INDEX flavors_binding_refs ON flavors (host_id, hardware_uuid, created_at, id, part, signed_sha256);
DROP INDEX flavors_host_id_hardware_uuid;
