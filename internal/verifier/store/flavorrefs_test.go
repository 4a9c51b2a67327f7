package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
)

// HostFlavorRefs names a host's flavors with the SHA-256 of their signed
// bytes, which CreateFlavor records; a flavor stored before the digest
// column has none, and its bytes are read with FlavorSigned.
func TestHostFlavorRefsCarryTheDigestOfTheSignedBytes(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		if err := s.CreateFlavorGroup(ctx, FlavorGroup{ID: "g1", Name: "group-1", Policies: []byte("[]")}); err != nil {
			t.Fatal(err)
		}
		signed := map[string][]byte{"f-new": []byte(`{"flavor":"new"}`), "f-old": []byte(`{"flavor":"old"}`)}
		for id, b := range signed {
			if err := s.CreateFlavor(ctx, Flavor{ID: id, Part: "OS", HostID: "h1", Signed: b, GroupIDs: []string{"g1"}}); err != nil {
				t.Fatal(err)
			}
		}
		// f-old as a release before migration 0009 stored it.
		if _, err := s.wdb.ExecContext(ctx, `UPDATE flavors SET signed_sha256 = $1 WHERE id = 'f-old'`, []byte{}); err != nil {
			t.Fatal(err)
		}
		refs, err := s.HostFlavorRefs(ctx, "g1", "h1", "")
		if err != nil || len(refs) != 2 {
			t.Fatalf("HostFlavorRefs = %+v, %v; want 2", refs, err)
		}
		for _, ref := range refs {
			b, err := s.FlavorSigned(ctx, ref.ID)
			if err != nil || !bytes.Equal(b, signed[ref.ID]) {
				t.Fatalf("FlavorSigned(%s) = %q, %v; want %q", ref.ID, b, err, signed[ref.ID])
			}
			want := sha256.Sum256(signed[ref.ID])
			switch {
			case ref.ID == "f-old" && ref.SignedSHA256 != nil:
				t.Errorf("the flavor stored without a digest has digest %x", ref.SignedSHA256)
			case ref.ID == "f-new" && !bytes.Equal(ref.SignedSHA256, want[:]):
				t.Errorf("digest of %s = %x, want %x", ref.ID, ref.SignedSHA256, want)
			}
		}
		if _, err := s.FlavorSigned(ctx, "none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("FlavorSigned of no flavor = %v, want ErrNotFound", err)
		}
	})
}

// A report names its host's flavors at every report: on SQLite the query
// must read the covering index only. Reading the rows would walk every
// overflow page of each signed document, which an 800-line IMA flavor
// fills by the dozen, since the columns read follow the document.
func TestHostFlavorRefsReadOnlyTheCoveringIndexOnSQLite(t *testing.T) {
	plan := sqlitePlan(t, hostFlavorRefsQuery, "g1", "h1", "u1")
	if !slices.ContainsFunc(plan, func(d string) bool {
		return strings.HasPrefix(d, "SEARCH f USING COVERING INDEX flavors_binding_refs")
	}) {
		t.Fatalf("plan %q does not search flavors by the covering index flavors_binding_refs", plan)
	}
}

// sqlitePlan is the detail of each step of SQLite's plan of query on an
// empty store.
func sqlitePlan(t *testing.T, query string, args ...any) []string {
	t.Helper()
	s := openTest(t, sqliteFileDSN(t))
	rows, err := s.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
