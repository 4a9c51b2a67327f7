package store

import (
	"context"
	"errors"
	"fmt"
)

// The policy generation (migration 0014, issue 13): a counter that every
// change of what a report is appraised against moves in the change's own
// transaction. A verifier keeps the policies of a host's report
// (ReportPolicies) with the generation they were read at, and commits a
// report appraised against them only while the generation is still that
// one (HostReported.PolicyGeneration), so that several replicas on one
// database never store a report appraised against policies another
// replica changed before the commit.
//
// Every function of the store that writes a table ReportPolicies reads
// calls policiesChanged; TestEveryWriteOfAReportPolicyTableMovesTheGeneration
// holds them to it.

// ErrPoliciesChanged is wrapped by CommitReport's error when the policy
// generation is no longer the one the report was appraised at: the report
// is not stored; appraise it again against the stored policies.
var ErrPoliciesChanged = errors.New("the flavors, groups or ima policies changed")

// policiesChanged moves the policy generation. Call it in the transaction
// of the change: the transaction moves it once, as its last statement
// (endTx). The generation is one row that every change locks until it
// commits; moved first, it held concurrent enrollments on PostgreSQL
// behind each other for their whole transactions (issue 13).
func (q *queries) policiesChanged(ctx context.Context) error {
	if q.tx != nil {
		q.tx.policiesChanged = true
		return nil
	}
	return q.movePolicyGeneration(ctx)
}

func (q *queries) movePolicyGeneration(ctx context.Context) error {
	if _, err := q.w.ExecContext(ctx, `UPDATE hvs_policy_generation SET generation = generation + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("move the policy generation: %w", err)
	}
	return nil
}

// txState is what a transaction has done that its end must record.
type txState struct {
	policiesChanged bool
}

// endTx runs the statements a transaction ends with, before its commit.
func (q *queries) endTx(ctx context.Context) error {
	if q.tx == nil || !q.tx.policiesChanged {
		return nil
	}
	q.tx.policiesChanged = false
	return q.movePolicyGeneration(ctx)
}

// policyGenerationQuery is the current policy generation, as a subquery.
const policyGenerationQuery = `(SELECT generation FROM hvs_policy_generation WHERE id = 1)`

// PolicyGeneration returns the current policy generation.
func (q *queries) PolicyGeneration(ctx context.Context) (int64, error) {
	var g int64
	if err := q.r.QueryRowContext(ctx, `SELECT `+policyGenerationQuery).Scan(&g); err != nil {
		return 0, fmt.Errorf("read the policy generation: %w", err)
	}
	return g, nil
}
