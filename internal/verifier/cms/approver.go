package cms

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The role that allows CSR signing: CMS:CertApprover with a context
// "CN=<cn>;SAN=<san1>,<san2>;certType=<t>".
const (
	RoleService      = "CMS"
	RoleCertApprover = "CertApprover"
)

// Approval is what one CertApprover role allows: exactly one common name,
// one set of subject alternative names (DNS names and IP addresses, in any
// order) and one certificate type.
type Approval struct {
	CN       string
	SANs     []string
	CertType string
}

// ParseApproval parses a CertApprover role context strictly: the keys CN and
// certType are required, SAN is optional, each appears once, segments are
// separated by ';' without spaces, and anything else is an error (a role
// whose context does not parse grants nothing).
func ParseApproval(context string) (Approval, error) {
	var a Approval
	seen := map[string]bool{}
	for _, seg := range strings.Split(context, ";") {
		key, value, ok := strings.Cut(seg, "=")
		if !ok {
			return Approval{}, fmt.Errorf("segment %q is not key=value", seg)
		}
		if seen[key] {
			return Approval{}, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "CN":
			if value == "" {
				return Approval{}, errors.New("CN is empty")
			}
			a.CN = value
		case "SAN":
			if value == "" {
				return Approval{}, errors.New("SAN is empty (leave it out to allow no names)")
			}
			a.SANs = strings.Split(value, ",")
			names := map[string]bool{}
			for _, s := range a.SANs {
				if s == "" {
					return Approval{}, errors.New("SAN holds an empty name")
				}
				k := sanKeyOf(s)
				if names[k] {
					return Approval{}, fmt.Errorf("SAN names %q twice", s)
				}
				names[k] = true
			}
		case "certType":
			if err := checkCertType(value); err != nil {
				return Approval{}, fmt.Errorf("certType %q is unknown", value)
			}
			a.CertType = value
		default:
			return Approval{}, fmt.Errorf("key %q is unknown (allowed: CN, SAN, certType)", key)
		}
	}
	if a.CN == "" {
		return Approval{}, errors.New("CN is missing")
	}
	if a.CertType == "" {
		return Approval{}, errors.New("certType is missing")
	}
	return a, nil
}

// String formats a as a role context that ParseApproval accepts.
func (a Approval) String() string {
	s := "CN=" + a.CN
	if len(a.SANs) > 0 {
		s += ";SAN=" + strings.Join(a.SANs, ",")
	}
	return s + ";certType=" + a.CertType
}

// Request is what a CSR asks for.
type Request struct {
	CN       string
	DNSNames []string
	IPs      []net.IP
	CertType string
}

// MismatchError says why an approval does not allow a request. Reasons name
// each mismatch.
type MismatchError struct {
	Reasons []string
}

func (e *MismatchError) Error() string { return strings.Join(e.Reasons, "; ") }

// Allows returns nil when a allows exactly req, and a *MismatchError
// otherwise.
func (a Approval) Allows(req Request) error {
	var reasons []string
	if req.CN != a.CN {
		reasons = append(reasons, fmt.Sprintf("CSR common name %q is not allowed by the token (allowed: %q)", req.CN, a.CN))
	}

	allowed := map[string]string{} // key → name as written
	for _, s := range a.SANs {
		allowed[sanKeyOf(s)] = s
	}
	asked := map[string]string{}
	for _, d := range req.DNSNames {
		asked["dns:"+strings.ToLower(d)] = d
	}
	for _, ip := range req.IPs {
		if addr, ok := netip.AddrFromSlice(ip); ok {
			asked["ip:"+addr.Unmap().String()] = addr.Unmap().String()
		} else {
			asked["ip:invalid"] = fmt.Sprintf("%v", []byte(ip))
		}
	}
	var extra, missing []string
	for k, v := range asked {
		if _, ok := allowed[k]; !ok {
			extra = append(extra, strconv.Quote(v))
		}
	}
	for k, v := range allowed {
		if _, ok := asked[k]; !ok {
			missing = append(missing, strconv.Quote(v))
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		slices.Sort(extra)
		slices.Sort(missing)
		var parts []string
		if len(extra) > 0 {
			parts = append(parts, "CSR subject alternative names "+strings.Join(extra, ", ")+" are not allowed by the token")
		}
		if len(missing) > 0 {
			parts = append(parts, "CSR lacks subject alternative names "+strings.Join(missing, ", ")+" that the token requires")
		}
		reasons = append(reasons, strings.Join(parts, ", ")+" (allowed: "+quoteList(a.SANs)+")")
	}

	if req.CertType != a.CertType {
		reasons = append(reasons, fmt.Sprintf("certificate type %q is not allowed by the token (allowed: %q)", req.CertType, a.CertType))
	}
	if len(reasons) > 0 {
		return &MismatchError{Reasons: reasons}
	}
	return nil
}

// sanKeyOf classifies a SAN of a role context: an IP address (normalized)
// or a DNS name (case-insensitive).
func sanKeyOf(s string) string {
	if addr, err := netip.ParseAddr(s); err == nil {
		return "ip:" + addr.Unmap().String()
	}
	return "dns:" + strings.ToLower(s)
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	slices.Sort(q)
	return strings.Join(q, ", ")
}
