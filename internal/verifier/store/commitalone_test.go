package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// A report committed alone (CommitReportAlone; on PostgreSQL one statement
// once its JWS header is known to be stored) stores what a commit in a
// transaction stores, and nothing when that stores nothing.
func TestAReportCommittedAloneStoresWhatItsTransactionWould(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		reportFleet(t, s)
		ctx := t.Context()
		at := t0.Add(2 * time.Hour)
		boot := HostBoot{Known: true, ResetCount: 8, RebootedAt: at, State: []byte(`{"ima_offset":9}`)}
		rep := func(id, hostID string) Report {
			json := []byte(`{"id":"` + id + `"}`)
			return Report{ID: id, HostID: hostID, HostName: "n", Trusted: true, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
				JSON: json, JWS: compactJWS("aGVhZGVy", json, "c2ln")}
		}
		// The first report of a header stores it (in a transaction); the
		// next ones know it.
		_, err := s.CommitReportAlone(ctx, rep("first", "h3"), HostReported{Status: "CONNECTED", At: at, Success: true}, true)
		must(t, "the first report", err)
		if _, _, h := s.reportJWS(rep("next", "h3")); !s.headers.isStored(h) {
			t.Fatal("the header of the first report is not known to be stored")
		}
		gen, err := s.PolicyGeneration(ctx)
		must(t, "PolicyGeneration", err)
		for _, tc := range []struct {
			name, host, id string
			outcome        HostReported
			deferSync      bool
			wantDisabled   time.Time
			wantErr        error
			// want is the host after the commit; nil when nothing may change.
			want func(h Host) Host
		}{
			{
				name: "a deferred report of an enabled host is stored with its status and boot", host: "h1", id: "r1",
				outcome:   HostReported{Status: "CONNECTED", At: at, Success: true, Boot: &boot, PolicyGeneration: gen},
				deferSync: true,
				want: func(h Host) Host {
					h.Status, h.StatusAt, h.LastConnected, h.LastAttempt, h.LastSuccess = "CONNECTED", at, at, at, at
					h.Boot = boot
					return h
				},
			},
			{
				name: "a synced failed report keeps the host's boot", host: "h2", id: "r2",
				outcome: HostReported{Status: "CONNECTION_TIMEOUT", At: at},
				want: func(h Host) Host {
					h.Status, h.StatusAt, h.LastAttempt = "CONNECTION_TIMEOUT", at, at
					return h
				},
			},
			{
				name: "a disabled host gets no report and says when it was disabled", host: "h4", id: "r4",
				outcome:      HostReported{Status: "CONNECTED", At: at, Success: true, Boot: &boot},
				deferSync:    true,
				wantDisabled: t0.Add(time.Hour),
			},
			{
				name: "a report appraised at an older policy generation stores nothing", host: "h1", id: "r5",
				outcome:   HostReported{Status: "CONNECTED", At: at.Add(time.Minute), Success: true, PolicyGeneration: gen - 1},
				deferSync: true,
				wantErr:   ErrPoliciesChanged,
			},
			{
				name: "a report whose id is taken stores nothing", host: "h2", id: "r1",
				outcome: HostReported{Status: "CONNECTED", At: at.Add(time.Minute), Success: true},
				wantErr: ErrConflict,
			},
			{
				name: "a host that is gone is not found", host: "gone", id: "r6",
				outcome: HostReported{Status: "CONNECTED", At: at, Success: true},
				wantErr: ErrNotFound,
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := s.HostByID(ctx, tc.host)
				r := rep(tc.id, tc.host)
				stored, _ := s.ReportByID(ctx, tc.id)
				disabled, err := s.CommitReportAlone(ctx, r, tc.outcome, tc.deferSync)
				if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
					t.Fatalf("CommitReportAlone = %v, want %v", err, tc.wantErr)
				}
				if !disabled.Equal(tc.wantDisabled) {
					t.Errorf("disabled at %v, want %v", disabled, tc.wantDisabled)
				}
				got, rerr := s.ReportByID(ctx, tc.id)
				switch {
				case tc.want != nil && (rerr != nil || !reflect.DeepEqual(got, r)):
					t.Errorf("report stored as %+v (%v), want %+v", got, rerr, r)
				case tc.want == nil && !reflect.DeepEqual(got, stored):
					t.Errorf("report %s is %+v, was %+v", tc.id, got, stored)
				}
				wantHostAfter(t, s, before, tc.want)
			})
		}
		if _, err := s.CommitReportAlone(ctx, rep("r7", "h3"), HostReported{Status: "CONNECTED", At: at, HardwareUUID: "u7"}, false); err == nil {
			t.Error("a report that gives its host a hardware uuid was committed alone")
		}
	})
}
