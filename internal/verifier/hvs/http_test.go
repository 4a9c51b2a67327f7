package hvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// newMux registers the service's routes behind a require that records the
// rule of the route it wraps in the X-Rule response header.
func newMux(s *Service) *http.ServeMux {
	mux := http.NewServeMux()
	s.Register(mux, func(service, rule string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Rule", service+"/"+rule)
				next.ServeHTTP(w, r)
			})
		}
	})
	return mux
}

func do(t testing.TB, mux http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body.String(), err)
	}
	return v
}

func TestRoutesDeclareTheirPermissions(t *testing.T) {
	rule := regexp.MustCompile(`^[a-z_]+:(create|search|retrieve|update|delete|rebaseline|disable|enable|assign):\*$`)
	seen := map[string]bool{}
	for _, r := range Routes() {
		key := r.Method + " " + r.Pattern
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
		if r.Service != ServiceName || !rule.MatchString(r.Rule) {
			t.Errorf("%s needs %s %q, want service HVS and a rule resource:action:*", key, r.Service, r.Rule)
		}
		resource, _, _ := strings.Cut(r.Rule, ":")
		if !strings.HasPrefix(r.Pattern, "/hvs/v2/"+strings.ReplaceAll(resource, "_", "-")) {
			t.Errorf("%s: rule %s names another resource than the path", key, r.Rule)
		}
	}
	if len(seen) < 19 {
		t.Errorf("%d routes, want at least 19", len(seen))
	}

	e := newEnv(t, nil)
	mux := newMux(e.svc)
	for _, r := range Routes() {
		path := strings.ReplaceAll(r.Pattern, "{id}", "nope")
		w := do(t, mux, r.Method, path, "")
		if got := w.Header().Get("X-Rule"); got != "HVS/"+r.Rule {
			t.Errorf("%s %s ran behind %q, want HVS/%s", r.Method, path, got, r.Rule)
		}
		if w.Code < 200 || w.Code >= 500 {
			t.Errorf("%s %s without a body = %d %s, want a 2xx or 4xx", r.Method, path, w.Code, w.Body)
		}
	}
}

func TestHostRoutes(t *testing.T) {
	n := newNode(t, "edge-1")
	m := newNode(t, "edge-2")
	e := newEnv(t, []*node{n, m})
	mux := newMux(e.svc)
	hostBody := func(name, cs string) string {
		return fmt.Sprintf(`{"host_name":%q,"connection_string":%q,"description":"rack 4","flavorgroup_names":["automatic"]}`, name, cs)
	}

	w := do(t, mux, "POST", "/hvs/v2/hosts", hostBody("edge-1", "nats://edge-1"))
	if w.Code != http.StatusCreated {
		t.Fatalf("create host = %d %s", w.Code, w.Body)
	}
	h := decode[restapi.Host](t, w)
	if h.ID != "edge-1" || h.Status != report.StatusConnected || h.EnrollmentError != "" || !slices.Equal(h.FlavorGroupNames, []string{"automatic"}) {
		t.Errorf("created host %+v", h)
	}
	if _, _, err := e.enr.VerifyAK(t.Context(), "edge-1"); err != nil {
		t.Errorf("the host's AK was not enrolled on create: %v", err)
	}

	e.enr.refuse = errors.New("ek certificate untrusted")
	w = do(t, mux, "POST", "/hvs/v2/hosts", hostBody("edge-2", "intel:nats://edge-2"))
	if w.Code != http.StatusCreated {
		t.Fatalf("create host with a failing enrollment = %d %s", w.Code, w.Body)
	}
	if h := decode[restapi.Host](t, w); h.Status != report.StatusAIKNotProvisioned || !strings.Contains(h.EnrollmentError, "untrusted") {
		t.Errorf("host with a failed enrollment: %+v", h)
	}

	bad := []struct {
		name, body string
		status     int
	}{
		{"a taken host name conflicts", hostBody("edge-1", "nats://edge-9"), http.StatusConflict},
		{"a taken host id conflicts", hostBody("edge-9", "nats://edge-1"), http.StatusConflict},
		{"a host id with a dot is refused", hostBody("edge-9", "nats://edge.9"), http.StatusBadRequest},
		{"another scheme is refused", hostBody("edge-9", "https://edge-9"), http.StatusBadRequest},
		{"an empty name is refused", hostBody("", "nats://edge-9"), http.StatusBadRequest},
		{"an unknown field is refused", `{"host_name":"x","connection_string":"nats://x","admin":true}`, http.StatusBadRequest},
		{"malformed JSON is refused", `{"host_name":`, http.StatusBadRequest},
		{"an unknown flavor group is refused", `{"host_name":"x","connection_string":"nats://x","flavorgroup_names":["nope"]}`, http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if w := do(t, mux, "POST", "/hvs/v2/hosts", tt.body); w.Code != tt.status {
				t.Errorf("= %d %s, want %d", w.Code, w.Body, tt.status)
			}
		})
	}
	if hs, _ := e.st.ListHosts(t.Context(), store.HostFilter{}); len(hs) != 2 {
		t.Errorf("%d hosts after refused creates, want 2", len(hs))
	}

	searches := []struct {
		query string
		want  []string
	}{
		{"", []string{"edge-1", "edge-2"}},
		{"?nameEqualTo=edge-2", []string{"edge-2"}},
		{"?hostHardwareId=" + n.uuid, nil}, // not known before a report
	}
	for _, s := range searches {
		w := do(t, mux, "GET", "/hvs/v2/hosts"+s.query, "")
		ids := fieldOf(decode[restapi.HostList](t, w).Hosts, func(h restapi.Host) string { return h.ID })
		if !slices.Equal(ids, s.want) {
			t.Errorf("GET /hosts%s = %v, want %v", s.query, ids, s.want)
		}
	}
	if w := do(t, mux, "GET", "/hvs/v2/hosts?trusted=maybe", ""); w.Code != http.StatusBadRequest {
		t.Errorf("trusted=maybe = %d, want 400", w.Code)
	}

	w = do(t, mux, "PUT", "/hvs/v2/hosts/edge-1", `{"host_name":"edge-1b","description":"moved","flavorgroup_names":["automatic","host_unique"]}`)
	if h := decode[restapi.Host](t, w); w.Code != http.StatusOK || h.HostName != "edge-1b" || len(h.FlavorGroupNames) != 2 {
		t.Errorf("update host = %d %+v", w.Code, h)
	}
	if w := do(t, mux, "PUT", "/hvs/v2/hosts/edge-1", hostBody("edge-1", "nats://edge-2")); w.Code != http.StatusBadRequest {
		t.Errorf("update to another host's connection string = %d, want 400", w.Code)
	}
	if w := do(t, mux, "PUT", "/hvs/v2/hosts/nope", hostBody("x", "")); w.Code != http.StatusNotFound {
		t.Errorf("update of an unknown host = %d, want 404", w.Code)
	}

	// A report moves the status and the hardware uuid; host-status shows it.
	e.enr.refuse = nil
	if w := do(t, mux, "POST", "/hvs/v2/reports", `{"host_id":"edge-1"}`); w.Code != http.StatusCreated {
		t.Fatalf("create report = %d %s", w.Code, w.Body)
	}
	w = do(t, mux, "GET", "/hvs/v2/host-status?hostId=edge-1", "")
	st := decode[struct {
		HostStatus []restapi.HostStatus `json:"host_status"`
	}](t, w).HostStatus
	if len(st) != 1 || st[0].Status != report.StatusConnected || st[0].LastConnected == nil {
		t.Errorf("host-status = %+v", st)
	}
	if w := do(t, mux, "GET", "/hvs/v2/hosts?hostHardwareId="+n.uuid, ""); len(decode[restapi.HostList](t, w).Hosts) != 1 {
		t.Errorf("search by hardware uuid after a report: %s", w.Body)
	}
	if w := do(t, mux, "GET", "/hvs/v2/host-status?hostId=nope", ""); w.Code != http.StatusNotFound {
		t.Errorf("host-status of an unknown host = %d, want 404", w.Code)
	}

	if w := do(t, mux, "DELETE", "/hvs/v2/hosts/edge-1", ""); w.Code != http.StatusNoContent {
		t.Errorf("delete host = %d", w.Code)
	}
	if w := do(t, mux, "GET", "/hvs/v2/hosts/edge-1", ""); w.Code != http.StatusNotFound {
		t.Errorf("get deleted host = %d, want 404", w.Code)
	}
}

func TestReportRoutes(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	mux := newMux(e.svc)

	var ids []string
	for i := range 5 {
		e.clock.Advance(time.Second)
		w := do(t, mux, "POST", "/hvs/v2/reports", `{"host_name":"edge-edge-1"}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("create report %d = %d %s", i, w.Code, w.Body)
		}
		r := decode[report.Report](t, w)
		if !r.Trusted() {
			t.Fatalf("report %d untrusted: %v", i, faultsOf(&r))
		}
		ids = append([]string{r.ID}, ids...)
	}
	for _, tt := range []struct{ body, query string }{
		{`{}`, ""},
		{`{"host_id":"edge-1","host_name":"edge-edge-1"}`, ""},
		{`{"host_id":"edge.1"}`, ""},
		{`{"host_id":"edge-1","extra":1}`, ""},
		{`{"host_id":"edge-1"}`, "?process=later"},
	} {
		if w := do(t, mux, "POST", "/hvs/v2/reports"+tt.query, tt.body); w.Code != http.StatusBadRequest {
			t.Errorf("POST /reports%s %s = %d, want 400", tt.query, tt.body, w.Code)
		}
	}
	for _, q := range []string{"", "?process=sync", "?process=async"} {
		for _, body := range []string{`{"hardware_uuid":"nope"}`, `{"host_id":"nope"}`, `{"host_name":"nope"}`} {
			if w := do(t, mux, "POST", "/hvs/v2/reports"+q, body); w.Code != http.StatusNotFound {
				t.Errorf("POST /reports%s %s (an unknown host) = %d, want 404", q, body, w.Code)
			}
		}
	}

	t.Run("reports are paged newest first with afterId", func(t *testing.T) {
		var got []string
		next := ""
		for page := 0; page < 5; page++ {
			q := "/hvs/v2/reports?hostId=edge-1&limit=2"
			if next != "" {
				q += "&afterId=" + next
			}
			l := decode[restapi.ReportList](t, do(t, mux, "GET", q, ""))
			for _, raw := range l.Reports {
				var r report.Report
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				got = append(got, r.ID)
			}
			if next = l.NextAfterID; next == "" {
				break
			}
		}
		if !slices.Equal(got, ids) {
			t.Errorf("paged ids %v, want %v", got, ids)
		}
	})
	t.Run("latestPerHost and dates select", func(t *testing.T) {
		l := decode[restapi.ReportList](t, do(t, mux, "GET", "/hvs/v2/reports?latestPerHost=true", ""))
		if len(l.Reports) != 1 || !strings.Contains(string(l.Reports[0]), ids[0]) {
			t.Errorf("latestPerHost = %d reports", len(l.Reports))
		}
		future := e.clock.Now().Add(time.Hour).Format(time.RFC3339Nano)
		l = decode[restapi.ReportList](t, do(t, mux, "GET", "/hvs/v2/reports?fromDate="+future, ""))
		if len(l.Reports) != 0 {
			t.Errorf("reports from the future: %d", len(l.Reports))
		}
		for _, q := range []string{"limit=0", "limit=1001", "fromDate=yesterday", "latestPerHost=perhaps"} {
			if w := do(t, mux, "GET", "/hvs/v2/reports?"+q, ""); w.Code != http.StatusBadRequest {
				t.Errorf("GET /reports?%s = %d, want 400", q, w.Code)
			}
		}
	})
	t.Run("a report reads as JSON, JWS and EAR", func(t *testing.T) {
		path := "/hvs/v2/reports/" + ids[0]
		if r := decode[report.Report](t, do(t, mux, "GET", path, "")); r.ID != ids[0] {
			t.Errorf("JSON report id %s", r.ID)
		}
		w := do(t, mux, "GET", path, "", "Accept", restapi.MediaJWS)
		if w.Header().Get("Content-Type") != restapi.MediaJWS || strings.Count(w.Body.String(), ".") != 2 {
			t.Errorf("JWS = %s %q", w.Header().Get("Content-Type"), w.Body)
		}
		for _, w := range []*httptest.ResponseRecorder{
			do(t, mux, "GET", path, "", "Accept", restapi.MediaEAR),
			do(t, mux, "GET", path+"?format=ear", ""),
		} {
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != restapi.MediaEAR || strings.Count(w.Body.String(), ".") != 2 {
				t.Errorf("EAR = %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
		}
		if w := do(t, mux, "GET", "/hvs/v2/reports/nope", ""); w.Code != http.StatusNotFound {
			t.Errorf("unknown report = %d, want 404", w.Code)
		}
	})
	t.Run("a new report is answered signed when asked for jws", func(t *testing.T) {
		for _, w := range []*httptest.ResponseRecorder{
			do(t, mux, "POST", "/hvs/v2/reports?format=jws", `{"host_id":"edge-1"}`),
			do(t, mux, "POST", "/hvs/v2/reports", `{"host_id":"edge-1"}`, "Accept", restapi.MediaJWS),
		} {
			if w.Code != http.StatusCreated || w.Header().Get("Content-Type") != restapi.MediaJWS {
				t.Fatalf("POST for a jws = %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, "/hvs/v2/reports/") {
				t.Fatalf("Location %q", loc)
			}
			stored := do(t, mux, "GET", loc+"?format=jws", "")
			if stored.Code != http.StatusOK || stored.Body.String() != w.Body.String() {
				t.Errorf("the answer is not the stored JWS of %s:\n%s\n%s", loc, w.Body, stored.Body)
			}
			r, err := report.Verify(w.Body.String(), e.roots(), e.clock.Now())
			if err != nil || "/hvs/v2/reports/"+r.ID != loc || r.HostID != "edge-1" || !r.Trusted() {
				t.Errorf("the answered JWS verifies as %+v, %v", r, err)
			}
		}
		if w := do(t, mux, "POST", "/hvs/v2/reports?format=ear", `{"host_id":"edge-1"}`); w.Code != http.StatusBadRequest {
			t.Errorf("POST for an ear = %d, want 400", w.Code)
		}
	})
	t.Run("an async report is made by the workers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.svc.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		before := e.agent.calls.Load()
		w := do(t, mux, "POST", "/hvs/v2/reports?process=async", `{"host_id":"edge-1"}`)
		if w.Code != http.StatusAccepted {
			t.Fatalf("async report = %d %s", w.Code, w.Body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.agent.calls.Load() == before || len(e.svc.queue) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("the async report was not made")
			}
			time.Sleep(5 * time.Millisecond)
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			rs, err := e.st.ListReports(t.Context(), store.ReportFilter{HostID: "edge-1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) >= 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d reports, want the async one too", len(rs))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestFlavorAndGroupRoutes(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.register(t, n)
	mux := newMux(e.svc)

	w := do(t, mux, "POST", "/hvs/v2/flavors", `{"connection_string":"nats://edge-1","partial_flavor_types":["PLATFORM","OS"]}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("flavors from a host = %d %s", w.Code, w.Body)
	}
	fromHost := decode[flavor.SignedFlavorCollection](t, w).SignedFlavors
	if len(fromHost) != 2 || fromHost[0].Flavor.Meta.Description.HardwareUUID != n.uuid {
		t.Fatalf("flavors from the host: %+v", fromHost)
	}

	content := flavor.Flavor{Meta: flavor.Meta{ID: "fleet-os", Description: flavor.Description{FlavorPart: flavor.PartOS}},
		PCRs: []flavor.PCRRule{{PCR: flavor.PCR{Index: 9, Bank: "SHA256"}, Measurement: strings.Repeat("ab", 32), PCRMatches: true}}}
	body, _ := json.Marshal(map[string]any{"flavor_collection": flavor.FlavorCollection{Flavors: []flavor.Flavor{content}}})
	w = do(t, mux, "POST", "/hvs/v2/flavors", string(body))
	if w.Code != http.StatusCreated {
		t.Fatalf("flavors from content = %d %s", w.Code, w.Body)
	}
	signed := decode[flavor.SignedFlavorCollection](t, w).SignedFlavors
	if len(signed) != 1 || flavor.Verify(signed[0], e.roots(), e.clock.Now()) != nil {
		t.Fatalf("content flavor not signed by HVS: %+v", signed)
	}

	// A signed collection is accepted when it verifies, refused when not.
	if w := do(t, mux, "DELETE", "/hvs/v2/flavors/fleet-os", ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete flavor = %d", w.Code)
	}
	body, _ = json.Marshal(map[string]any{"signed_flavor_collection": flavor.SignedFlavorCollection{SignedFlavors: signed}})
	if w := do(t, mux, "POST", "/hvs/v2/flavors", string(body)); w.Code != http.StatusCreated {
		t.Fatalf("signed flavors = %d %s", w.Code, w.Body)
	}
	forged := signed[0]
	forged.Flavor.Meta.ID = "forged"
	forged.Flavor.PCRs[0].Measurement = strings.Repeat("cd", 32)
	body, _ = json.Marshal(map[string]any{"signed_flavor_collection": flavor.SignedFlavorCollection{SignedFlavors: []flavor.SignedFlavor{forged}}})
	if w := do(t, mux, "POST", "/hvs/v2/flavors", string(body)); w.Code != http.StatusBadRequest {
		t.Errorf("a forged signed flavor = %d %s, want 400", w.Code, w.Body)
	}
	if _, err := e.st.FlavorByID(t.Context(), "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the forged flavor was stored: %v", err)
	}

	for _, tt := range []struct{ name, body string }{
		{"two sources", `{"host_id":"edge-1","flavor_collection":{"flavors":[]}}`},
		{"no source", `{"partial_flavor_types":["OS"]}`},
		{"an unknown part", `{"host_id":"edge-1","partial_flavor_types":["FIRMWARE"]}`},
		{"a part no template makes", `{"host_id":"edge-1","partial_flavor_types":["ASSET_TAG"]}`},
		{"an empty collection", `{"flavor_collection":{"flavors":[]}}`},
		{"an unknown group", `{"host_id":"edge-1","flavorgroup_names":["nope"]}`},
	} {
		if w := do(t, mux, "POST", "/hvs/v2/flavors", tt.body); w.Code != http.StatusBadRequest {
			t.Errorf("%s = %d %s, want 400", tt.name, w.Code, w.Body)
		}
	}
	if w := do(t, mux, "POST", "/hvs/v2/flavors", `{"host_id":"nobody"}`); w.Code != http.StatusNotFound {
		t.Errorf("flavors from an unknown host = %d, want 404", w.Code)
	}

	list := func(q string) []string {
		var ids []string
		for _, sf := range decode[flavor.SignedFlavorCollection](t, do(t, mux, "GET", "/hvs/v2/flavors"+q, "")).SignedFlavors {
			ids = append(ids, string(sf.Flavor.Meta.Description.FlavorPart)+"/"+sf.Flavor.Meta.ID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := list("?flavorParts=OS"); len(got) != 2 {
		t.Errorf("OS flavors %v, want the host's and fleet-os", got)
	}
	if got := list("?id=fleet-os"); !slices.Equal(got, []string{"OS/fleet-os"}) {
		t.Errorf("flavor by id %v", got)
	}
	if w := do(t, mux, "GET", "/hvs/v2/flavors?flavorParts=BIOS", ""); w.Code != http.StatusBadRequest {
		t.Errorf("unknown flavorParts = %d, want 400", w.Code)
	}
	if w := do(t, mux, "GET", "/hvs/v2/flavors/fleet-os", ""); decode[flavor.SignedFlavor](t, w).Signature == "" {
		t.Errorf("GET flavor has no signature: %s", w.Body)
	}

	// Flavor groups.
	w = do(t, mux, "POST", "/hvs/v2/flavorgroups", `{"name":"edge","flavor_match_policy_collection":{"flavor_match_policies":[
		{"flavor_part":"PLATFORM","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}}]}}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create group = %d %s", w.Code, w.Body)
	}
	g := decode[flavor.Group](t, w)
	if g.ID == "" || len(g.MatchPolicies) != 1 {
		t.Errorf("created group %+v", g)
	}
	groups := decode[struct {
		Groups []flavor.Group `json:"flavorgroups"`
	}](t, do(t, mux, "GET", "/hvs/v2/flavorgroups", "")).Groups
	if len(groups) != 3 {
		t.Errorf("%d groups, want automatic, host_unique and edge", len(groups))
	}
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"a taken name conflicts", "POST", "/hvs/v2/flavorgroups", `{"name":"edge","flavor_match_policy_collection":{"flavor_match_policies":[{"flavor_part":"OS","match_policy":{"match_type":"ANY_OF","required":"REQUIRED"}}]}}`, http.StatusConflict},
		{"an unknown match type is refused", "POST", "/hvs/v2/flavorgroups", `{"name":"x","flavor_match_policy_collection":{"flavor_match_policies":[{"flavor_part":"OS","match_policy":{"match_type":"SOME_OF","required":"REQUIRED"}}]}}`, http.StatusBadRequest},
		{"an update changes the policies", "PUT", "/hvs/v2/flavorgroups/" + g.ID, `{"name":"edge","flavor_match_policy_collection":{"flavor_match_policies":[{"flavor_part":"OS","match_policy":{"match_type":"ALL_OF","required":"REQUIRED"}}]}}`, http.StatusOK},
		{"the automatic group cannot be deleted", "DELETE", "/hvs/v2/flavorgroups/" + groupID(t, e, "automatic"), "", http.StatusConflict},
		{"a group in use cannot be deleted", "PUT", "/hvs/v2/hosts/edge-1", `{"host_name":"edge-edge-1","flavorgroup_names":["edge"]}`, http.StatusOK},
		{"...", "DELETE", "/hvs/v2/flavorgroups/" + g.ID, "", http.StatusConflict},
		{"once unused it can", "PUT", "/hvs/v2/hosts/edge-1", `{"host_name":"edge-edge-1","flavorgroup_names":["automatic"]}`, http.StatusOK},
		{"...", "DELETE", "/hvs/v2/flavorgroups/" + g.ID, "", http.StatusNoContent},
		{"and is gone", "GET", "/hvs/v2/flavorgroups/" + g.ID, "", http.StatusNotFound},
	} {
		if w := do(t, mux, tt.method, tt.path, tt.body); w.Code != tt.status {
			t.Errorf("%s: %s %s = %d %s, want %d", tt.name, tt.method, tt.path, w.Code, w.Body, tt.status)
		}
	}
}

func groupID(t *testing.T, e *env, name string) string {
	t.Helper()
	g, err := e.st.FlavorGroupByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

func TestRebaselineRoute(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.baseline(t, n)
	mux := newMux(e.svc)
	n.reboot(t, bootLogCmdline2(t))
	w := do(t, mux, "POST", "/hvs/v2/hosts/edge-1/rebaseline", `{"partial_flavor_types":["OS"]}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("rebaseline = %d %s", w.Code, w.Body)
	}
	if got := decode[flavor.SignedFlavorCollection](t, w).SignedFlavors; len(got) != 1 || got[0].Flavor.Meta.Description.FlavorPart != flavor.PartOS {
		t.Errorf("rebaseline of OS made %+v", got)
	}
	wantTrusted(t, mustReport(t, e, n.id))
	if w := do(t, mux, "POST", "/hvs/v2/hosts/edge-1/rebaseline", ""); w.Code != http.StatusCreated {
		t.Errorf("rebaseline without a body = %d %s", w.Code, w.Body)
	}
	if w := do(t, mux, "POST", "/hvs/v2/hosts/nope/rebaseline", ""); w.Code != http.StatusNotFound {
		t.Errorf("rebaseline of an unknown host = %d, want 404", w.Code)
	}
}
