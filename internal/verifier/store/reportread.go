package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The store's side of a trust report (issue 13): what a report reads of its
// host in one statement (HostForReport) and what it writes in two
// (CommitReport). On SQLite every statement outside a transaction is a read
// transaction of its own (file and WAL locks, and pages read again after
// each commit), so the number of statements a report runs is most of its
// store cost.

// ReportHost is what a report reads of its host.
type ReportHost struct {
	Host Host
	// DisabledAt is when the host was disabled; zero if it is not.
	DisabledAt time.Time
	// Groups are the host's flavor groups, in the order of
	// Host.FlavorGroupIDs.
	Groups []FlavorGroup
	// FlavorRefs holds, by group ID, HostFlavorRefs of the group for the
	// host and its stored hardware UUID.
	FlavorRefs map[string][]FlavorRef
	// IMAPolicies is HostIMAPolicies of the host.
	IMAPolicies HostIMAPolicies
}

// HostForReport reads, in one statement, the host, whether it is disabled,
// its flavor groups, the references of the flavors of each group that apply
// to it (bound to no host, or to its ID and its stored hardware UUID) and
// its IMA policies. ErrNotFound if there is no such host.
func (q *queries) HostForReport(ctx context.Context, id string) (ReportHost, error) {
	rows, err := q.r.QueryContext(ctx, hostForReportQuery, id)
	if err != nil {
		return ReportHost{}, fmt.Errorf("read host %q for a report: %w", id, err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports iteration errors
	out := ReportHost{FlavorRefs: map[string][]FlavorRef{}, IMAPolicies: HostIMAPolicies{Groups: map[string]IMAPolicyRef{}}}
	found := false
	for rows.Next() {
		var (
			kind int64
			t    [6]string
			n    [8]sql.NullInt64
			b    []byte
		)
		if err := rows.Scan(&kind, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5],
			&n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7], &b); err != nil {
			return ReportHost{}, fmt.Errorf("read host %q for a report: %w", id, err)
		}
		switch kind {
		case reportRowHost:
			found = true
			h := &out.Host
			h.ID, h.Name, h.ConnectionString, h.Description, h.HardwareUUID, h.Status = t[0], t[1], t[2], t[3], t[4], t[5]
			h.StatusAt, h.LastConnected = fromDBTime(n[0]), fromDBTime(n[1])
			h.Boot = HostBoot{Known: n[2].Valid, ResetCount: uint32(n[2].Int64), RebootedAt: fromDBTime(n[3]), State: b}
			h.CreatedAt, h.LastAttempt, h.LastSuccess = fromDBTime(n[4]), fromDBTime(n[5]), fromDBTime(n[6])
			out.DisabledAt = fromDBTime(n[7])
		case reportRowGroup:
			out.Host.FlavorGroupIDs = append(out.Host.FlavorGroupIDs, t[0])
			out.Groups = append(out.Groups, FlavorGroup{ID: t[0], Name: t[1], Policies: b, CreatedAt: fromDBTime(n[4])})
		case reportRowFlavor:
			ref := FlavorRef{ID: t[1], Part: t[2], SignedSHA256: b}
			if len(ref.SignedSHA256) != sha256.Size {
				ref.SignedSHA256 = nil
			}
			out.FlavorRefs[t[0]] = append(out.FlavorRefs[t[0]], ref)
		case reportRowHostPolicy, reportRowGroupPolicy:
			ref := IMAPolicyRef{PolicyID: t[1], Name: t[2], Version: n[0].Int64, SHA256: b}
			if kind == reportRowHostPolicy {
				out.IMAPolicies.Host = &ref
			} else {
				out.IMAPolicies.Groups[t[0]] = ref
			}
		}
	}
	if err := rows.Err(); err != nil {
		return ReportHost{}, fmt.Errorf("read host %q for a report: %w", id, err)
	}
	if !found {
		return ReportHost{}, fmt.Errorf("host %q: %w", id, ErrNotFound)
	}
	return out, nil
}

// The kinds of row of hostForReportQuery, in the order they come.
const (
	reportRowHost = iota
	reportRowGroup
	reportRowFlavor
	reportRowHostPolicy
	reportRowGroupPolicy
)

// hostForReportQuery is one row of the host (with its disabled mark), then
// one per group, per flavor reference (by group, oldest first, as
// hostFlavorRefsQuery) and per IMA policy. Its columns are a kind, six
// texts, eight integers and bytes; the host's row comes first and types
// every column, so that PostgreSQL types the literals of the other rows
// after it. The flavors are found by their binding (the covering index
// flavors_binding_refs, as hostFlavorRefsQuery), so the cost does not grow
// with the fleet: the binding's values are parameters and a scalar
// subquery, never columns of a joined row, which PostgreSQL would turn into
// an OR that reads every flavor bound by hardware UUID alone.
const hostForReportQuery = `SELECT 0, h.id, h.name, h.connection_string, h.description, h.hardware_uuid, h.status,
		h.status_at, h.last_connected, h.reset_count, h.rebooted_at, h.created_at, h.last_attempt, h.last_success,
		(SELECT d.disabled_at FROM disabled_hosts d WHERE d.host_id = h.id), h.boot_state
	FROM hosts h WHERE h.id = $1
	UNION ALL
	SELECT 1, g.id, g.name, '', '', '', '', 0, 0, 0, 0, g.created_at, 0, 0, 0, g.policies
	FROM host_flavor_groups hg JOIN flavor_groups g ON g.id = hg.group_id WHERE hg.host_id = $1
	UNION ALL
	SELECT 2, hg.group_id, f.id, f.part, '', '', '', 0, 0, 0, 0, f.created_at, 0, 0, 0, f.signed_sha256
	FROM host_flavor_groups hg JOIN flavors f ON f.host_id IN ('', $1)
	AND f.hardware_uuid IN ('', (SELECT h.hardware_uuid FROM hosts h WHERE h.id = $1))
	WHERE hg.host_id = $1 AND EXISTS (SELECT 1 FROM flavor_group_flavors fg WHERE fg.group_id = hg.group_id AND fg.flavor_id = f.id)
	UNION ALL
	SELECT 3, '', p.id, p.name, '', '', '', v.version, 0, 0, 0, 0, 0, 0, 0, v.document_sha256` + imaPolicyFrom + `
	JOIN ima_policy_hosts a ON a.policy_id = p.id WHERE a.host_id = $1
	UNION ALL
	SELECT 4, a.group_id, p.id, p.name, '', '', '', v.version, 0, 0, 0, 0, 0, 0, 0, v.document_sha256` + imaPolicyFrom + `
	JOIN ima_policy_groups a ON a.policy_id = p.id
	JOIN host_flavor_groups hg ON hg.group_id = a.group_id WHERE hg.host_id = $1
	ORDER BY 1, 2, 12, 3`

// commitReportUpdate records a report's outcome on its host unless the host
// is disabled: hostReportedSet ($1 to $4), and the boot when $5 is 1 ($6
// to $8). commitReportUpdateUUID also sets the hardware UUID to $9.
const (
	commitReportUpdate     = `UPDATE hosts SET ` + commitReportSet + commitReportWhere
	commitReportUpdateUUID = `UPDATE hosts SET ` + commitReportSet + `, hardware_uuid = $9` + commitReportWhere
	commitReportSet        = hostReportedSet + `,
		reset_count = CASE WHEN $5 = 1 THEN $6 ELSE reset_count END,
		rebooted_at = CASE WHEN $5 = 1 THEN $7 ELSE rebooted_at END,
		boot_state = CASE WHEN $5 = 1 THEN $8 ELSE boot_state END`
	commitReportWhere = `
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM disabled_hosts d WHERE d.host_id = $1)`
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
}

// CommitReport stores the report of an enabled host and records its outcome
// (SetHostReported, SetHostHardwareUUID and SetHostBoot in one statement).
// When the host is disabled it writes nothing and returns when the host was
// disabled; ErrNotFound when there is no such host. Run it in a transaction.
func (q *queries) CommitReport(ctx context.Context, r Report, o HostReported) (disabledAt time.Time, err error) {
	var boot HostBoot
	if o.Boot != nil {
		boot = *o.Boot
	}
	// The hardware UUID is assigned only when it changes: SQLite rewrites
	// the entries of an index (hosts_hardware_uuid) of every column a
	// statement assigns, changed or not.
	query, args := commitReportUpdate, []any{r.HostID, o.At.UnixMicro(), boolInt(o.Success), o.Status,
		boolInt(o.Boot != nil), resetCount(boot), dbTime(boot.RebootedAt), dbBytes(boot.State)}
	if o.HardwareUUID != "" {
		query, args = commitReportUpdateUUID, append(args, o.HardwareUUID)
	}
	res, err := q.w.ExecContext(ctx, query, args...)
	if err := oneRow(res, err, fmt.Sprintf("record the report of host %q", r.HostID)); errors.Is(err, ErrNotFound) {
		// No row: the host is disabled, or gone.
		if at, derr := q.HostDisabled(ctx, r.HostID); derr != nil || !at.IsZero() {
			return at, derr
		}
		return time.Time{}, err
	} else if err != nil {
		return time.Time{}, err
	}
	return time.Time{}, q.CreateReport(ctx, r)
}
