package store

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// A report is stored without the JWS header and payload other columns and
// rows hold (migration 0015); it reads back as the bytes it was created
// with.

// compactJWS is a compact JWS of payload under header, with signature sig.
func compactJWS(header string, payload []byte, sig string) string {
	return header + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + sig
}

func TestAReportReadsBackAsTheJSONAndJWSItWasCreatedWith(t *testing.T) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"trust-report+jws","x5c":["MIIB"]}`))
	other := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","x5c":["MIIC"]}`))
	json := []byte(`{"id":"r","trusted":true}`)
	for _, tc := range []struct {
		name string
		json []byte
		jws  string
		// detached: the row keeps the signature only, its header once in
		// report_jws_headers.
		detached bool
	}{
		{name: "a compact jws of the report's json keeps only its signature in the row",
			json: json, jws: compactJWS(header, json, "c2ln"), detached: true},
		{name: "a jws signed under another header keeps its own header",
			json: json, jws: compactJWS(other, json, "c2lnMg"), detached: true},
		{name: "a jws with an empty signature is put back with it empty",
			json: json, jws: compactJWS(header, json, ""), detached: true},
		{name: "a jws whose payload is another json is stored whole",
			json: json, jws: compactJWS(header, []byte(`{"id":"r","trusted":false}`), "c2ln")},
		// "{}" is "e30"; "e31" decodes to the same bytes with other unused bits.
		{name: "a jws whose payload encodes the json with other unused bits is stored whole",
			json: []byte(`{}`), jws: header + ".e31.c2ln"},
		{name: "a jws whose payload is padded is stored whole",
			json: []byte(`{}`), jws: header + ".e30=.c2ln"},
		{name: "a jws of four parts is stored whole",
			json: json, jws: compactJWS(header, json, "c2ln") + ".more"},
		{name: "a jws without a header is stored whole",
			json: json, jws: compactJWS("", json, "c2ln")},
		{name: "a value that is not a compact jws is stored whole",
			json: json, jws: "jws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onEachBackend(t, func(t *testing.T, s *Store) {
				ctx := t.Context()
				must(t, "create host", s.CreateHost(ctx, host("h1")))
				at := time.Unix(1_800_000_000, 0).UTC()
				for _, id := range []string{"r1", "r2"} {
					must(t, "create report", s.CreateReport(ctx, Report{ID: id, HostID: "h1", HostName: "n", Trusted: true,
						CreatedAt: at, ExpiresAt: at.Add(time.Hour), JSON: tc.json, JWS: tc.jws}))
				}
				r, err := s.ReportByID(ctx, "r1")
				must(t, "read report", err)
				if r.JWS != tc.jws || string(r.JSON) != string(tc.json) {
					t.Errorf("report read back as JSON %s, JWS %q; want %s, %q", r.JSON, r.JWS, tc.json, tc.jws)
				}
				rs, err := s.ListReports(ctx, ReportFilter{HostID: "h1"})
				must(t, "list reports", err)
				for _, r := range rs {
					if r.JWS != tc.jws || string(r.JSON) != string(tc.json) {
						t.Errorf("report %s listed as JSON %s, JWS %q; want %s, %q", r.ID, r.JSON, r.JWS, tc.json, tc.jws)
					}
				}
				wantHeaders, wantWhole := 0, 2
				if tc.detached {
					wantHeaders, wantWhole = 1, 0
				}
				if n := count(t, s, "report_jws_headers", ""); n != wantHeaders {
					t.Errorf("%d stored jws headers, want %d", n, wantHeaders)
				}
				if n := count(t, s, "reports", "jws = $1 AND jws_header IS NULL", tc.jws); n != wantWhole {
					t.Errorf("%d reports stored whole, want %d", n, wantWhole)
				}
			})
		})
	}
}

func TestAReportWhoseJWSHeaderIsGoneIsNotReadWithoutIt(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		must(t, "create host", s.CreateHost(ctx, host("h1")))
		json := []byte(`{"id":"r1"}`)
		at := time.Unix(1_800_000_000, 0).UTC()
		must(t, "create report", s.CreateReport(ctx, Report{ID: "r1", HostID: "h1", HostName: "n", CreatedAt: at,
			ExpiresAt: at.Add(time.Hour), JSON: json, JWS: compactJWS("aGVhZGVy", json, "c2ln")}))
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM report_jws_headers`); err != nil {
			t.Fatal(err)
		}
		r, err := s.ReportByID(ctx, "r1")
		if err == nil || !strings.Contains(err.Error(), "header") {
			t.Errorf("ReportByID = %q, %v; want an error about the header", r.JWS, err)
		}
		if _, err := s.ListReports(ctx, ReportFilter{}); err == nil {
			t.Error("ListReports read a report without its jws header")
		}
	})
}

func FuzzDetachJWSGivesTheSameJWSBack(f *testing.F) {
	f.Add([]byte(`{}`), "aGVhZGVy.e30.c2ln", "aGVhZGVy", "c2ln")
	f.Add([]byte(`{}`), "aGVhZGVy.e31.c2ln", "h", "")
	f.Add([]byte(`{"a":1}`), "a.eyJhIjoxfQ.", "a.b", "s")
	f.Add([]byte(``), "a..b", "a", "b")
	f.Fuzz(func(t *testing.T, json []byte, jws, header, sig string) {
		if h, s, ok := detachJWS(json, jws); ok {
			if got := attachJWS(h, json, s); got != jws {
				t.Fatalf("detached %q and attached %q", jws, got)
			}
		}
		// A compact JWS of json is always detached, into its own parts.
		if header == "" || strings.Contains(header, ".") || strings.Contains(sig, ".") {
			return
		}
		whole := compactJWS(header, json, sig)
		if h, s, ok := detachJWS(json, whole); !ok || h != header || s != sig {
			t.Fatalf("%q detached as %q, %q, %v", whole, h, s, ok)
		}
	})
}

func TestAJWSHeaderFirstMetInATransactionThatRolledBackIsStoredForTheNextReports(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		must(t, "create host", s.CreateHost(ctx, host("h1")))
		at := time.Unix(1_800_000_000, 0).UTC()
		rep := func(id string) Report {
			json := []byte(`{"id":"` + id + `"}`)
			return Report{ID: id, HostID: "h1", HostName: "n", CreatedAt: at, ExpiresAt: at.Add(time.Hour),
				JSON: json, JWS: compactJWS("aGVhZGVy", json, "c2ln")}
		}
		rollBack := errors.New("roll back")
		err := s.InTxDeferredSync(ctx, func(tx *Tx) error {
			if err := tx.CreateReport(ctx, rep("r1")); err != nil {
				return err
			}
			return rollBack
		})
		wantErr(t, "the transaction", err, rollBack)
		for _, id := range []string{"r2", "r3"} {
			must(t, "commit report", s.InTxDeferredSync(ctx, func(tx *Tx) error { return tx.CreateReport(ctx, rep(id)) }))
			r, err := s.ReportByID(ctx, id)
			must(t, "read report", err)
			if want := rep(id).JWS; r.JWS != want {
				t.Errorf("report %s read back with JWS %q, want %q", id, r.JWS, want)
			}
		}
		if _, err := s.ReportByID(ctx, "r1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the rolled back report: %v, want not found", err)
		}
	})
}
