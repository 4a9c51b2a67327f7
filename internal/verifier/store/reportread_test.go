package store

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/pgtest"
)

// reportReadsOneByOne is what HostForReport and ReportPolicies stand for:
// the host, its disabled mark, each group, the flavor references of each
// group for a hardware UUID ("" for the host's) and the IMA policies, each
// read on its own.
func reportReadsOneByOne(ctx context.Context, s *Store, id, uuid string) (ReportHost, ReportPolicies, error) {
	h, err := s.HostByID(ctx, id)
	if err != nil {
		return ReportHost{}, ReportPolicies{}, err
	}
	groups := h.FlavorGroupIDs
	h.FlavorGroupIDs = nil
	rh, pol := ReportHost{Host: h}, ReportPolicies{FlavorRefs: map[string][]FlavorRef{}}
	if rh.DisabledAt, err = s.HostDisabled(ctx, id); err != nil {
		return ReportHost{}, ReportPolicies{}, err
	}
	if enr, err := s.AKEnrollmentByHost(ctx, id); err == nil {
		rh.Enrollment = &enr
	} else if !errors.Is(err, ErrNotFound) {
		return ReportHost{}, ReportPolicies{}, err
	}
	for _, gid := range groups {
		g, err := s.FlavorGroupByID(ctx, gid)
		if err != nil {
			return ReportHost{}, ReportPolicies{}, err
		}
		pol.Groups = append(pol.Groups, g)
		refs, err := s.HostFlavorRefs(ctx, gid, id, cmp.Or(uuid, h.HardwareUUID))
		if err != nil {
			return ReportHost{}, ReportPolicies{}, err
		}
		if len(refs) > 0 {
			pol.FlavorRefs[gid] = refs
		}
	}
	if pol.IMAPolicies, err = s.HostIMAPolicies(ctx, id); err != nil {
		return ReportHost{}, ReportPolicies{}, err
	}
	rh.PolicyGeneration, err = s.PolicyGeneration(ctx)
	pol.Generation = rh.PolicyGeneration
	return rh, pol, err
}

// reportFleet stores hosts, groups, flavors and IMA policies of every kind
// HostForReport and ReportPolicies tell apart.
func reportFleet(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	for _, g := range []string{"g1", "g2", "g3"} {
		group(t, s, g)
	}
	h1 := host("h1", "g2", "g1")
	h1.HardwareUUID = "u1"
	h2 := host("h2", "g1")
	h2.HardwareUUID, h2.Boot = "u2", HostBoot{Known: true, ResetCount: 7, RebootedAt: t0, State: []byte(`{"ima_offset":3}`)}
	h4 := host("h4", "g1")
	for _, h := range []Host{h1, h2, host("h3"), h4} {
		must(t, "CreateHost", s.CreateHost(ctx, h))
	}
	must(t, "DisableHost", s.DisableHost(ctx, "h4", t0.Add(time.Hour)))
	must(t, "PutAKEnrollment", s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h1", AKName: []byte("name-h1"),
		AKPublic: []byte("public-h1"), AKCertificate: []byte("cert-h1"), EKCertificate: []byte("ek-h1"),
		EKPublicSHA256: "ab01", CreatedAt: t0, PCRBanks: []string{"SHA256", "SHA384"}}))
	must(t, "PutAKEnrollment", s.PutAKEnrollment(ctx, AKEnrollment{HostID: "h2", AKName: []byte("name-h2"),
		AKPublic: []byte("public-h2")}))
	must(t, "SetHostReported", s.SetHostReported(ctx, "h1", "CONNECTED", t0.Add(time.Minute), true))
	for i, f := range []Flavor{
		flavorRec("f-any", "SOFTWARE", "", "", "g1"),
		flavorRec("f-h1", "PLATFORM", "h1", "u1", "g1", "g2"),
		flavorRec("f-u1", "HOST_UNIQUE", "", "u1", "g1"),
		flavorRec("f-h2", "OS", "h2", "u2", "g1"),
		flavorRec("f-h1-g3", "OS", "h1", "u1", "g3"),
		flavorRec("f-h1-u2", "OS", "h1", "u2", "g1"),
		flavorRec("f-old", "IMA", "h1", "", "g2"),
		flavorRec("f-h1-early", "IMA", "h1", "u1", "g1"),
	} {
		f.CreatedAt = t0.Add(time.Duration(8-i) * time.Second) // the later stored, the older
		must(t, "CreateFlavor", s.CreateFlavor(ctx, f))
	}
	// f-old as a release before migration 0009 stored it.
	if _, err := s.wdb.ExecContext(ctx, `UPDATE flavors SET signed_sha256 = $1 WHERE id = 'f-old'`, []byte{}); err != nil {
		t.Fatal(err)
	}
	createIMAPolicy(t, s, "group-policy")
	createIMAPolicy(t, s, "host-policy")
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "group-policy", IMAPolicyAssignments{GroupIDs: []string{"g1"}}))
	must(t, "AssignIMAPolicy", s.AssignIMAPolicy(ctx, "host-policy", IMAPolicyAssignments{HostIDs: []string{"h2"}}))
}

func TestAReportReadsInTwoStatementsWhatTheReadsOneByOneRead(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		reportFleet(t, s)
		for _, tc := range []struct {
			name, host, uuid string
			wantRefs         map[string][]string
		}{
			{
				name: "a host in two groups gets the flavors bound to it by id and by hardware uuid, and the fleet's, oldest first",
				host: "h1",
				wantRefs: map[string][]string{
					"g1": {"f-h1-early", "f-u1", "f-h1", "f-any"},
					"g2": {"f-old", "f-h1"},
				},
			},
			{
				name: "another hardware uuid binds its flavors instead",
				host: "h1", uuid: "u2",
				wantRefs: map[string][]string{"g1": {"f-h1-u2", "f-any"}, "g2": {"f-old"}},
			},
			{
				name:     "a host with an IMA policy of its own and a boot gets both",
				host:     "h2",
				wantRefs: map[string][]string{"g1": {"f-h2", "f-any"}},
			},
			{name: "a host in no group gets no group, flavor or policy", host: "h3", wantRefs: map[string][]string{}},
			{name: "a disabled host says when it was disabled", host: "h4", wantRefs: map[string][]string{"g1": {"f-any"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantHost, wantPol, err := reportReadsOneByOne(t.Context(), s, tc.host, tc.uuid)
				must(t, "reads one by one", err)
				rh, err := s.HostForReport(t.Context(), tc.host)
				must(t, "HostForReport", err)
				if !reflect.DeepEqual(rh, wantHost) {
					t.Fatalf("HostForReport(%s) =\n%+v\nwant\n%+v", tc.host, rh, wantHost)
				}
				pol, err := s.ReportPolicies(t.Context(), tc.host, cmp.Or(tc.uuid, rh.Host.HardwareUUID))
				must(t, "ReportPolicies", err)
				if !reflect.DeepEqual(pol, wantPol) {
					t.Fatalf("ReportPolicies(%s) =\n%+v\nwant\n%+v", tc.host, pol, wantPol)
				}
				ids := map[string][]string{}
				for gid, refs := range pol.FlavorRefs {
					for _, ref := range refs {
						ids[gid] = append(ids[gid], ref.ID)
					}
				}
				if !reflect.DeepEqual(ids, tc.wantRefs) {
					t.Errorf("flavors %v, want %v", ids, tc.wantRefs)
				}
			})
		}
		if _, err := s.HostForReport(t.Context(), "none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("HostForReport of no host = %v, want ErrNotFound", err)
		}
	})
}

// The read of a report's policies must find the flavors by their binding
// from the covering index, as HostFlavorRefs does, and scan no table whose
// size grows with the fleet.
func TestReportPoliciesReadsTheFlavorsFromTheCoveringIndexOnSQLite(t *testing.T) {
	plan := sqlitePlan(t, reportPoliciesQuery, "h1", "u1")
	if !slices.ContainsFunc(plan, func(d string) bool {
		return strings.HasPrefix(d, "SEARCH f USING COVERING INDEX flavors_binding_refs")
	}) {
		t.Errorf("plan %q does not search flavors by the covering index flavors_binding_refs", plan)
	}
	if i := slices.IndexFunc(plan, func(d string) bool { return strings.HasPrefix(d, "SCAN") }); i >= 0 {
		t.Errorf("plan %q scans a table: %s", plan, plan[i])
	}
}

// On PostgreSQL the flavors must be found by both columns of their binding
// in the index: a hardware UUID read from a joined row becomes an OR that
// reads every flavor bound by hardware UUID alone (10,000 rows at 10,000
// hosts). The planner is told to use indexes, as it does on a large fleet.
func TestReportPoliciesSearchesTheFlavorsByTheirWholeBindingOnPostgreSQL(t *testing.T) {
	s := openTest(t, pgtest.Schemas(t)(t))
	ctx := t.Context()
	reportFleet(t, s)
	conn, err := s.rdb.Conn(ctx)
	must(t, "Conn", err)
	defer func() { _ = conn.Close() }()
	_, err = conn.ExecContext(ctx, "SET enable_seqscan = off")
	must(t, "SET enable_seqscan", err)
	rows, err := conn.QueryContext(ctx, "EXPLAIN "+reportPoliciesQuery, "h1", "u1")
	must(t, "EXPLAIN", err)
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var line string
		must(t, "Scan", rows.Scan(&line))
		plan = append(plan, strings.TrimSpace(line))
	}
	must(t, "plan", rows.Err())
	i := slices.IndexFunc(plan, func(l string) bool { return strings.Contains(l, "using flavors_binding_refs on flavors f") })
	if i < 0 || i+1 == len(plan) || !strings.Contains(plan[i+1], "hardware_uuid = ANY") {
		t.Fatalf("plan does not search flavors_binding_refs by host id and hardware uuid:\n%s", strings.Join(plan, "\n"))
	}
}

func TestCommitReportStoresTheReportOfAnEnabledHostOnly(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		reportFleet(t, s)
		ctx := t.Context()
		at := t0.Add(2 * time.Hour)
		boot := HostBoot{Known: true, ResetCount: 8, RebootedAt: at, State: []byte(`{"ima_offset":9}`)}
		for _, tc := range []struct {
			name, host   string
			outcome      HostReported
			wantDisabled time.Time
			wantErr      error
			// want is the host after the commit; zero when it must not change.
			want func(h Host) Host
		}{
			{
				name:    "a report of an enabled host is stored with its status, hardware uuid and boot",
				host:    "h1",
				outcome: HostReported{Status: "CONNECTED", At: at, Success: true, HardwareUUID: "u9", Boot: &boot},
				want: func(h Host) Host {
					h.Status, h.StatusAt, h.LastConnected, h.LastAttempt, h.LastSuccess = "CONNECTED", at, at, at, at
					h.HardwareUUID, h.Boot = "u9", boot
					return h
				},
			},
			{
				name:    "a failed report without a boot keeps the host's hardware uuid and boot",
				host:    "h2",
				outcome: HostReported{Status: "CONNECTION_TIMEOUT", At: at},
				want: func(h Host) Host {
					h.Status, h.StatusAt, h.LastAttempt = "CONNECTION_TIMEOUT", at, at
					return h
				},
			},
			{
				name:         "a disabled host gets no report and says when it was disabled",
				host:         "h4",
				outcome:      HostReported{Status: "CONNECTED", At: at, Success: true, Boot: &boot},
				wantDisabled: t0.Add(time.Hour),
			},
			{
				name:    "a host that is gone is not found",
				host:    "gone",
				outcome: HostReported{Status: "CONNECTED", At: at, Success: true},
				wantErr: ErrNotFound,
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := s.HostByID(ctx, tc.host)
				r := Report{ID: "report-" + tc.host, HostID: tc.host, HostName: "n", Trusted: true, CreatedAt: at,
					ExpiresAt: at.Add(time.Hour), JSON: []byte(`{}`), JWS: "jws"}
				var disabled time.Time
				err := s.InTxDeferredSync(ctx, func(tx *Tx) error {
					var err error
					disabled, err = tx.CommitReport(ctx, r, tc.outcome)
					return err
				})
				if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
					t.Fatalf("CommitReport = %v, want %v", err, tc.wantErr)
				}
				if !disabled.Equal(tc.wantDisabled) {
					t.Errorf("disabled at %v, want %v", disabled, tc.wantDisabled)
				}
				_, rerr := s.ReportByID(ctx, r.ID)
				if stored := rerr == nil; stored != (tc.want != nil) {
					t.Fatalf("report stored: %v (%v), want %v", stored, rerr, tc.want != nil)
				}
				wantHostAfter(t, s, before, tc.want)
			})
		}
	})
}

// wantHostAfter checks the host after a report's commit: want(before), or
// before when want is nil (nothing may change).
func wantHostAfter(t *testing.T, s *Store, before Host, want func(h Host) Host) {
	t.Helper()
	after, _ := s.HostByID(t.Context(), before.ID)
	if want != nil {
		before = want(before)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("host after the commit\n%+v\nwant\n%+v", after, before)
	}
}
