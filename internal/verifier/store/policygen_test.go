package store

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/pgtest"
)

// reportPolicyTables are the tables ReportPolicies reads: a write to any
// of them changes what a report is appraised against.
var reportPolicyTables = regexp.MustCompile(`\b(flavor_groups|flavors|flavor_group_flavors|host_flavor_groups|ima_policies|ima_policy_versions|ima_policy_hosts|ima_policy_groups)\b`)

var sqlWrite = regexp.MustCompile(`\b(INSERT INTO|UPDATE|DELETE FROM)\b`)

// A function of the store that writes a table ReportPolicies reads must
// move the policy generation in the same transaction, or a verifier would
// keep appraising against the policies it cached before the change. The
// test reads the store's source: a function whose string literals write
// SQL and name such a table must call policiesChanged.
func TestEveryWriteOfAReportPolicyTableMovesTheGeneration(t *testing.T) {
	files, err := filepath.Glob("*.go")
	must(t, "Glob", err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		must(t, "ParseFile", err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			var writes, policyTable, moves bool
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						s, _ := strconv.Unquote(n.Value)
						writes = writes || sqlWrite.MatchString(s)
						policyTable = policyTable || reportPolicyTables.MatchString(s)
					}
				case *ast.SelectorExpr:
					moves = moves || n.Sel.Name == "policiesChanged"
				}
				return true
			})
			if !writes || !policyTable {
				continue
			}
			checked++
			if !moves {
				t.Errorf("%s: %s writes a table ReportPolicies reads and does not call policiesChanged",
					fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
	// CreateHost, UpdateHost (through setHostGroups), DeleteHost, the
	// groups', the flavors' and the IMA policies' writes: a test that
	// finds none checks nothing.
	if checked < 10 {
		t.Errorf("found %d functions that write a table ReportPolicies reads, want at least 10", checked)
	}
}

// Each change of a host's groups, of a group, of a flavor and of an IMA
// policy or its assignments moves the policy generation, on every backend.
func TestEachChangeOfWhatAReportIsAppraisedAgainstMovesThePolicyGeneration(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		reportFleet(t, s)
		desc := "changed"
		for _, tc := range []struct {
			name   string
			change func() error
		}{
			{"creating a group", func() error {
				return s.CreateFlavorGroup(ctx, FlavorGroup{ID: "g9", Name: "g9", Policies: []byte(`{}`)})
			}},
			{"changing a group's policies", func() error {
				return s.UpdateFlavorGroup(ctx, FlavorGroup{ID: "g9", Name: "g9", Policies: []byte(`{"p":2}`)})
			}},
			{"creating a host", func() error { return s.CreateHost(ctx, host("h9", "g9")) }},
			{"changing a host's groups", func() error {
				h := host("h9", "g1")
				return s.UpdateHost(ctx, h)
			}},
			{"creating a flavor", func() error { return s.CreateFlavor(ctx, flavorRec("f9", "OS", "h9", "", "g1")) }},
			{"deleting a flavor", func() error { return s.DeleteFlavor(ctx, "f9") }},
			{"deleting a host's flavors", func() error {
				must(t, "CreateFlavor", s.CreateFlavor(ctx, flavorRec("f10", "OS", "h9", "", "g1")))
				g0, err := s.PolicyGeneration(ctx)
				must(t, "PolicyGeneration", err)
				_, err = s.DeleteHostFlavors(ctx, "h9", []string{"OS"})
				if g, _ := s.PolicyGeneration(ctx); err == nil && g == g0 {
					return errors.New("the generation did not move")
				}
				return err
			}},
			{"creating an ima policy", func() error {
				return s.CreateIMAPolicy(ctx, imaPolicy("p9"), imaPolicyVersion("p9", 1, `{"doc":1}`))
			}},
			{"adding a version of an ima policy", func() error {
				return s.AddIMAPolicyVersion(ctx, imaPolicyVersion("p9", 2, `{"doc":2}`), &desc)
			}},
			{"assigning an ima policy", func() error {
				return s.AssignIMAPolicy(ctx, "p9", IMAPolicyAssignments{HostIDs: []string{"h9"}, GroupIDs: []string{"g9"}})
			}},
			{"unassigning an ima policy", func() error {
				_, err := s.UnassignIMAPolicy(ctx, "p9", IMAPolicyAssignments{HostIDs: []string{"h9"}})
				return err
			}},
			{"deleting an ima policy", func() error { return s.DeleteIMAPolicy(ctx, "p9", true) }},
			{"deleting a host", func() error { return s.DeleteHost(ctx, "h9") }},
			{"deleting a group", func() error { return s.DeleteFlavorGroup(ctx, "g9") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, err := s.PolicyGeneration(ctx)
				must(t, "PolicyGeneration", err)
				must(t, tc.name, tc.change())
				after, err := s.PolicyGeneration(ctx)
				must(t, "PolicyGeneration", err)
				if after <= before {
					t.Errorf("the policy generation went from %d to %d, want it to move", before, after)
				}
			})
		}
		t.Run("a failed change does not move it", func(t *testing.T) {
			before, err := s.PolicyGeneration(ctx)
			must(t, "PolicyGeneration", err)
			wantErr(t, "DeleteFlavor", s.DeleteFlavor(ctx, "none"), ErrNotFound)
			wantErr(t, "DeleteFlavorGroup", s.DeleteFlavorGroup(ctx, "g1"), ErrConflict)
			if after, _ := s.PolicyGeneration(ctx); after != before {
				t.Errorf("the policy generation went from %d to %d", before, after)
			}
		})
	})
}

// A report appraised against policies read at one generation is stored
// only while that is still the generation: a flavor deleted through
// another replica meanwhile makes the commit store nothing.
func TestACommitAppraisedAtAnOlderPolicyGenerationStoresNothing(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		reportFleet(t, s)
		pol, err := s.ReportPolicies(ctx, "h1", "u1")
		must(t, "ReportPolicies", err)
		rh, err := s.HostForReport(ctx, "h1")
		must(t, "HostForReport", err)
		if pol.Generation == 0 || rh.PolicyGeneration != pol.Generation {
			t.Fatalf("ReportPolicies at generation %d, HostForReport at %d: want the same, not 0", pol.Generation, rh.PolicyGeneration)
		}
		at := t0.Add(3 * time.Hour)
		commit := func(id string, gen int64) error {
			r := Report{ID: id, HostID: "h1", HostName: "n", Trusted: true, CreatedAt: at, ExpiresAt: at.Add(time.Hour), JSON: []byte(`{}`), JWS: "jws"}
			return s.InTxDeferredSync(ctx, func(tx *Tx) error {
				_, err := tx.CommitReport(ctx, r, HostReported{Status: "CONNECTED", At: at, Success: true, PolicyGeneration: gen})
				return err
			})
		}
		must(t, "a commit at the current generation", commit("r-current", pol.Generation))
		must(t, "a commit that does not ask", commit("r-unasked", 0))

		must(t, "DeleteFlavor", s.DeleteFlavor(ctx, "f-h1"))
		before, err := s.HostByID(ctx, "h1")
		must(t, "HostByID", err)
		err = commit("r-stale", pol.Generation)
		wantErr(t, "a commit at the generation before the flavor was deleted", err, ErrPoliciesChanged)
		if _, err := s.ReportByID(ctx, "r-stale"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the report appraised before the change was stored (%v)", err)
		}
		if after, _ := s.HostByID(ctx, "h1"); after.LastAttempt != before.LastAttempt {
			t.Errorf("the host was updated: last attempt %v, was %v", after.LastAttempt, before.LastAttempt)
		}
		fresh, err := s.ReportPolicies(ctx, "h1", "u1")
		must(t, "ReportPolicies", err)
		if fresh.Generation <= pol.Generation {
			t.Errorf("ReportPolicies after the change at generation %d, before at %d", fresh.Generation, pol.Generation)
		}
		must(t, "a commit at the new generation", commit("r-fresh", fresh.Generation))
	})
}

// Enrollments write flavors and host groups concurrently, each in its own
// transaction, and each moves the one generation row. A transaction must
// hold that row only while it commits: on PostgreSQL a change made while
// another is still running its statements commits without waiting for it,
// and the two together move the generation twice.
func TestConcurrentChangesDoNotWaitForEachOthersTransactions(t *testing.T) {
	t.Parallel()
	s := openTest(t, pgtest.Schemas(t)(t))
	ctx := t.Context()
	group(t, s, "automatic")
	before, err := s.PolicyGeneration(ctx)
	must(t, "PolicyGeneration", err)
	err = s.InTx(ctx, func(tx *Tx) error {
		if err := tx.CreateFlavor(ctx, flavorRec("f1", "PLATFORM", "h1", "", "automatic")); err != nil {
			return err
		}
		// Another enrollment, while this transaction still runs.
		other, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := s.CreateFlavor(other, flavorRec("f2", "PLATFORM", "h2", "", "automatic")); err != nil {
			return fmt.Errorf("a concurrent change waited for the running transaction: %w", err)
		}
		return nil
	})
	must(t, "InTx", err)
	after, err := s.PolicyGeneration(ctx)
	must(t, "PolicyGeneration", err)
	if after != before+2 {
		t.Errorf("policy generation %d → %d, want two moves", before, after)
	}
}
