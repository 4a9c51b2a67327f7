package hvs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/report"
)

// policyDoc is a runtime policy that allows each file of files (path to
// content) with the SHA-256 of its content, as sandbox.Root.MeasureFiles
// measures it.
func policyDoc(files map[string]string) string {
	digests := map[string][]string{}
	for path, content := range files {
		sum := sha256.Sum256([]byte(content))
		digests[path] = []string{"sha256:" + hex.EncodeToString(sum[:])}
	}
	b, err := json.Marshal(map[string]any{"meta": map[string]int{"version": 1}, "digests": digests, "boot_aggregate": false})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func policyBody(name string, files map[string]string) string {
	return fmt.Sprintf(`{"name":%q,"description":"kata nodes","policy":%s}`, name, policyDoc(files))
}

// largePolicyDoc is a valid document of about size bytes.
func largePolicyDoc(size int) string {
	var b strings.Builder
	b.WriteString(`{"meta":{"version":1},"digests":{`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		fmt.Fprintf(&b, `"/usr/lib/file-%07d":["sha256:%x"]`, i, sum)
	}
	b.WriteString(`}}`)
	return b.String()
}

func countPolicies(t *testing.T, mux http.Handler) int {
	t.Helper()
	w := do(t, mux, "GET", "/hvs/v2/ima-policies", "")
	if w.Code != http.StatusOK {
		t.Fatalf("list = %d %s", w.Code, w.Body)
	}
	return len(decode[restapi.IMAPolicyList](t, w).Policies)
}

func TestIMAPolicyRoutes(t *testing.T) {
	n := newNode(t, "edge-1")
	e := newEnv(t, []*node{n})
	e.register(t, n)
	mux := newMux(e.svc)

	w := do(t, mux, "POST", "/hvs/v2/ima-policies", policyBody("kata", bootFiles))
	if w.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", w.Code, w.Body)
	}
	created := decode[restapi.IMAPolicy](t, w)
	if created.Name != "kata" || created.Version != 1 || created.Description != "kata nodes" || created.Policy != nil ||
		w.Header().Get("Location") != "/hvs/v2/ima-policies/"+created.ID {
		t.Errorf("created %+v, location %q", created, w.Header().Get("Location"))
	}

	t.Run("the stored version is the canonical document signed by the verifier", func(t *testing.T) {
		w := do(t, mux, "GET", "/hvs/v2/ima-policies/kata", "")
		if w.Code != http.StatusOK {
			t.Fatalf("get = %d %s", w.Code, w.Body)
		}
		got := decode[restapi.IMAPolicy](t, w)
		statement, err := report.VerifyIMAPolicy(got.Signature, e.roots(), e.clock.Now())
		if err != nil {
			t.Fatalf("the signature does not verify: %v", err)
		}
		var st imaPolicyStatement
		if err := json.Unmarshal(statement, &st); err != nil {
			t.Fatal(err)
		}
		var doc bytes.Buffer
		if err := json.Compact(&doc, got.Policy); err != nil {
			t.Fatal(err)
		}
		if st.ID != created.ID || st.Name != "kata" || st.Version != 1 || st.Digest != documentDigest(doc.Bytes()) || got.Digest != st.Digest {
			t.Errorf("statement %+v, digest %s, want the policy's version 1 and its document's digest", st, got.Digest)
		}
	})

	t.Run("an update is a new version and the old one stays readable", func(t *testing.T) {
		files := map[string]string{"/opt/kata/bin/qemu": "qemu"}
		w := do(t, mux, "PUT", "/hvs/v2/ima-policies/"+created.ID, `{"policy":`+policyDoc(files)+`}`)
		if w.Code != http.StatusOK {
			t.Fatalf("update = %d %s", w.Code, w.Body)
		}
		if got := decode[restapi.IMAPolicy](t, w); got.Version != 2 || got.Description != "kata nodes" {
			t.Errorf("updated %+v, want version 2 with its description", got)
		}
		latest := decode[restapi.IMAPolicy](t, do(t, mux, "GET", "/hvs/v2/ima-policies/kata", ""))
		first := decode[restapi.IMAPolicy](t, do(t, mux, "GET", "/hvs/v2/ima-policies/kata?version=1", ""))
		if latest.Version != 2 || !strings.Contains(string(latest.Policy), "/opt/kata/bin/qemu") || latest.LatestVersion != 2 {
			t.Errorf("latest %+v", latest)
		}
		if first.Version != 1 || strings.Contains(string(first.Policy), "/opt/kata/bin/qemu") || first.LatestVersion != 2 {
			t.Errorf("version 1 %+v", first)
		}
	})

	t.Run("bad input is refused with a clear 400 and nothing is stored", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body, want string
		}{
			{"a document with an unknown field", "POST", "/hvs/v2/ima-policies", `{"name":"x","policy":{"meta":{"version":1},"allowlist":{}}}`, `unknown field \"allowlist\"`},
			{"a digest that is not hex", "POST", "/hvs/v2/ima-policies", `{"name":"x","policy":{"meta":{"version":1},"digests":{"/bin/sh":["sha256:zz"]}}}`, `digests[\"/bin/sh\"][0]`},
			{"no name", "POST", "/hvs/v2/ima-policies", `{"policy":{"meta":{"version":1}}}`, "want 1 to 128 letters"},
			{"a name with a slash", "POST", "/hvs/v2/ima-policies", `{"name":"a/b","policy":{"meta":{"version":1}}}`, "want 1 to 128 letters"},
			{"no document", "POST", "/hvs/v2/ima-policies", `{"name":"x"}`, "policy is required"},
			{"an update with a bad document", "PUT", "/hvs/v2/ima-policies/kata", `{"policy":{"meta":{"version":2}}}`, "meta.version"},
			{"a rename", "PUT", "/hvs/v2/ima-policies/kata", `{"name":"other","policy":{"meta":{"version":1}}}`, "cannot be renamed"},
			{"a version that is not a number", "GET", "/hvs/v2/ima-policies/kata?version=latest", "", "version must be"},
			{"a force that is not true or false", "DELETE", "/hvs/v2/ima-policies/kata?force=sure", "", "force must be true or false"},
			{"an assignment of nothing", "POST", "/hvs/v2/ima-policies/kata/assign", `{}`, "at least one"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := do(t, mux, tc.method, tc.path, tc.body)
				if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
					t.Errorf("= %d %s, want 400 naming %s", w.Code, w.Body, tc.want)
				}
			})
		}
		if n := countPolicies(t, mux); n != 1 {
			t.Errorf("%d policies stored, want 1", n)
		}
		if got := decode[restapi.IMAPolicy](t, do(t, mux, "GET", "/hvs/v2/ima-policies/kata", "")); got.Version != 2 {
			t.Errorf("a refused update moved the policy to version %d", got.Version)
		}
	})

	t.Run("a policy is assigned to hosts and groups, and deleted only when unassigned or forced", func(t *testing.T) {
		w := do(t, mux, "POST", "/hvs/v2/ima-policies/kata/assign", `{"host_names":["edge-edge-1"],"flavorgroup_names":["automatic"]}`)
		if got := decode[restapi.IMAPolicy](t, w); w.Code != http.StatusOK ||
			!slices.Equal(got.HostIDs, []string{"edge-1"}) || !slices.Equal(got.FlavorGroupNames, []string{"automatic"}) {
			t.Fatalf("assign = %d %s", w.Code, w.Body)
		}
		if w := do(t, mux, "POST", "/hvs/v2/ima-policies/kata/assign", `{"host_ids":["nope"]}`); w.Code != http.StatusNotFound {
			t.Errorf("assign to an unknown host = %d %s, want 404", w.Code, w.Body)
		}
		if w := do(t, mux, "DELETE", "/hvs/v2/ima-policies/kata", ""); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "force=true") {
			t.Errorf("delete while assigned = %d %s, want 409", w.Code, w.Body)
		}
		w = do(t, mux, "POST", "/hvs/v2/ima-policies/kata/unassign", `{"host_ids":["edge-1"]}`)
		if got := decode[restapi.IMAPolicy](t, w); w.Code != http.StatusOK || len(got.HostIDs) != 0 || len(got.FlavorGroupNames) != 1 {
			t.Fatalf("unassign = %d %s", w.Code, w.Body)
		}
		if w := do(t, mux, "DELETE", "/hvs/v2/ima-policies/kata?force=true", ""); w.Code != http.StatusNoContent {
			t.Errorf("forced delete = %d %s, want 204", w.Code, w.Body)
		}
		if w := do(t, mux, "GET", "/hvs/v2/ima-policies/kata", ""); w.Code != http.StatusNotFound {
			t.Errorf("get after delete = %d %s, want 404", w.Code, w.Body)
		}
	})
}

func TestIMAPolicyDocumentsUpTo32MiB(t *testing.T) {
	e := newEnv(t, nil)
	mux := newMux(e.svc)
	tests := []struct {
		name string
		size int
		want int
	}{
		{"a policy of 3 MiB, beyond the API's usual body limit, is stored", 3 << 20, http.StatusCreated},
		{"a policy over 32 MiB is refused as too large", 33 << 20, http.StatusRequestEntityTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"name":"big-%d","policy":%s}`, i, largePolicyDoc(tt.size))
			if w := do(t, mux, "POST", "/hvs/v2/ima-policies", body); w.Code != tt.want {
				t.Errorf("create = %d %.300s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
	if w := do(t, mux, "POST", "/hvs/v2/hosts", `{"host_name":"`+strings.Repeat("x", 2<<20)+`"}`); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB host = %d, want 413: the raised limit is for policies only", w.Code)
	}
}

func TestConcurrentUpdatesOfAPolicyEachStoreAVersion(t *testing.T) {
	e := newEnv(t, nil)
	p, err := e.svc.CreateIMAPolicy(t.Context(), "kata", "", []byte(policyDoc(bootFiles)))
	if err != nil {
		t.Fatal(err)
	}
	const updates = 4
	errs := make(chan error, updates)
	for i := range updates {
		go func() {
			_, err := e.svc.UpdateIMAPolicy(t.Context(), p.ID, nil, []byte(policyDoc(map[string]string{fmt.Sprintf("/usr/bin/tool-%d", i): "x"})))
			errs <- err
		}()
	}
	for range updates {
		if err := <-errs; err != nil {
			t.Errorf("update: %v", err)
		}
	}
	got, err := e.st.IMAPolicyByID(t.Context(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LatestVersion != 1+updates {
		t.Errorf("latest version %d, want %d", got.LatestVersion, 1+updates)
	}
}
