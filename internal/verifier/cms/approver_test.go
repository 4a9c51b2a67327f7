package cms

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"trustedcompute.io/tc/internal/errtest"
)

func TestParseApproval(t *testing.T) {
	tests := []struct {
		name    string
		context string
		want    Approval
		wantErr string
	}{
		{"a full context parses", "CN=agent;SAN=node1.example,10.0.0.7;certType=TLS",
			Approval{CN: "agent", SANs: []string{"node1.example", "10.0.0.7"}, CertType: TypeTLS}, ""},
		{"keys may come in any order", "certType=Signing;CN=Flavor Signer",
			Approval{CN: "Flavor Signer", CertType: TypeSigning}, ""},
		{"a CN may hold commas and equals signs", "CN=a,b=c;certType=TLS-Client",
			Approval{CN: "a,b=c", CertType: TypeTLSClient}, ""},
		{"an unknown key grants nothing", "CN=a;certType=TLS;O=acme", Approval{}, `key "O" is unknown`},
		{"keys are case-sensitive", "cn=a;certType=TLS", Approval{}, `key "cn" is unknown`},
		{"a space after a separator is not trimmed", "CN=a; certType=TLS", Approval{}, `key " certType" is unknown`},
		{"a repeated key grants nothing", "CN=a;CN=b;certType=TLS", Approval{}, `appears twice`},
		{"a missing CN grants nothing", "SAN=a.example;certType=TLS", Approval{}, "CN is missing"},
		{"an empty CN grants nothing", "CN=;certType=TLS", Approval{}, "CN is empty"},
		{"a missing certType grants nothing", "CN=a", Approval{}, "certType is missing"},
		{"an unknown certType grants nothing", "CN=a;certType=root", Approval{}, `certType "root" is unknown`},
		{"an empty SAN entry grants nothing", "CN=a;SAN=a.example,;certType=TLS", Approval{}, "empty name"},
		{"an empty SAN grants nothing", "CN=a;SAN=;certType=TLS", Approval{}, "SAN is empty"},
		{"a SAN named twice grants nothing", "CN=a;SAN=A.example,a.example;certType=TLS", Approval{}, "twice"},
		{"a trailing separator grants nothing", "CN=a;certType=TLS;", Approval{}, "not key=value"},
		{"an empty context grants nothing", "", Approval{}, "not key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseApproval(tt.context)
			if !errtest.Want(t, err, tt.wantErr) {
				return
			}
			if got.CN != tt.want.CN || got.CertType != tt.want.CertType || !slices.Equal(got.SANs, tt.want.SANs) {
				t.Fatalf("ParseApproval(%q) = %+v, want %+v", tt.context, got, tt.want)
			}
		})
	}
}

func TestApprovalAllowsExactlyItsCSR(t *testing.T) {
	a := Approval{CN: "agent", SANs: []string{"Node1.example", "10.0.0.7", "::ffff:10.0.0.8"}, CertType: TypeTLS}
	ips := []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("10.0.0.8")}
	tests := []struct {
		name     string
		req      Request
		wantMiss []string
	}{
		{"the exact CSR in another order and case is allowed",
			Request{CN: "agent", DNSNames: []string{"node1.example"}, IPs: []net.IP{ips[1], ips[0]}, CertType: TypeTLS}, nil},
		{"another common name is refused, naming both",
			Request{CN: "hvs", DNSNames: []string{"node1.example"}, IPs: ips, CertType: TypeTLS},
			[]string{`CSR common name "hvs" is not allowed by the token (allowed: "agent")`}},
		{"an extra DNS name is refused, naming it",
			Request{CN: "agent", DNSNames: []string{"node1.example", "evil.example"}, IPs: ips, CertType: TypeTLS},
			[]string{`"evil.example" are not allowed`}},
		{"a missing IP address is refused, naming it",
			Request{CN: "agent", DNSNames: []string{"node1.example"}, IPs: ips[:1], CertType: TypeTLS},
			[]string{`lacks subject alternative names "::ffff:10.0.0.8"`}},
		{"an IP address asked for as a DNS name is refused",
			Request{CN: "agent", DNSNames: []string{"node1.example", "10.0.0.8"}, IPs: ips[:1], CertType: TypeTLS},
			[]string{`"10.0.0.8" are not allowed`, `lacks subject alternative names`}},
		{"another certificate type is refused, naming both",
			Request{CN: "agent", DNSNames: []string{"node1.example"}, IPs: ips, CertType: TypeSigning},
			[]string{`certificate type "Signing" is not allowed by the token (allowed: "TLS")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.Allows(tt.req)
			if tt.wantMiss == nil {
				if err != nil {
					t.Fatalf("Allows: %v", err)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Allows error = %v, want a *MismatchError", err)
			}
			for _, w := range tt.wantMiss {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Allows error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzParseApproval(f *testing.F) {
	for _, s := range []string{
		"CN=agent;SAN=node1.example,10.0.0.7;certType=TLS",
		"certType=Signing;CN=x",
		"CN=a;CN=b",
		"CN=a;SAN=::1,[::1];certType=TLS-Client",
		";;==;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseApproval(s)
		if err != nil {
			return
		}
		if a.CN == "" || checkCertType(a.CertType) != nil {
			t.Fatalf("ParseApproval(%q) = %+v without a CN or a known certType", s, a)
		}
		// The canonical form parses to the same approval, and the approval
		// allows the request it describes.
		b, err := ParseApproval(a.String())
		if err != nil || b.CN != a.CN || b.CertType != a.CertType || !slices.Equal(b.SANs, a.SANs) {
			t.Fatalf("ParseApproval(%q) = %+v, %v; want %+v", a.String(), b, err, a)
		}
		var req Request
		req.CN, req.CertType = a.CN, a.CertType
		for _, san := range a.SANs {
			if ip := net.ParseIP(san); ip != nil && sanKeyOf(san) == "ip:"+ipString(ip) {
				req.IPs = append(req.IPs, ip)
			} else if !strings.HasPrefix(sanKeyOf(san), "ip:") {
				req.DNSNames = append(req.DNSNames, san)
			} else {
				return // an address net.IP cannot hold (a zone); skip
			}
		}
		if err := a.Allows(req); err != nil {
			t.Fatalf("approval %+v does not allow its own request: %v", a, err)
		}
	})
}

func ipString(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.String()
}
