// Package deps holds the dependency rule of the module as a test, the way
// tailscale's deptest does: each small binary or pure package lists what it
// must never link, and `go list -deps` shows what it does.
package deps

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// rule forbids a package (and everything it links) a set of import path
// prefixes, or allows it only a set of prefixes beside the standard library.
type rule struct {
	pkg       string
	forbidden []string // import path prefixes it must not link
	onlyAllow []string // if set: the only non-standard-library prefixes allowed
}

// agentForbidden is what the trust agent must never link.
var agentForbidden = []string{
	"github.com/nats-io/nats-server",
	// The agent speaks NATS through internal/bus/natsconn: nats.go and
	// jwt/v2 cost ~1.4 MB of binary (websocket support brings net/http
	// and compression) and nats.go a send buffer as large as the largest
	// reply (docs/performance.md, "Trust agent footprint").
	"github.com/nats-io/nats.go",
	"github.com/nats-io/jwt",
	"github.com/klauspost/compress",
	"net/http",
	"compress/flate",
	"encoding/gob",
	"trustedcompute.io/tc/internal/bus/natsbus",
}

var rules = []rule{
	{
		pkg: "trustedcompute.io/tc/cmd/trust-agent",
		forbidden: append(slices.Clone(agentForbidden),
			"github.com/jackc/pgx",
			"modernc.org/sqlite",
			"k8s.io/client-go",
			"cel.dev/cel-go",
			"trustedcompute.io/tc/internal/verifier",
			"trustedcompute.io/tc/internal/sandbox",
			// The fleet simulator's software TPM keeps its keys in
			// ordinary memory: never in the product's agent.
			"trustedcompute.io/tc/internal/fleetsim",
			// The key broker seals with go-tpm-tools' server package on
			// the verifier; the agent imports with go-tpm alone and links
			// no protobuf (its only go-tpm-tools package is the simulator).
			"github.com/google/go-tpm-tools/server",
			"github.com/google/go-tpm-tools/client",
			"github.com/google/go-tpm-tools/proto",
			"google.golang.org/protobuf",
		),
	},
	{
		pkg: "trustedcompute.io/tc/cmd/tcctl",
		forbidden: []string{
			"github.com/nats-io/nats-server",
			"github.com/jackc/pgx",
			"modernc.org/sqlite",
			"trustedcompute.io/tc/internal/verifier/hvs",
			"trustedcompute.io/tc/internal/verifier/aas",
			"trustedcompute.io/tc/internal/verifier/store",
			"trustedcompute.io/tc/internal/verifier/busserver",
			"trustedcompute.io/tc/internal/sandbox",
		},
	},
	{
		pkg: "trustedcompute.io/tc/internal/appraise",
		onlyAllow: []string{
			"github.com/google/go-tpm/",
			"golang.org/x/sys/", // go-tpm's own dependency
			"trustedcompute.io/tc/internal/evidence",
			"trustedcompute.io/tc/internal/appraise",
		},
	},
	{
		// Runtime policies are appraised on every report: no I/O library,
		// no parser beyond encoding/json and encoding/asn1.
		pkg: "trustedcompute.io/tc/internal/imapolicy",
		onlyAllow: []string{
			"github.com/google/go-tpm/",
			"golang.org/x/sys/",
			"trustedcompute.io/tc/internal/evidence",
			"trustedcompute.io/tc/internal/appraise",
			"trustedcompute.io/tc/internal/imapolicy",
		},
	},
	{
		pkg: "trustedcompute.io/tc/internal/bus",
		forbidden: []string{
			"github.com/nats-io/nats-server",
			"github.com/nats-io/nats.go",
			"github.com/nats-io/jwt",
			"trustedcompute.io/tc/internal/verifier",
		},
	},
}

func TestBinariesLinkOnlyWhatTheyUse(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			t.Parallel()
			for _, v := range violations(t, r) {
				t.Error(v)
			}
		})
	}
}

// TestTheRuleCatchesALink checks the check: a package that links nats.go
// (and through it net/http) breaks the trust agent's rule.
func TestTheRuleCatchesALink(t *testing.T) {
	got := strings.Join(violations(t, rule{pkg: "trustedcompute.io/tc/internal/bus/natsbus", forbidden: agentForbidden}), "\n")
	for _, want := range []string{"links github.com/nats-io/nats.go ", "links net/http "} {
		if !strings.Contains(got, want) {
			t.Errorf("natsbus against the agent's rule: no %q in\n%s", want, got)
		}
	}
}

// violations lists how r.pkg breaks r (standard library packages count for
// forbidden, not for onlyAllow).
func violations(t *testing.T, r rule) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Standard}}std:{{end}}{{.ImportPath}}", r.pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s listed nothing", r.pkg)
	}
	var v []string
	for _, d := range deps {
		d, std := strings.CutPrefix(d, "std:")
		if strings.HasPrefix(d, "vendor/") {
			continue // the standard library's vendored packages
		}
		for _, f := range r.forbidden {
			if strings.HasPrefix(d, f) {
				v = append(v, fmt.Sprintf("%s links %s (forbidden: %s)", r.pkg, d, f))
			}
		}
		if !std && r.onlyAllow != nil && !hasAnyPrefix(d, r.onlyAllow) {
			v = append(v, fmt.Sprintf("%s imports %s; only the standard library and %v are allowed", r.pkg, d, r.onlyAllow))
		}
	}
	return v
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
