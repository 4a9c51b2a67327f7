package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// IMA runtime policies (issue 16, migration 0011): a policy has a name and
// versions; every update adds the next version, which reports then use. A
// version's document and signature are opaque here (HVS signs, package
// imapolicy parses). A policy is assigned to hosts and to flavor groups; a
// host's own assignment wins over its groups'.

// IMAPolicy is a policy without its documents.
type IMAPolicy struct {
	ID, Name, Description string
	// LatestVersion is the version reports use: 1 at creation, one more at
	// every update.
	LatestVersion int64
	// LatestSHA256 is the SHA-256 of the latest version's document.
	LatestSHA256         []byte
	CreatedAt, UpdatedAt time.Time
}

// IMAPolicyVersion is one version of a policy: its document and HVS's
// signature of it.
type IMAPolicyVersion struct {
	PolicyID string
	Version  int64
	Document []byte
	// SHA256 is the SHA-256 of Document, set by the store.
	SHA256    []byte
	Signature string
	CreatedAt time.Time
}

// IMAPolicyRef names the version of a policy that applies: what a report
// needs to find the compiled policy in a cache, or to read its document.
type IMAPolicyRef struct {
	PolicyID, Name string
	Version        int64
	SHA256         []byte
}

// HostIMAPolicies are the policies that apply to a host: its own (nil if
// none) and those of its flavor groups, by group id.
type HostIMAPolicies struct {
	Host   *IMAPolicyRef
	Groups map[string]IMAPolicyRef
}

// For returns the policy a flavor group of the host is appraised with: the
// host's own, else the group's; ok is false when there is none.
func (h HostIMAPolicies) For(groupID string) (IMAPolicyRef, bool) {
	if h.Host != nil {
		return *h.Host, true
	}
	r, ok := h.Groups[groupID]
	return r, ok
}

// IMAPolicyAssignments are the hosts and flavor groups a policy is assigned to.
type IMAPolicyAssignments struct {
	HostIDs, GroupIDs []string
}

const imaPolicyColumns = `p.id, p.name, p.description, p.latest_version, v.document_sha256, p.created_at, p.updated_at`

const imaPolicyFrom = ` FROM ima_policies p JOIN ima_policy_versions v ON v.policy_id = p.id AND v.version = p.latest_version`

func scanIMAPolicy(row interface{ Scan(...any) error }) (IMAPolicy, error) {
	var (
		p                IMAPolicy
		created, updated sql.NullInt64
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.LatestVersion, &p.LatestSHA256, &created, &updated); err != nil {
		return IMAPolicy{}, err
	}
	p.CreatedAt, p.UpdatedAt = fromDBTime(created), fromDBTime(updated)
	return p, nil
}

// CreateIMAPolicy stores a new policy with its first version (v.Version
// must be 1). ErrConflict if the id or the name is taken.
func (q *queries) CreateIMAPolicy(ctx context.Context, p IMAPolicy, v IMAPolicyVersion) error {
	if p.ID == "" || p.Name == "" {
		return errors.New("create ima policy: id and name are required")
	}
	if v.Version != 1 {
		return fmt.Errorf("create ima policy %q: the first version is 1, not %d", p.Name, v.Version)
	}
	return q.atomic(ctx, func(q *queries) error {
		at := createdAt(p.CreatedAt)
		_, err := q.w.ExecContext(ctx, `INSERT INTO ima_policies (id, name, description, latest_version, created_at, updated_at)
			VALUES ($1, $2, $3, 1, $4, $4)`, p.ID, p.Name, p.Description, at)
		if err := created(err, fmt.Sprintf("ima policy %q", p.Name)); err != nil {
			return err
		}
		if err := q.policiesChanged(ctx); err != nil {
			return err
		}
		v.PolicyID = p.ID
		if v.CreatedAt.IsZero() {
			v.CreatedAt = time.UnixMicro(at)
		}
		return q.insertIMAPolicyVersion(ctx, v)
	})
}

func (q *queries) insertIMAPolicyVersion(ctx context.Context, v IMAPolicyVersion) error {
	digest := sha256.Sum256(v.Document)
	_, err := q.w.ExecContext(ctx, `INSERT INTO ima_policy_versions (policy_id, version, document, document_sha256, signature, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, v.PolicyID, v.Version, dbBytes(v.Document), digest[:], v.Signature, createdAt(v.CreatedAt))
	switch err = classify(err); {
	case errors.Is(err, errUnique):
		return fmt.Errorf("ima policy %q version %d: %w", v.PolicyID, v.Version, ErrConflict)
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("ima policy %q: %w", v.PolicyID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store ima policy %q version %d: %w", v.PolicyID, v.Version, err)
	}
	return q.policiesChanged(ctx)
}

// AddIMAPolicyVersion stores the next version of a policy and makes it the
// latest; description replaces the policy's unless nil. v.Version must be
// the latest version plus one: ErrConflict if another update stored it
// first (read the policy and try again), ErrNotFound if there is no policy.
func (q *queries) AddIMAPolicyVersion(ctx context.Context, v IMAPolicyVersion, description *string) error {
	return q.atomic(ctx, func(q *queries) error {
		p, err := q.IMAPolicyByID(ctx, v.PolicyID)
		if err != nil {
			return err
		}
		if v.Version != p.LatestVersion+1 {
			return fmt.Errorf("ima policy %q is at version %d, not %d: %w", p.Name, p.LatestVersion, v.Version-1, ErrConflict)
		}
		if err := q.insertIMAPolicyVersion(ctx, v); err != nil {
			return err
		}
		if description != nil {
			p.Description = *description
		}
		res, err := q.w.ExecContext(ctx, `UPDATE ima_policies SET latest_version = $2, description = $3, updated_at = $4
			WHERE id = $1 AND latest_version = $5`, p.ID, v.Version, p.Description, createdAt(v.CreatedAt), p.LatestVersion)
		if err := oneRow(res, err, fmt.Sprintf("update ima policy %q", p.Name)); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("ima policy %q changed meanwhile: %w", p.Name, ErrConflict)
		} else if err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

func (q *queries) imaPolicy(ctx context.Context, what, where string, arg any) (IMAPolicy, error) {
	return queryOne(ctx, q.r, "ima policy "+what, scanIMAPolicy, `SELECT `+imaPolicyColumns+imaPolicyFrom+` WHERE `+where, arg)
}

// IMAPolicyByID returns the policy; ErrNotFound if none.
func (q *queries) IMAPolicyByID(ctx context.Context, id string) (IMAPolicy, error) {
	return q.imaPolicy(ctx, fmt.Sprintf("%q", id), `p.id = $1`, id)
}

// IMAPolicyByName returns the policy of that name; ErrNotFound if none.
func (q *queries) IMAPolicyByName(ctx context.Context, name string) (IMAPolicy, error) {
	return q.imaPolicy(ctx, fmt.Sprintf("named %q", name), `p.name = $1`, name)
}

// ListIMAPolicies returns every policy, without documents, by name.
func (q *queries) ListIMAPolicies(ctx context.Context) ([]IMAPolicy, error) {
	return queryAll(ctx, q.r, "list ima policies", scanIMAPolicy,
		`SELECT `+imaPolicyColumns+imaPolicyFrom+` ORDER BY p.name`)
}

// IMAPolicyVersion returns a version of a policy with its document and
// signature (version 0: the latest); ErrNotFound if there is none.
func (q *queries) IMAPolicyVersion(ctx context.Context, policyID string, version int64) (IMAPolicyVersion, error) {
	v := IMAPolicyVersion{PolicyID: policyID}
	var created sql.NullInt64
	which, args := `p.latest_version`, []any{policyID}
	if version != 0 {
		which, args = `$2`, append(args, version)
	}
	err := q.r.QueryRowContext(ctx, `SELECT v.version, v.document, v.document_sha256, v.signature, v.created_at
		FROM ima_policy_versions v JOIN ima_policies p ON p.id = v.policy_id
		WHERE v.policy_id = $1 AND v.version = `+which, args...).Scan(&v.Version, &v.Document, &v.SHA256, &v.Signature, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return IMAPolicyVersion{}, fmt.Errorf("ima policy %q version %d: %w", policyID, version, ErrNotFound)
	} else if err != nil {
		return IMAPolicyVersion{}, fmt.Errorf("read ima policy %q version %d: %w", policyID, version, err)
	}
	v.CreatedAt = fromDBTime(created)
	return v, nil
}

// DeleteIMAPolicy deletes a policy with all its versions; ErrNotFound if
// there is none, ErrConflict if it is assigned to a host or flavor group,
// unless force, which deletes its assignments too.
func (q *queries) DeleteIMAPolicy(ctx context.Context, id string, force bool) error {
	return q.atomic(ctx, func(q *queries) error {
		if force {
			for _, table := range []string{"ima_policy_hosts", "ima_policy_groups"} {
				if _, err := q.w.ExecContext(ctx, `DELETE FROM `+table+` WHERE policy_id = $1`, id); err != nil {
					return fmt.Errorf("unassign ima policy %q: %w", id, err)
				}
			}
		}
		res, err := q.w.ExecContext(ctx, `DELETE FROM ima_policies WHERE id = $1`, id)
		if err = classify(err); errors.Is(err, errForeignKey) {
			return fmt.Errorf("ima policy %q is assigned to hosts or flavor groups: %w", id, ErrConflict)
		}
		if err := oneRow(res, err, fmt.Sprintf("delete ima policy %q", id)); err != nil {
			return err
		}
		return q.policiesChanged(ctx)
	})
}

// AssignIMAPolicy makes the policy the one of the hosts and the flavor
// groups, replacing any policy they had. ErrNotFound if the policy, a host
// or a group does not exist (and then nothing is assigned).
func (q *queries) AssignIMAPolicy(ctx context.Context, policyID string, a IMAPolicyAssignments) error {
	return q.atomic(ctx, func(q *queries) error {
		for _, set := range []struct {
			table, column, what string
			ids                 []string
		}{
			{"ima_policy_hosts", "host_id", "host", a.HostIDs},
			{"ima_policy_groups", "group_id", "flavor group", a.GroupIDs},
		} {
			for _, id := range set.ids {
				_, err := q.w.ExecContext(ctx, `INSERT INTO `+set.table+` (`+set.column+`, policy_id) VALUES ($1, $2)
					ON CONFLICT (`+set.column+`) DO UPDATE SET policy_id = excluded.policy_id`, id, policyID)
				if err = classify(err); errors.Is(err, errForeignKey) {
					return fmt.Errorf("assign ima policy %q to %s %q: %w", policyID, set.what, id, ErrNotFound)
				} else if err != nil {
					return fmt.Errorf("assign ima policy %q to %s %q: %w", policyID, set.what, id, err)
				}
			}
		}
		return q.policiesChanged(ctx)
	})
}

// UnassignIMAPolicy takes the policy from the hosts and flavor groups
// (those that have another policy, or none, are left alone) and returns
// how many assignments it removed.
func (q *queries) UnassignIMAPolicy(ctx context.Context, policyID string, a IMAPolicyAssignments) (int64, error) {
	var n int64
	err := q.atomic(ctx, func(q *queries) error {
		for _, set := range []struct {
			table, column string
			ids           []string
		}{
			{"ima_policy_hosts", "host_id", a.HostIDs},
			{"ima_policy_groups", "group_id", a.GroupIDs},
		} {
			for _, id := range set.ids {
				res, err := q.w.ExecContext(ctx, `DELETE FROM `+set.table+` WHERE `+set.column+` = $1 AND policy_id = $2`, id, policyID)
				if err != nil {
					return fmt.Errorf("unassign ima policy %q: %w", policyID, err)
				}
				k, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("unassign ima policy %q: %w", policyID, err)
				}
				n += k
			}
		}
		return q.policiesChanged(ctx)
	})
	return n, err
}

// IMAPolicyAssignmentsOf returns the hosts and flavor groups the policy is
// assigned to, each sorted by id.
func (q *queries) IMAPolicyAssignmentsOf(ctx context.Context, policyID string) (IMAPolicyAssignments, error) {
	var (
		a   IMAPolicyAssignments
		err error
	)
	if a.HostIDs, err = q.strings(ctx, `SELECT host_id FROM ima_policy_hosts WHERE policy_id = $1 ORDER BY host_id`, policyID); err != nil {
		return a, fmt.Errorf("assignments of ima policy %q: %w", policyID, err)
	}
	if a.GroupIDs, err = q.strings(ctx, `SELECT group_id FROM ima_policy_groups WHERE policy_id = $1 ORDER BY group_id`, policyID); err != nil {
		return a, fmt.Errorf("assignments of ima policy %q: %w", policyID, err)
	}
	return a, nil
}

// HostIMAPolicies returns, in one query, the latest version of the policy
// assigned to the host and of those assigned to its flavor groups.
func (q *queries) HostIMAPolicies(ctx context.Context, hostID string) (HostIMAPolicies, error) {
	type row struct {
		groupID string
		ref     IMAPolicyRef
	}
	rows, err := queryAll(ctx, q.r, fmt.Sprintf("ima policies of host %q", hostID),
		func(sc interface{ Scan(...any) error }) (row, error) {
			var r row
			err := sc.Scan(&r.groupID, &r.ref.PolicyID, &r.ref.Name, &r.ref.Version, &r.ref.SHA256)
			return r, err
		},
		`SELECT '', p.id, p.name, v.version, v.document_sha256`+imaPolicyFrom+`
			JOIN ima_policy_hosts a ON a.policy_id = p.id WHERE a.host_id = $1
		UNION ALL
		SELECT g.group_id, p.id, p.name, v.version, v.document_sha256`+imaPolicyFrom+`
			JOIN ima_policy_groups a ON a.policy_id = p.id
			JOIN host_flavor_groups g ON g.group_id = a.group_id WHERE g.host_id = $1`, hostID)
	if err != nil {
		return HostIMAPolicies{}, err
	}
	out := HostIMAPolicies{Groups: map[string]IMAPolicyRef{}}
	for _, r := range rows {
		if r.groupID == "" {
			ref := r.ref
			out.Host = &ref
			continue
		}
		out.Groups[r.groupID] = r.ref
	}
	return out, nil
}
