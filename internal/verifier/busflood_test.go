package verifier_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/eventually"
)

// A registered node with root floods every subject its credentials let it
// publish to that makes the verifier work: its events, its credential
// renewals and its secret requests. The whole verifier keeps each within
// the node's budget, and /metrics shows the flood by kind.
func TestANodesFloodOfTheBusIsLimitedAndShowsInTheMetrics(t *testing.T) {
	n := startNode(t, "edge-1")
	n.h.eventually(t, http.StatusCreated, "POST", "/hvs/v2/aik-enrollments", n.admin, []byte(`{"host_id":"edge-1"}`))
	n.register(t)

	event, _ := bus.EventSubject(n.hostID, bus.IMAEvent)
	renew, _ := n.grammar.RenewSubject(n.hostID)
	ask, _ := n.grammar.SecretRequestSubject(n.hostID)
	const flood = 500
	for i := range flood {
		renewal, _ := json.Marshal(bus.RenewRequest{Nonce: "n-" + strconv.Itoa(i), Grammar: n.grammar})
		secrets, _ := json.Marshal(bus.SecretRequest{Names: []string{"volume-key"}, Nonce: make([]byte, bus.SecretNonceSize)})
		for _, m := range []struct {
			subject string
			body    []byte
		}{{event, nil}, {renew, renewal}, {ask, secrets}} {
			if err := n.nc.Publish(m.subject, m.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	limited := regexp.MustCompile(`(?m)^tc_bus_messages_limited_total\{kind="(event|renewal|secret_request)"\} (\d+)$`)
	var got map[string]int
	eventually.True(t, 20*time.Second, "each kind of the flood counted as limited", func() bool {
		status, m := n.h.do(t, "GET", "/metrics", n.admin, "", nil)
		if status != http.StatusOK {
			return false
		}
		got = map[string]int{}
		for _, sm := range limited.FindAllStringSubmatch(string(m), -1) {
			got[sm[1]], _ = strconv.Atoi(sm[2])
		}
		// Each kind has a burst of at most five, and one more turn a
		// second at the most.
		return got["event"] >= flood-10 && got["renewal"] >= flood-10 && got["secret_request"] >= flood-10
	})
	t.Logf("limited: %v of %d each", got, flood)
	// The node is still attested: the flood cost it nothing of its own.
	status, body := n.h.do(t, "POST", "/hvs/v2/reports", n.admin, "application/json", []byte(`{"host_id":"edge-1"}`))
	if status != http.StatusCreated {
		t.Fatalf("a report of the node after its flood: %d %s", status, body)
	}
}
