// Package deps holds the dependency rule of the module as a test, the way
// tailscale's deptest does: each small binary or pure package lists what it
// must never link, and `go list -deps` shows what it does.
package deps

import (
	"os/exec"
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

var rules = []rule{
	{
		pkg: "trustedcompute.io/tc/cmd/trust-agent",
		forbidden: []string{
			"github.com/nats-io/nats-server",
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
		},
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
			"trustedcompute.io/tc/internal/verifier",
		},
	},
}

func TestBinariesLinkOnlyWhatTheyUse(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 {
				t.Fatalf("go list -deps %s listed nothing", r.pkg)
			}
			for _, d := range deps {
				if strings.HasPrefix(d, "vendor/") {
					continue // the standard library's vendored packages
				}
				for _, f := range r.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s links %s (forbidden: %s)", r.pkg, d, f)
					}
				}
				if r.onlyAllow != nil && !hasAnyPrefix(d, r.onlyAllow) {
					t.Errorf("%s imports %s; only the standard library and %v are allowed", r.pkg, d, r.onlyAllow)
				}
			}
		})
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
