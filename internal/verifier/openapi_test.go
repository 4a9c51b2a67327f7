package verifier

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/openapi.json")

// TestOpenAPIDocumentIsCheckedIn keeps docs/openapi.json equal to the document
// built from the route table; run `go test ./internal/verifier -run OpenAPI -update`
// after changing routes.
func TestOpenAPIDocumentIsCheckedIn(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc = append(doc, '\n')
	path := filepath.Join("..", "..", "docs", "openapi.json")
	if *update {
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatal("docs/openapi.json is stale: run go test ./internal/verifier -run OpenAPI -update")
	}
	if len(Routes()) == 0 {
		t.Fatal("no routes")
	}
}
