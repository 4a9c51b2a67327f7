package verifier

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// pathParam finds {name} parameters in a route pattern.
var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// OpenAPI builds the OpenAPI 3.1 document of the verifier from its route
// table, so the document cannot drift from what is served: every route, its
// path parameters and the permission (or role) it needs.
func OpenAPI() ([]byte, error) {
	paths := map[string]map[string]any{}
	for _, r := range Routes() {
		ops, ok := paths[r.Pattern]
		if !ok {
			ops = map[string]any{}
			paths[r.Pattern] = ops
		}
		op := map[string]any{
			"operationId": operationID(r),
			"tags":        []string{tag(r.Pattern)},
			"responses": map[string]any{
				"default": map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}},
			},
		}
		switch {
		case r.Service != "":
			op["security"] = []map[string][]string{{"bearer": {}}}
			op["x-permission"] = r.Service + ":" + r.Rule
			op["description"] = "Needs the permission " + r.Service + ":" + r.Rule + " (401 without a valid token, 403 without the permission)."
		case r.Role != "":
			op["security"] = []map[string][]string{{"bearer": {}}}
			op["x-role"] = r.Role
			op["description"] = "Needs a token with the role " + r.Role + " whose context allows exactly the request."
		default:
			op["security"] = []map[string][]string{}
			op["description"] = "Public."
		}
		var params []map[string]any
		for _, m := range pathParam.FindAllStringSubmatch(r.Pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]string{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		ops[strings.ToLower(r.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Trusted Compute verifier",
			"version":     "v1",
			"description": "AAS (/aas/v1), CMS (/cms/v1) and HVS (/hvs/v2) of the Trusted Compute verifier. TLS 1.3 only; JSON bodies need Content-Type application/json and unknown fields are rejected.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT (ES256) from POST /aas/v1/token"}}, //nolint:gosec // G101: a scheme description, not a credential
			"schemas": map[string]any{"Error": map[string]any{
				"type":       "object",
				"properties": map[string]any{"error": map[string]string{"type": "string"}, "status": map[string]string{"type": "integer"}},
			}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func operationID(r Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Method))
	for _, part := range strings.Split(r.Pattern, "/") {
		part = strings.Trim(part, "{}")
		if part == "" || part == "v1" || part == "v2" || part == ".well-known" {
			continue
		}
		part = strings.NewReplacer("-", "", "_", "", ".", "").Replace(part)
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func tag(pattern string) string {
	for _, t := range []string{"aas", "cms", "hvs"} {
		if strings.HasPrefix(pattern, "/"+t+"/") {
			return strings.ToUpper(t)
		}
	}
	return "AAS"
}

func (v *Verifier) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	doc, err := OpenAPI()
	if err != nil {
		http.Error(w, "openapi document unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}
