package fleet

import (
	"testing"

	"github.com/google/uuid"
)

func TestNodeUUIDsStayValidAndDistinctPastNode255(t *testing.T) {
	if got, want := nodeUUID(0), "6f1f7c1e-2d6b-4b8a-9c3e-5a4d3c2b1a00"; got != want {
		t.Errorf("node 0 has uuid %s, want the one it always had, %s", got, want)
	}
	seen := map[string]int{}
	for i := range 10000 {
		u := nodeUUID(i)
		if _, err := uuid.Parse(u); err != nil || len(u) != 36 {
			t.Fatalf("node %d has an invalid uuid %q: %v", i, u, err)
		}
		if j, ok := seen[u]; ok {
			t.Fatalf("nodes %d and %d share uuid %s", j, i, u)
		}
		seen[u] = i
	}
}
