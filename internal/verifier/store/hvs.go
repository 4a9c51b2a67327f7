package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HVS data: hosts, flavor groups, flavors and trust reports. JSON documents
// (signed flavors, match policies, reports, a host's boot state) are opaque
// bytes here; HVS owns their shape.

// Host is a registered host. ID is the host id of its trust agent on the bus.
type Host struct {
	ID, Name, ConnectionString, Description string
	// HardwareUUID is the SMBIOS UUID the agent reported ("" until known).
	HardwareUUID string
	// FlavorGroupIDs are the groups the host is appraised against.
	FlavorGroupIDs []string
	// Status is the connection status (CONNECTED, CONNECTION_TIMEOUT, ...),
	// set at StatusAt; LastConnected is the last time the agent answered.
	Status                  string
	StatusAt, LastConnected time.Time
	Boot                    HostBoot
	CreatedAt               time.Time
	// LastAttempt is when a report of the host was last started, and
	// LastSuccess when one was last made from its agent's evidence
	// (attempts.go); zero if never.
	LastAttempt, LastSuccess time.Time
}

// HostBoot is what HVS keeps of a host's current boot, from its last
// verified quote.
type HostBoot struct {
	// Known is false until a quote of the host verified.
	Known      bool
	ResetCount uint32
	// RebootedAt is when a changed reset count was last seen.
	RebootedAt time.Time
	// State is HVS's JSON (IMA offset, PCR 10 values, entries of the boot).
	State []byte
}

// HostFilter selects hosts; zero fields select all.
type HostFilter struct {
	Name, HardwareUUID string
	// Trusted selects hosts whose latest report has this trust; a host
	// without reports is never selected by it.
	Trusted *bool
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// CreateHost stores a new host with its flavor groups; ErrConflict if its
// ID or name is taken, ErrNotFound if a group does not exist.
func (q *queries) CreateHost(ctx context.Context, h Host) error {
	return q.atomic(ctx, func(q *queries) error {
		_, err := q.w.ExecContext(ctx, `INSERT INTO hosts
			(id, name, connection_string, description, hardware_uuid, status, status_at, last_connected,
			 reset_count, rebooted_at, boot_state, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			h.ID, h.Name, h.ConnectionString, h.Description, h.HardwareUUID, h.Status, dbTime(h.StatusAt),
			dbTime(h.LastConnected), resetCount(h.Boot), dbTime(h.Boot.RebootedAt), dbBytes(h.Boot.State),
			createdAt(h.CreatedAt))
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("host %q (name %q): %w", h.ID, h.Name, ErrConflict)
		} else if err != nil {
			return fmt.Errorf("create host %q: %w", h.ID, err)
		}
		return q.setHostGroups(ctx, h.ID, h.FlavorGroupIDs)
	})
}

func resetCount(b HostBoot) any {
	if !b.Known {
		return nil
	}
	return int64(b.ResetCount)
}

func (q *queries) setHostGroups(ctx context.Context, hostID string, groupIDs []string) error {
	if _, err := q.w.ExecContext(ctx, `DELETE FROM host_flavor_groups WHERE host_id = $1`, hostID); err != nil {
		return fmt.Errorf("set flavor groups of host %q: %w", hostID, err)
	}
	if err := q.policiesChanged(ctx); err != nil {
		return err
	}
	for _, g := range groupIDs {
		_, err := q.w.ExecContext(ctx, `INSERT INTO host_flavor_groups (host_id, group_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, hostID, g)
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("flavor group %q of host %q: %w", g, hostID, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("set flavor groups of host %q: %w", hostID, err)
		}
	}
	return nil
}

const hostColumns = `id, name, connection_string, description, hardware_uuid, status, status_at, last_connected,
	reset_count, rebooted_at, boot_state, created_at, last_attempt, last_success`

func scanHost(row interface{ Scan(...any) error }) (Host, error) {
	var (
		h                                     Host
		statusAt, connected, rebooted, create sql.NullInt64
		reset, attempt, success               sql.NullInt64
	)
	if err := row.Scan(&h.ID, &h.Name, &h.ConnectionString, &h.Description, &h.HardwareUUID, &h.Status,
		&statusAt, &connected, &reset, &rebooted, &h.Boot.State, &create, &attempt, &success); err != nil {
		return Host{}, err
	}
	h.LastAttempt, h.LastSuccess = fromDBTime(attempt), fromDBTime(success)
	h.StatusAt, h.LastConnected = fromDBTime(statusAt), fromDBTime(connected)
	h.Boot.Known, h.Boot.ResetCount = reset.Valid, uint32(reset.Int64)
	h.Boot.RebootedAt, h.CreatedAt = fromDBTime(rebooted), fromDBTime(create)
	return h, nil
}

func (q *queries) hostGroups(ctx context.Context, hostID string) ([]string, error) {
	return q.strings(ctx, `SELECT group_id FROM host_flavor_groups WHERE host_id = $1 ORDER BY group_id`, hostID)
}

// strings runs a query of one TEXT column.
func (q *queries) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	return queryStrings(ctx, q.r, query, args...)
}

// queryStrings runs on db a query (or a statement RETURNING) of one TEXT column.
func queryStrings(ctx context.Context, db querier, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports iteration errors
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (q *queries) host(ctx context.Context, what, where string, arg any) (Host, error) {
	h, err := queryOne(ctx, q.r, "host "+what, scanHost, `SELECT `+hostColumns+` FROM hosts WHERE `+where, arg)
	if err != nil {
		return Host{}, err
	}
	if h.FlavorGroupIDs, err = q.hostGroups(ctx, h.ID); err != nil {
		return Host{}, fmt.Errorf("read host %s: %w", what, err)
	}
	return h, nil
}

// HostByID returns the host; ErrNotFound if none.
func (q *queries) HostByID(ctx context.Context, id string) (Host, error) {
	return q.host(ctx, fmt.Sprintf("%q", id), `id = $1`, id)
}

// HostByName returns the host of that name; ErrNotFound if none.
func (q *queries) HostByName(ctx context.Context, name string) (Host, error) {
	return q.host(ctx, fmt.Sprintf("named %q", name), `name = $1`, name)
}

// ListHosts returns the hosts the filter selects, by name.
func (q *queries) ListHosts(ctx context.Context, f HostFilter) ([]Host, error) {
	var w whereClause
	if f.Name != "" {
		w.add("name = $%d", f.Name)
	}
	if f.HardwareUUID != "" {
		w.add("hardware_uuid = $%d", f.HardwareUUID)
	}
	if f.Trusted != nil {
		w.add("(SELECT r.trusted FROM reports r WHERE r.host_id = hosts.id ORDER BY r.id DESC LIMIT 1) = $%d", boolInt(*f.Trusted))
	}
	query := `SELECT ` + hostColumns + ` FROM hosts` + w.sql()
	// queryAll closes the rows before the groups are read, on the same
	// connection for SQLite in memory.
	hs, err := queryAll(ctx, q.r, "list hosts", scanHost, query+` ORDER BY name`, w.args...)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if hs[i].FlavorGroupIDs, err = q.hostGroups(ctx, hs[i].ID); err != nil {
			return nil, fmt.Errorf("list hosts: %w", err)
		}
	}
	return hs, nil
}

// UpdateHost replaces the host's name, connection string, description,
// hardware UUID and flavor groups. ErrNotFound if there is no such host
// (or group), ErrConflict if the name is taken.
func (q *queries) UpdateHost(ctx context.Context, h Host) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `UPDATE hosts SET name = $2, connection_string = $3, description = $4,
			hardware_uuid = $5 WHERE id = $1`, h.ID, h.Name, h.ConnectionString, h.Description, h.HardwareUUID)
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("host name %q: %w", h.Name, ErrConflict)
		}
		if err := oneRow(res, err, fmt.Sprintf("update host %q", h.ID)); err != nil {
			return err
		}
		return q.setHostGroups(ctx, h.ID, h.FlavorGroupIDs)
	})
}

// SetHostHardwareUUID records the hardware UUID the host's agent reported.
func (q *queries) SetHostHardwareUUID(ctx context.Context, id, uuid string) error {
	res, err := q.w.ExecContext(ctx, `UPDATE hosts SET hardware_uuid = $2 WHERE id = $1`, id, uuid)
	return oneRow(res, err, fmt.Sprintf("set hardware uuid of host %q", id))
}

// SetHostStatus records the host's connection status at a time; connected
// also moves LastConnected to at.
func (q *queries) SetHostStatus(ctx context.Context, id, status string, at time.Time, connected bool) error {
	res, err := q.w.ExecContext(ctx, `UPDATE hosts SET status = $2, status_at = $3,
		last_connected = CASE WHEN $4 = 1 THEN $3 ELSE last_connected END WHERE id = $1`,
		id, status, at.UnixMicro(), boolInt(connected))
	return oneRow(res, err, fmt.Sprintf("set status of host %q", id))
}

// SetHostBoot records the boot of the host's last verified quote.
func (q *queries) SetHostBoot(ctx context.Context, id string, b HostBoot) error {
	res, err := q.w.ExecContext(ctx, `UPDATE hosts SET reset_count = $2, rebooted_at = $3, boot_state = $4 WHERE id = $1`,
		id, resetCount(b), dbTime(b.RebootedAt), dbBytes(b.State))
	return oneRow(res, err, fmt.Sprintf("set boot of host %q", id))
}

// DeleteHost deletes the host with its reports, its group memberships, its
// AK enrollment and the flavors bound to it (so that a host registered again
// under the same id never inherits old golden measurements nor an AK it did
// not enroll, and its machine enrolls again under any id); ErrNotFound if
// there is none.
func (q *queries) DeleteHost(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM hosts WHERE id = $1`, id)
		if err := oneRow(res, err, fmt.Sprintf("delete host %q", id)); err != nil {
			return err
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM flavors WHERE host_id = $1`, id); err != nil {
			return fmt.Errorf("delete flavors of host %q: %w", id, err)
		}
		if _, err := q.w.ExecContext(ctx, `DELETE FROM ak_enrollments WHERE host_id = $1`, id); err != nil {
			return fmt.Errorf("delete the ak enrollment of host %q: %w", id, err)
		}
		return q.policiesChanged(ctx)
	})
}

// FlavorGroup is a flavor group; Policies is its match policy JSON.
type FlavorGroup struct {
	ID, Name  string
	Policies  []byte
	CreatedAt time.Time
}

// CreateFlavorGroup stores a group; ErrConflict if its ID or name is taken.
func (q *queries) CreateFlavorGroup(ctx context.Context, g FlavorGroup) error {
	return q.atomic(ctx, func(q *queries) error {
		_, err := q.w.ExecContext(ctx, `INSERT INTO flavor_groups (id, name, policies, created_at) VALUES ($1, $2, $3, $4)`,
			g.ID, g.Name, dbBytes(g.Policies), createdAt(g.CreatedAt))
		if err := created(err, fmt.Sprintf("flavor group %q", g.Name)); err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

const flavorGroupColumns = `id, name, policies, created_at`

func scanFlavorGroup(row interface{ Scan(...any) error }) (FlavorGroup, error) {
	var (
		g      FlavorGroup
		create sql.NullInt64
	)
	if err := row.Scan(&g.ID, &g.Name, &g.Policies, &create); err != nil {
		return FlavorGroup{}, err
	}
	g.CreatedAt = fromDBTime(create)
	return g, nil
}

func (q *queries) flavorGroup(ctx context.Context, what, where string, arg any) (FlavorGroup, error) {
	return queryOne(ctx, q.r, "flavor group "+what, scanFlavorGroup, `SELECT `+flavorGroupColumns+` FROM flavor_groups WHERE `+where, arg)
}

// FlavorGroupByID returns the group; ErrNotFound if none.
func (q *queries) FlavorGroupByID(ctx context.Context, id string) (FlavorGroup, error) {
	return q.flavorGroup(ctx, fmt.Sprintf("%q", id), `id = $1`, id)
}

// FlavorGroupByName returns the group of that name; ErrNotFound if none.
func (q *queries) FlavorGroupByName(ctx context.Context, name string) (FlavorGroup, error) {
	return q.flavorGroup(ctx, fmt.Sprintf("named %q", name), `name = $1`, name)
}

// ListFlavorGroups returns every group, by name.
func (q *queries) ListFlavorGroups(ctx context.Context) ([]FlavorGroup, error) {
	return queryAll(ctx, q.r, "list flavor groups", scanFlavorGroup, `SELECT `+flavorGroupColumns+` FROM flavor_groups ORDER BY name`)
}

// UpdateFlavorGroup replaces the group's name and policies; ErrNotFound if
// there is no such group, ErrConflict if the name is taken.
func (q *queries) UpdateFlavorGroup(ctx context.Context, g FlavorGroup) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `UPDATE flavor_groups SET name = $2, policies = $3 WHERE id = $1`,
			g.ID, g.Name, dbBytes(g.Policies))
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("flavor group %q: %w", g.Name, ErrConflict)
		}
		if err := oneRow(res, err, fmt.Sprintf("update flavor group %q", g.ID)); err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

// DeleteFlavorGroup deletes the group and its flavor memberships;
// ErrNotFound if there is none, ErrConflict if a host uses it.
func (q *queries) DeleteFlavorGroup(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM flavor_groups WHERE id = $1`, id)
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("flavor group %q is used by a host: %w", id, ErrConflict)
		} else if err := oneRow(res, err, fmt.Sprintf("delete flavor group %q", id)); err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

// Flavor is a stored signed flavor. HostID and HardwareUUID bind it to one
// host ("" = any host); Signed is the SignedFlavor JSON.
type Flavor struct {
	ID, Part, Label      string
	HostID, HardwareUUID string
	Signed               []byte
	GroupIDs             []string
	CreatedAt            time.Time
}

// FlavorFilter selects flavors; zero fields select all.
type FlavorFilter struct {
	ID, GroupID, HostID string
	Parts               []string
}

// CreateFlavor stores a flavor in its groups; ErrConflict if its ID is
// taken, ErrNotFound if a group does not exist.
func (q *queries) CreateFlavor(ctx context.Context, f Flavor) error {
	return q.atomic(ctx, func(q *queries) error {
		digest := sha256.Sum256(f.Signed)
		_, err := q.w.ExecContext(ctx, `INSERT INTO flavors (id, part, label, host_id, hardware_uuid, signed, signed_sha256, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			f.ID, f.Part, f.Label, f.HostID, f.HardwareUUID, dbBytes(f.Signed), digest[:], createdAt(f.CreatedAt))
		if err := created(err, fmt.Sprintf("flavor %q", f.ID)); err != nil {
			return err
		}
		for _, g := range f.GroupIDs {
			_, err := q.w.ExecContext(ctx, `INSERT INTO flavor_group_flavors (group_id, flavor_id) VALUES ($1, $2)
				ON CONFLICT DO NOTHING`, g, f.ID)
			if err = classify(err); errors.Is(err, errForeignKey) {
				return fmt.Errorf("flavor group %q of flavor %q: %w", g, f.ID, ErrNotFound)
			} else if err != nil {
				return fmt.Errorf("add flavor %q to group %q: %w", f.ID, g, err)
			}
		}
		return q.policiesChanged(ctx)
	})
}

const flavorColumns = `f.id, f.part, f.label, f.host_id, f.hardware_uuid, f.signed, f.created_at`

func scanFlavor(row interface{ Scan(...any) error }) (Flavor, error) {
	var (
		f      Flavor
		create sql.NullInt64
	)
	err := row.Scan(&f.ID, &f.Part, &f.Label, &f.HostID, &f.HardwareUUID, &f.Signed, &create)
	f.CreatedAt = fromDBTime(create)
	return f, err
}

func (q *queries) flavors(ctx context.Context, what, query string, args ...any) ([]Flavor, error) {
	// queryAll closes the rows before the groups are read, on the same
	// connection for SQLite in memory.
	fs, err := queryAll(ctx, q.r, what, scanFlavor, query, args...)
	if err != nil {
		return nil, err
	}
	for i := range fs {
		if fs[i].GroupIDs, err = q.strings(ctx,
			`SELECT group_id FROM flavor_group_flavors WHERE flavor_id = $1 ORDER BY group_id`, fs[i].ID); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return fs, nil
}

// FlavorByID returns the flavor; ErrNotFound if none.
func (q *queries) FlavorByID(ctx context.Context, id string) (Flavor, error) {
	fs, err := q.flavors(ctx, fmt.Sprintf("read flavor %q", id), `SELECT `+flavorColumns+` FROM flavors f WHERE f.id = $1`, id)
	if err != nil {
		return Flavor{}, err
	}
	if len(fs) == 0 {
		return Flavor{}, fmt.Errorf("flavor %q: %w", id, ErrNotFound)
	}
	return fs[0], nil
}

// ListFlavors returns the flavors the filter selects, oldest first.
func (q *queries) ListFlavors(ctx context.Context, f FlavorFilter) ([]Flavor, error) {
	var w whereClause
	if f.ID != "" {
		w.add("f.id = $%d", f.ID)
	}
	if f.HostID != "" {
		w.add("f.host_id = $%d", f.HostID)
	}
	if f.GroupID != "" {
		w.add("EXISTS (SELECT 1 FROM flavor_group_flavors g WHERE g.flavor_id = f.id AND g.group_id = $%d)", f.GroupID)
	}
	if len(f.Parts) > 0 {
		in := make([]string, len(f.Parts))
		for i, p := range f.Parts {
			in[i] = w.param(p)
		}
		w.where = append(w.where, "f.part IN ("+strings.Join(in, ", ")+")")
	}
	query := `SELECT ` + flavorColumns + ` FROM flavors f` + w.sql()
	return q.flavors(ctx, "list flavors", query+` ORDER BY f.created_at, f.id`, w.args...)
}

// HostFlavors returns the flavors of a group that apply to a host: those
// bound to no host or to this one (by host id and by hardware UUID).
//
// The flavors are found by their binding (index flavors_binding_refs)
// and then checked for membership of the group, never the other way round:
// a group such as automatic holds every host's flavors, and the cost of a
// report must not grow with the fleet.
func (q *queries) HostFlavors(ctx context.Context, groupID, hostID, hardwareUUID string) ([]Flavor, error) {
	return q.flavors(ctx, fmt.Sprintf("flavors of host %q in group %q", hostID, groupID),
		`SELECT `+flavorColumns+` FROM flavors f
		WHERE f.host_id IN ('', $2) AND f.hardware_uuid IN ('', $3)
		AND EXISTS (SELECT 1 FROM flavor_group_flavors g WHERE g.group_id = $1 AND g.flavor_id = f.id)
		ORDER BY f.created_at, f.id`, groupID, hostID, hardwareUUID)
}

// FlavorRef names a stored flavor and the SHA-256 of its signed bytes
// (nil for a flavor stored before migration 0009).
type FlavorRef struct {
	ID, Part     string
	SignedSHA256 []byte
}

// HostFlavorRefs is HostFlavors without the signed documents and groups:
// one query that names the flavors, for a reader that has most of them
// (HVS's cache of verified flavors) and reads the others with
// FlavorSigned.
func (q *queries) HostFlavorRefs(ctx context.Context, groupID, hostID, hardwareUUID string) ([]FlavorRef, error) {
	return queryAll(ctx, q.r, fmt.Sprintf("flavors of host %q in group %q", hostID, groupID),
		func(row interface{ Scan(...any) error }) (FlavorRef, error) {
			var f FlavorRef
			err := row.Scan(&f.ID, &f.Part, &f.SignedSHA256)
			if len(f.SignedSHA256) != sha256.Size {
				f.SignedSHA256 = nil
			}
			return f, err
		},
		hostFlavorRefsQuery, groupID, hostID, hardwareUUID)
}

// hostFlavorRefsQuery reads the index flavors_binding_refs only, never
// the flavor rows with their signed documents.
const hostFlavorRefsQuery = `SELECT f.id, f.part, f.signed_sha256 FROM flavors f
		WHERE f.host_id IN ('', $2) AND f.hardware_uuid IN ('', $3)
		AND EXISTS (SELECT 1 FROM flavor_group_flavors g WHERE g.group_id = $1 AND g.flavor_id = f.id)
		ORDER BY f.created_at, f.id`

// FlavorSigned returns the signed bytes of a flavor; ErrNotFound if none.
func (q *queries) FlavorSigned(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := q.r.QueryRowContext(ctx, `SELECT signed FROM flavors WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("flavor %q: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("flavor %q: %w", id, err)
	}
	return b, nil
}

// DeleteFlavor deletes the flavor; ErrNotFound if there is none.
func (q *queries) DeleteFlavor(ctx context.Context, id string) error {
	return q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM flavors WHERE id = $1`, id)
		if err := oneRow(res, err, fmt.Sprintf("delete flavor %q", id)); err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

// DeleteHostFlavors deletes the flavors bound to the host whose part is one
// of parts, and returns how many it deleted.
func (q *queries) DeleteHostFlavors(ctx context.Context, hostID string, parts []string) (int64, error) {
	if hostID == "" || len(parts) == 0 {
		return 0, nil
	}
	args := []any{hostID}
	var in []string
	for _, p := range parts {
		args = append(args, p)
		in = append(in, fmt.Sprintf("$%d", len(args)))
	}
	var n int64
	err := q.atomic(ctx, func(q *queries) error {
		res, err := q.w.ExecContext(ctx, `DELETE FROM flavors WHERE host_id = $1 AND part IN (`+strings.Join(in, ", ")+`)`, args...)
		if err != nil {
			return fmt.Errorf("delete flavors of host %q: %w", hostID, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("delete flavors of host %q: %w", hostID, err)
		}
		return q.policiesChanged(ctx)
	})
	return n, err
}

// Report is a stored trust report: its JSON and its compact JWS.
type Report struct {
	ID, HostID, HostName string
	Trusted              bool
	CreatedAt, ExpiresAt time.Time
	JSON                 []byte
	JWS                  string
}

// ReportFilter selects reports; zero fields select all. Reports come newest
// first (by ID, which is time-ordered).
type ReportFilter struct {
	HostID, HostName string
	// LatestPerHost keeps only the newest report of each host.
	LatestPerHost bool
	// From and To bound CreatedAt (inclusive; zero means unbounded).
	From, To time.Time
	// AfterID continues a listing after the report with this ID (keyset).
	AfterID string
	// Limit bounds the number of reports (0 means no limit).
	Limit int
}

// CreateReport stores a report; ErrConflict if its ID is taken, ErrNotFound
// if its host does not exist. A report whose JWS is compact with its JSON
// as the payload is stored without repeating them (detachJWS).
func (q *queries) CreateReport(ctx context.Context, r Report) error {
	return q.atomic(ctx, func(q *queries) error {
		jws, header, h := q.reportJWS(r)
		// The header is stored before the report that names it, unless
		// it is known to be stored; one row per header.
		if header != nil && !q.headers.isStored(h) {
			if _, err := q.w.ExecContext(ctx, insertJWSHeader, header, h); err != nil {
				return fmt.Errorf("create report %q: jws header: %w", r.ID, err)
			}
		}
		_, err := q.w.ExecContext(ctx, `INSERT INTO reports (id, host_id, host_name, trusted, created_at, expires_at, report, jws, jws_header)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.ID, r.HostID, r.HostName, boolInt(r.Trusted), createdAt(r.CreatedAt), r.ExpiresAt.UnixMicro(),
			dbBytes(r.JSON), jws, header)
		switch err = classify(err); {
		case errors.Is(err, errUnique):
			return fmt.Errorf("report %q: %w", r.ID, ErrConflict)
		case errors.Is(err, errForeignKey):
			return fmt.Errorf("host %q of report %q: %w", r.HostID, r.ID, ErrNotFound)
		case err != nil:
			return fmt.Errorf("create report %q: %w", r.ID, err)
		}
		return nil
	})
}

// reportJWS is what a report row keeps of r.JWS: its signature and the
// SHA-256 of its header h (detachJWS), or the whole JWS and a nil header.
func (q *queries) reportJWS(r Report) (jws string, header []byte, h string) {
	h, sig, ok := detachJWS(r.JSON, r.JWS)
	if !ok {
		return r.JWS, nil, ""
	}
	digest := q.headers.digest(h)
	return sig, digest[:], h
}

// detachJWS splits a compact JWS whose payload is json, base64url-encoded
// as JWS compact serialization encodes it, into its protected header and
// its signature: header + "." + base64url(json) + "." + signature is jws
// again, byte for byte (attachJWS). ok is false for any other JWS, which
// is stored whole.
func detachJWS(json []byte, jws string) (header, signature string, ok bool) {
	header, rest, ok := strings.Cut(jws, ".")
	if !ok || header == "" {
		return "", "", false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(signature, ".") || len(payload) != base64.RawURLEncoding.EncodedLen(len(json)) {
		return "", "", false
	}
	if !encodes(payload, json) {
		return "", "", false
	}
	return header, signature, true
}

// encodes reports whether payload is json in base64url without padding,
// encoded and compared a block at a time, without allocating; not
// decoded, since decoding accepts more than one encoding of the same
// bytes.
func encodes(payload string, json []byte) bool {
	const block = 48 // bytes, 64 characters
	var buf [64]byte
	for len(json) > 0 {
		n := min(len(json), block)
		m := base64.RawURLEncoding.EncodedLen(n)
		base64.RawURLEncoding.Encode(buf[:m], json[:n])
		if len(payload) < m || payload[:m] != string(buf[:m]) {
			return false
		}
		json, payload = json[n:], payload[m:]
	}
	return payload == ""
}

// attachJWS is the compact JWS that detachJWS split.
func attachJWS(header string, json []byte, signature string) string {
	var b strings.Builder
	b.Grow(len(header) + base64.RawURLEncoding.EncodedLen(len(json)) + len(signature) + 2)
	b.WriteString(header)
	b.WriteByte('.')
	enc := base64.NewEncoder(base64.RawURLEncoding, &b)
	_, _ = enc.Write(json) // a strings.Builder does not fail
	_ = enc.Close()
	b.WriteByte('.')
	b.WriteString(signature)
	return b.String()
}

// reportColumns and reportFrom read a report with the header of its JWS,
// when it was stored without it.
const (
	reportColumns = `r.id, r.host_id, r.host_name, r.trusted, r.created_at, r.expires_at, r.report, r.jws,
	r.jws_header, jh.header`
	reportFrom = ` FROM reports r LEFT JOIN report_jws_headers jh ON jh.sha256 = r.jws_header`
)

func scanReport(row interface{ Scan(...any) error }) (Report, error) {
	var (
		r               Report
		trusted         int64
		create, expires sql.NullInt64
		headerSHA256    []byte
		header          sql.NullString
	)
	if err := row.Scan(&r.ID, &r.HostID, &r.HostName, &trusted, &create, &expires, &r.JSON, &r.JWS,
		&headerSHA256, &header); err != nil {
		return Report{}, err
	}
	switch {
	case headerSHA256 == nil: // stored whole
	case !header.Valid:
		return Report{}, fmt.Errorf("report %q: the header of its jws is not stored", r.ID)
	default:
		r.JWS = attachJWS(header.String, r.JSON, r.JWS)
	}
	r.Trusted = trusted == 1
	r.CreatedAt, r.ExpiresAt = fromDBTime(create), fromDBTime(expires)
	return r, nil
}

// ReportByID returns the report; ErrNotFound if none.
func (q *queries) ReportByID(ctx context.Context, id string) (Report, error) {
	return queryOne(ctx, q.r, fmt.Sprintf("report %q", id), scanReport, `SELECT `+reportColumns+reportFrom+` WHERE r.id = $1`, id)
}

// ListReports returns the reports the filter selects, newest first.
func (q *queries) ListReports(ctx context.Context, f ReportFilter) ([]Report, error) {
	var w whereClause
	if f.HostID != "" {
		w.add("r.host_id = $%d", f.HostID)
	}
	if f.HostName != "" {
		w.add("r.host_id IN (SELECT id FROM hosts WHERE name = $%d)", f.HostName)
	}
	if !f.From.IsZero() {
		w.add("r.created_at >= $%d", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		w.add("r.created_at <= $%d", f.To.UnixMicro())
	}
	if f.AfterID != "" {
		w.add("r.id < $%d", f.AfterID)
	}
	if f.LatestPerHost {
		w.where = append(w.where, "r.id = (SELECT MAX(l.id) FROM reports l WHERE l.host_id = r.host_id)")
	}
	query := `SELECT ` + reportColumns + reportFrom + w.sql()
	query += " ORDER BY r.id DESC"
	if f.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return queryAll(ctx, q.r, "list reports", scanReport, query, w.args...)
}

// whereClause collects the ANDed conditions of a WHERE clause and their
// arguments.
type whereClause struct {
	where []string
	args  []any
}

// param adds an argument and returns its placeholder.
func (w *whereClause) param(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// add adds a condition whose %d is the number of v's placeholder.
func (w *whereClause) add(cond string, v any) {
	w.args = append(w.args, v)
	w.where = append(w.where, fmt.Sprintf(cond, len(w.args)))
}

// sql is " WHERE" and the conditions, or nothing when there is none.
func (w *whereClause) sql() string {
	if len(w.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.where, " AND ")
}

// queryOne scans the one row query selects. Its error names what (host
// "h1"), and wraps ErrNotFound when there is no such row.
func queryOne[T any](ctx context.Context, r querier, what string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) (T, error) {
	v, err := scan(r.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	} else if err != nil {
		var zero T
		return zero, fmt.Errorf("read %s: %w", what, err)
	}
	return v, nil
}

// The store's side of a trust report (issue 13): what a report reads of its
// host in two statements, one before the quote (HostForReport) and one
// after it (ReportPolicies), and what it writes in two (CommitReport). On
// SQLite every statement outside a transaction is a read transaction of
// its own, with its locks, so a report runs as few as it can.

// reportReads is the queries of a report's reads outside a transaction:
// on an SQLite file they run on the writer's connection. Every commit
// empties the page cache of the other connections (WAL), so a reader
// reads the same pages again at every report; the writer's cache holds
// them, as the writer made the commit.
func (s *Store) reportReads() *queries {
	q := s.queries
	if s.writes != nil {
		q.r = sqliteQueries{src: s.writes}
	}
	return &q
}

// HostForReport is queries.HostForReport, on an SQLite file on the
// writer's connection (reportReads).
func (s *Store) HostForReport(ctx context.Context, id string) (ReportHost, error) {
	return s.reportReads().HostForReport(ctx, id)
}

// ReportPolicies is queries.ReportPolicies, on an SQLite file on the
// writer's connection (reportReads).
func (s *Store) ReportPolicies(ctx context.Context, hostID, hardwareUUID string) (ReportPolicies, error) {
	return s.reportReads().ReportPolicies(ctx, hostID, hardwareUUID)
}

// AKEnrollmentByHost is queries.AKEnrollmentByHost, on an SQLite file on
// the writer's connection (reportReads): every report reads the host's
// enrollment (enroll.Enroller.VerifyAK) before its quote.
func (s *Store) AKEnrollmentByHost(ctx context.Context, hostID string) (AKEnrollment, error) {
	return s.reportReads().AKEnrollmentByHost(ctx, hostID)
}

// ReportHost is what a report reads of its host before it asks for a quote.
type ReportHost struct {
	// Host is the host without its FlavorGroupIDs, which ReportPolicies
	// reads with the groups.
	Host Host
	// DisabledAt is when the host was disabled; zero if it is not.
	DisabledAt time.Time
	// PolicyGeneration is the policy generation at the read: policies read
	// at it (ReportPolicies.Generation) are the stored ones.
	PolicyGeneration int64
	// Enrollment is the host's AK enrollment (AKEnrollmentByHost); nil if
	// it has none.
	Enrollment *AKEnrollment
}

// HostForReport reads, in one statement, the host (without its groups),
// whether it is disabled, the policy generation and the host's AK
// enrollment. ErrNotFound if there is no such host.
func (q *queries) HostForReport(ctx context.Context, id string) (ReportHost, error) {
	var (
		disabled sql.NullInt64
		gen      int64
		enr      AKEnrollment
		enrolled sql.NullString
		created  sql.NullInt64
		banks    sql.NullString
		ekSHA256 sql.NullString
	)
	h, err := queryOne(ctx, q.r, fmt.Sprintf("host %q", id), func(row interface{ Scan(...any) error }) (Host, error) {
		return scanHost(scanAlso{row, []any{&disabled, &gen, &enrolled, &enr.AKName, &enr.AKPublic, &enr.AKCertificate,
			&enr.EKCertificate, &ekSHA256, &created, &banks}})
	}, hostForReportQuery, id)
	if err != nil {
		return ReportHost{}, err
	}
	rh := ReportHost{Host: h, DisabledAt: fromDBTime(disabled), PolicyGeneration: gen}
	if enrolled.Valid {
		enr.HostID, enr.EKPublicSHA256, enr.CreatedAt = enrolled.String, ekSHA256.String, fromDBTime(created)
		enr.PCRBanks = splitBanks(banks.String)
		rh.Enrollment = &enr
	}
	return rh, nil
}

// hostForReportQuery is the host's row, its disabled mark, the policy
// generation and its AK enrollment's row (akEnrollmentColumns, NULL when
// it has none; renamed, so that hostColumns name the host's own).
const hostForReportQuery = `SELECT ` + hostColumns + `,
	(SELECT d.disabled_at FROM disabled_hosts d WHERE d.host_id = hosts.id), ` + policyGenerationQuery + `,
	a.enrolled_host, a.ak_name, a.ak_public, a.ak_certificate, a.ek_certificate, a.ek_public_sha256, a.enrolled_at, a.pcr_banks
	FROM hosts LEFT JOIN (SELECT host_id AS enrolled_host, ak_name, ak_public, ak_certificate, ek_certificate,
		ek_public_sha256, created_at AS enrolled_at, pcr_banks FROM ak_enrollments) a ON a.enrolled_host = hosts.id
	WHERE hosts.id = $1`

// scanAlso scans a row's last columns into also, after the columns asked for.
type scanAlso struct {
	row  interface{ Scan(...any) error }
	also []any
}

func (s scanAlso) Scan(dest ...any) error { return s.row.Scan(append(dest, s.also...)...) }

// ReportPolicies is what a report reads of the policies that apply to its
// host once it has the quote.
type ReportPolicies struct {
	// Groups are the host's flavor groups, by ID.
	Groups []FlavorGroup
	// FlavorRefs holds, by group ID, HostFlavorRefs of the group for the
	// host and the hardware UUID asked for.
	FlavorRefs map[string][]FlavorRef
	// IMAPolicies is HostIMAPolicies of the host.
	IMAPolicies HostIMAPolicies
	// Generation is the policy generation they were read at.
	Generation int64
}

// ReportPolicies reads, in one statement, the host's flavor groups, the
// references of the flavors of each group that apply to it (bound to no
// host, or to its ID and hardwareUUID), its IMA policies and the policy
// generation they are of.
func (q *queries) ReportPolicies(ctx context.Context, hostID, hardwareUUID string) (ReportPolicies, error) {
	rows, err := q.r.QueryContext(ctx, reportPoliciesQuery, hostID, hardwareUUID)
	if err != nil {
		return ReportPolicies{}, fmt.Errorf("read the policies of host %q: %w", hostID, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports iteration errors
	out := ReportPolicies{FlavorRefs: map[string][]FlavorRef{}, IMAPolicies: HostIMAPolicies{Groups: map[string]IMAPolicyRef{}}}
	for rows.Next() {
		var (
			kind       int64
			t1, t2, t3 string
			n          sql.NullInt64
			b          []byte
		)
		if err := rows.Scan(&kind, &t1, &t2, &t3, &n, &b); err != nil {
			return ReportPolicies{}, fmt.Errorf("read the policies of host %q: %w", hostID, err)
		}
		switch kind {
		case reportRowGeneration:
			out.Generation = n.Int64
		case reportRowGroup:
			out.Groups = append(out.Groups, FlavorGroup{ID: t1, Name: t2, Policies: b, CreatedAt: fromDBTime(n)})
		case reportRowFlavor:
			ref := FlavorRef{ID: t2, Part: t3, SignedSHA256: b}
			if len(ref.SignedSHA256) != sha256.Size {
				ref.SignedSHA256 = nil
			}
			out.FlavorRefs[t1] = append(out.FlavorRefs[t1], ref)
		case reportRowHostPolicy, reportRowGroupPolicy:
			ref := IMAPolicyRef{PolicyID: t2, Name: t3, Version: n.Int64, SHA256: b}
			if kind == reportRowHostPolicy {
				out.IMAPolicies.Host = &ref
			} else {
				out.IMAPolicies.Groups[t1] = ref
			}
		}
	}
	if err := rows.Err(); err != nil {
		return ReportPolicies{}, fmt.Errorf("read the policies of host %q: %w", hostID, err)
	}
	return out, nil
}

// The kinds of row of reportPoliciesQuery, in the order they come.
const (
	reportRowGeneration = iota
	reportRowGroup
	reportRowFlavor
	reportRowHostPolicy
	reportRowGroupPolicy
)

// reportPoliciesQuery is one row with the policy generation, then one row
// per group, per flavor reference (by
// group, oldest first, as hostFlavorRefsQuery) and per IMA policy: a kind,
// three texts, an integer and bytes. The flavors are found by their binding
// (the covering index flavors_binding_refs, as hostFlavorRefsQuery), so the
// cost does not grow with the fleet: the binding's values are parameters,
// never columns of a joined row, which PostgreSQL would turn into an OR
// that reads every flavor bound by hardware UUID alone.
const reportPoliciesQuery = `SELECT 1, g.id, g.name, g.name, g.created_at, g.policies
	FROM host_flavor_groups hg JOIN flavor_groups g ON g.id = hg.group_id WHERE hg.host_id = $1
	UNION ALL
	SELECT 2, hg.group_id, f.id, f.part, f.created_at, f.signed_sha256
	FROM host_flavor_groups hg JOIN flavors f ON f.host_id IN ('', $1) AND f.hardware_uuid IN ('', $2)
	WHERE hg.host_id = $1 AND EXISTS (SELECT 1 FROM flavor_group_flavors fg WHERE fg.group_id = hg.group_id AND fg.flavor_id = f.id)
	UNION ALL
	SELECT 3, '', p.id, p.name, v.version, v.document_sha256` + imaPolicyFrom + `
	JOIN ima_policy_hosts a ON a.policy_id = p.id WHERE a.host_id = $1
	UNION ALL
	SELECT 4, a.group_id, p.id, p.name, v.version, v.document_sha256` + imaPolicyFrom + `
	JOIN ima_policy_groups a ON a.policy_id = p.id
	JOIN host_flavor_groups hg ON hg.group_id = a.group_id WHERE hg.host_id = $1
	UNION ALL
	SELECT 0, '', '', '', generation, NULL FROM hvs_policy_generation WHERE id = 1
	ORDER BY 1, 2, 5, 3`

// commitReportUpdate records a report's outcome on its host unless the host
// is disabled or the policy generation is not $9 (unless $9 is 0):
// hostReportedSet ($1 to $4), and the boot when $5 is 1 ($6 to $8).
// commitReportUpdateUUID also sets the hardware UUID to $10.
const (
	commitReportUpdate     = `UPDATE hosts SET ` + commitReportSet + commitReportWhere
	commitReportUpdateUUID = `UPDATE hosts SET ` + commitReportSet + `, hardware_uuid = $10` + commitReportWhere
	commitReportSet        = hostReportedSet + `,
		reset_count = CASE WHEN $5 = 1 THEN $6 ELSE reset_count END,
		rebooted_at = CASE WHEN $5 = 1 THEN $7 ELSE rebooted_at END,
		boot_state = CASE WHEN $5 = 1 THEN $8 ELSE boot_state END`
	commitReportWhere = `
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM disabled_hosts d WHERE d.host_id = $1)
		AND CAST($9 AS BIGINT) IN (0, ` + policyGenerationQuery + `)`
)

// HostReported is what the commit of a report records of its host.
type HostReported struct {
	// Status, At and Success are as in SetHostReported.
	Status  string
	At      time.Time
	Success bool
	// HardwareUUID, when not "", replaces the host's hardware UUID.
	HardwareUUID string
	// Boot, when not nil, replaces the host's boot (SetHostBoot).
	Boot *HostBoot
	// PolicyGeneration, when not 0, is the policy generation of the
	// policies the report was appraised against: the report is stored
	// only if that is still the generation.
	PolicyGeneration int64
}

// CommitReport stores the report of an enabled host and records its outcome
// (SetHostReported, SetHostHardwareUUID and SetHostBoot in one statement).
// When the host is disabled it writes nothing and returns when the host was
// disabled; ErrNotFound when there is no such host; ErrPoliciesChanged when
// o.PolicyGeneration is set and is no longer the policy generation. Run it
// in a transaction.
func (q *queries) CommitReport(ctx context.Context, r Report, o HostReported) (disabledAt time.Time, err error) {
	var boot HostBoot
	if o.Boot != nil {
		boot = *o.Boot
	}
	// The hardware UUID is assigned only when it changes: SQLite rewrites
	// the entries of an index (hosts_hardware_uuid) of every column a
	// statement assigns, changed or not.
	query, args := commitReportUpdate, []any{r.HostID, o.At.UnixMicro(), boolInt(o.Success), o.Status,
		boolInt(o.Boot != nil), resetCount(boot), dbTime(boot.RebootedAt), dbBytes(boot.State), o.PolicyGeneration}
	if o.HardwareUUID != "" {
		query, args = commitReportUpdateUUID, append(args, o.HardwareUUID)
	}
	res, err := q.w.ExecContext(ctx, query, args...)
	if err := oneRow(res, err, fmt.Sprintf("record the report of host %q", r.HostID)); errors.Is(err, ErrNotFound) {
		return q.notRecorded(ctx, r, o, err)
	} else if err != nil {
		return time.Time{}, err
	}
	return time.Time{}, q.CreateReport(ctx, r)
}

// notRecorded says why the commit of report r with outcome o recorded
// nothing: the host is disabled (when), or the policies changed
// (ErrPoliciesChanged), or else err (the host is gone).
func (q *queries) notRecorded(ctx context.Context, r Report, o HostReported, err error) (time.Time, error) {
	if at, derr := q.HostDisabled(ctx, r.HostID); derr != nil || !at.IsZero() {
		return at, derr
	}
	if o.PolicyGeneration != 0 {
		if g, gerr := q.PolicyGeneration(ctx); gerr != nil {
			return time.Time{}, gerr
		} else if g != o.PolicyGeneration {
			return time.Time{}, fmt.Errorf("report of host %q, appraised at policy generation %d, now %d: %w",
				r.HostID, o.PolicyGeneration, g, ErrPoliciesChanged)
		}
	}
	return time.Time{}, err
}

// CommitReportAlone is CommitReport in a transaction of its own: InTx, or
// InTxDeferredSync when deferSync. On PostgreSQL, once the header of the
// report's JWS is known to be stored, it is one statement, one round trip
// where the transaction takes five (BEGIN, SET LOCAL, UPDATE, INSERT,
// COMMIT). o.HardwareUUID must be "": a report that gives its host a
// hardware UUID checks that no other host holds it in the transaction
// that stores it.
func (s *Store) CommitReportAlone(ctx context.Context, r Report, o HostReported, deferSync bool) (disabledAt time.Time, err error) {
	if o.HardwareUUID != "" {
		return time.Time{}, fmt.Errorf("report of host %q: a hardware uuid is committed in a transaction", r.HostID)
	}
	if s.backend == backendPostgres {
		if jws, header, h := s.reportJWS(r); header != nil && s.headers.isStored(h) {
			return s.commitReportStatement(ctx, r, o, jws, header, deferSync)
		}
	}
	commit := s.InTx
	if deferSync {
		commit = s.InTxDeferredSync
	}
	err = commit(ctx, func(tx *Tx) error {
		disabledAt, err = tx.CommitReport(ctx, r, o)
		return err
	})
	return disabledAt, err
}

// commitReportStatement is CommitReportAlone on PostgreSQL in one
// statement (commitReportAlone), its own transaction; jws and header are
// what the row keeps of r.JWS (reportJWS).
func (s *Store) commitReportStatement(ctx context.Context, r Report, o HostReported, jws string, header []byte, deferSync bool) (time.Time, error) {
	var boot HostBoot
	if o.Boot != nil {
		boot = *o.Boot
	}
	query := commitReportAlone
	if deferSync {
		query = commitReportAloneDeferred
	}
	res, err := s.w.ExecContext(ctx, query, r.HostID, o.At.UnixMicro(), boolInt(o.Success), o.Status,
		boolInt(o.Boot != nil), resetCount(boot), dbTime(boot.RebootedAt), dbBytes(boot.State), o.PolicyGeneration,
		r.ID, r.HostName, boolInt(r.Trusted), createdAt(r.CreatedAt), r.ExpiresAt.UnixMicro(), dbBytes(r.JSON), jws, header)
	if err = classify(err); errors.Is(err, errUnique) {
		return time.Time{}, fmt.Errorf("report %q: %w", r.ID, ErrConflict)
	}
	if err := oneRow(res, err, fmt.Sprintf("record the report of host %q", r.HostID)); errors.Is(err, ErrNotFound) {
		return s.notRecorded(ctx, r, o, err)
	} else if err != nil {
		return time.Time{}, err
	}
	return time.Time{}, nil
}

// commitReportAlone records a report's outcome on its host as
// commitReportUpdate does ($1 to $9) and inserts the report ($10 to $17)
// only if the host's row was updated, in one statement (PostgreSQL: a
// data-modifying WITH). commitReportAloneDeferred also sets
// synchronous_commit off for the statement's own transaction
// (set_config's third argument), as SET LOCAL does in InTxDeferredSync;
// the host's update reads the setting, so that it is made.
const (
	commitReportAlone         = `WITH host AS (` + commitReportUpdate + ` RETURNING id)` + commitReportAloneInsert
	commitReportAloneDeferred = `WITH sync AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
	host AS (` + commitReportUpdate + ` AND EXISTS (SELECT 1 FROM sync WHERE v = 'off') RETURNING id)` + commitReportAloneInsert
	commitReportAloneInsert = `
	INSERT INTO reports (id, host_id, host_name, trusted, created_at, expires_at, report, jws, jws_header)
	SELECT $10, id, $11, CAST($12 AS BIGINT), CAST($13 AS BIGINT), CAST($14 AS BIGINT), CAST($15 AS BYTEA), $16,
		CAST($17 AS BYTEA) FROM host`
)
