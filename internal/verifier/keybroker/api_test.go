package keybroker_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/verifiertest"
)

// api speaks to a running verifier with one token.
type api struct {
	v     *verifiertest.Verifier
	token string
}

func (a api) do(t *testing.T, method, path string, in any) (int, []byte) {
	t.Helper()
	return a.v.DoJSON(t, method, path, a.token, in)
}

func (a api) must(t *testing.T, method, path string, in any, want int, out any) []byte {
	t.Helper()
	status, b := a.do(t, method, path, in)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return b
}

func login(t *testing.T, v *verifiertest.Verifier) api {
	t.Helper()
	a := api{v: v}
	b := a.must(t, "POST", "/aas/v1/token", map[string]string{"username": "admin", "password": verifiertest.AdminPassword}, http.StatusOK, nil)
	return api{v: v, token: string(b)}
}

// withPermission returns a token that holds exactly one HVS rule.
func withPermission(t *testing.T, admin api, rule string) api {
	t.Helper()
	b := admin.must(t, "POST", "/aas/v1/custom-claims-token", map[string]any{
		"subject": "secrets-test", "validity_seconds": 600,
		"claims": map[string]any{"permissions": []map[string]any{{"service": "HVS", "rules": []string{rule}}}},
	}, http.StatusOK, nil)
	return api{v: admin.v, token: string(b)}
}

// TestSecretsAPI manages a secret over the real verifier's API and checks
// that the value never comes back out.
func TestSecretsAPI(t *testing.T) {
	v := verifiertest.Start(t, t.TempDir())
	admin := login(t, v)
	const value = "the data volume key: 7f3a91c2e4"
	var created restapi.Secret
	admin.must(t, "POST", "/hvs/v2/secrets", restapi.SecretRequest{Name: "volume-key", Value: []byte(value),
		Policy: restapi.SecretPolicy{HostIDs: []string{"h1"}, BindPCRs: true}}, http.StatusCreated, &created)
	if created.ID == "" || created.Version != 1 || created.Name != "volume-key" || !created.Policy.BindPCRs {
		t.Fatalf("created %+v", created)
	}

	t.Run("the value is never returned", func(t *testing.T) {
		for _, path := range []string{"/hvs/v2/secrets", "/hvs/v2/secrets/" + created.ID, "/hvs/v2/secrets?nameEqualTo=volume-key"} {
			b := admin.must(t, "GET", path, nil, http.StatusOK, nil)
			if strings.Contains(string(b), "7f3a91c2e4") || strings.Contains(string(b), "N2YzYTkxYzJlNA") || strings.Contains(string(b), `"value"`) {
				t.Errorf("GET %s shows the value: %s", path, b)
			}
		}
	})
	t.Run("a second secret of the same name conflicts", func(t *testing.T) {
		admin.must(t, "POST", "/hvs/v2/secrets", restapi.SecretRequest{Name: "volume-key", Value: []byte("x"),
			Policy: restapi.SecretPolicy{HostIDs: []string{"h1"}}}, http.StatusConflict, nil)
	})
	t.Run("a policy naming nobody is a bad request", func(t *testing.T) {
		admin.must(t, "POST", "/hvs/v2/secrets", restapi.SecretRequest{Name: "nobody", Value: []byte("x")}, http.StatusBadRequest, nil)
	})
	t.Run("a new value is the next version", func(t *testing.T) {
		var got restapi.Secret
		admin.must(t, "PUT", "/hvs/v2/secrets/"+created.ID, restapi.SecretUpdate{Value: []byte("rotated")}, http.StatusOK, &got)
		if got.Version != 2 || !got.Policy.BindPCRs {
			t.Errorf("after rotation %+v", got)
		}
	})
	t.Run("a user without the permission cannot read or change a policy", func(t *testing.T) {
		searcher := withPermission(t, admin, "secrets:search:*")
		searcher.must(t, "GET", "/hvs/v2/secrets", nil, http.StatusOK, nil)
		searcher.must(t, "GET", "/hvs/v2/secrets/"+created.ID, nil, http.StatusForbidden, nil)
		searcher.must(t, "PUT", "/hvs/v2/secrets/"+created.ID, restapi.SecretUpdate{Policy: &restapi.SecretPolicy{HostIDs: []string{"evil"}}}, http.StatusForbidden, nil)
		searcher.must(t, "DELETE", "/hvs/v2/secrets/"+created.ID, nil, http.StatusForbidden, nil)
		reports := withPermission(t, admin, "reports:search:*")
		reports.must(t, "GET", "/hvs/v2/secrets", nil, http.StatusForbidden, nil)
		var got restapi.Secret
		admin.must(t, "GET", "/hvs/v2/secrets/"+created.ID, nil, http.StatusOK, &got)
		if got.Policy.HostIDs[0] != "h1" {
			t.Errorf("the policy changed: %+v", got.Policy)
		}
	})
	t.Run("a deleted secret is gone", func(t *testing.T) {
		admin.must(t, "DELETE", "/hvs/v2/secrets/"+created.ID, nil, http.StatusNoContent, nil)
		admin.must(t, "GET", "/hvs/v2/secrets/"+created.ID, nil, http.StatusNotFound, nil)
	})
}
