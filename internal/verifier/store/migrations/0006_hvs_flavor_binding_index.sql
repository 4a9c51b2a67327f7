-- HVS: find the flavors that can apply to one host by their binding (host id,
-- hardware UUID), so that the cost of a report does not grow with the fleet
-- (issue 13): the automatic group holds every host's flavors.
CREATE INDEX flavors_host_id_hardware_uuid ON flavors (host_id, hardware_uuid);
