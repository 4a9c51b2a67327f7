package signerid

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestX5CRoundTrip(t *testing.T) {
	root := mint(t, caTemplate("root", false), nil)
	ca := mint(t, caTemplate(CACommonName, true), &root)
	leaf := mint(t, leafTemplate(LeafCommonName), &ca)
	chain := []*x509.Certificate{leaf.cert, ca.cert, root.cert}
	got, err := ParseX5C(EncodeX5C(chain), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, chain, (*x509.Certificate).Equal) {
		t.Error("ParseX5C(EncodeX5C(chain)) is not the chain")
	}
}

func TestParseX5CRefuses(t *testing.T) {
	leaf := EncodeX5C([]*x509.Certificate{mint(t, leafTemplate(LeafCommonName), nil).cert})[0]
	tests := []struct {
		name string
		x5c  []string
		want string
	}{
		{"an empty chain is refused", nil, "x5c has 0 certificates, want 1 to 2"},
		{"a chain longer than the limit is refused", []string{leaf, leaf, leaf}, "x5c has 3 certificates, want 1 to 2"},
		{"base64 with padding bits set is refused", []string{leaf, "AB=="}, "x5c[1]: illegal base64"},
		{"url-safe base64 is refused", []string{strings.NewReplacer("+", "-", "/", "_").Replace(leaf) + "-"}, "x5c[0]: illegal base64"},
		{"bytes that are not a certificate are refused", []string{"AAAA"}, "x5c[0]: x509:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, err := ParseX5C(tt.x5c, 2)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseX5C() = %d certificates, %v, want an error starting %q", len(chain), err, tt.want)
			}
		})
	}
}

func TestValidityIsTheIntersectionOfTheChain(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	chain := []*x509.Certificate{
		{NotBefore: t0.Add(2 * time.Hour), NotAfter: t0.Add(10 * time.Hour)},
		{NotBefore: t0, NotAfter: t0.Add(5 * time.Hour)},
		{NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(20 * time.Hour)},
	}
	from, until := Validity(chain)
	if !from.Equal(t0.Add(2*time.Hour)) || !until.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("Validity() = %s, %s, want the latest NotBefore and the earliest NotAfter", from, until)
	}
}

// FuzzParseX5C: parsing never panics, and a chain that parses encodes back
// to the very strings it came from (no second spelling is accepted).
func FuzzParseX5C(f *testing.F) {
	root := mint(f, caTemplate("root", false), nil)
	leaf := mint(f, leafTemplate(LeafCommonName), &root)
	f.Add(strings.Join(EncodeX5C([]*x509.Certificate{leaf.cert, root.cert}), ","))
	f.Add("AB==")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		x5c := strings.Split(s, ",")
		chain, err := ParseX5C(x5c, 8)
		if err != nil {
			return
		}
		if !slices.Equal(EncodeX5C(chain), x5c) {
			t.Fatalf("ParseX5C accepted %q, which encodes back differently", s)
		}
	})
}
