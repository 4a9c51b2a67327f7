package keybroker

import (
	"errors"
	"slices"
	"sync"
	"time"
)

// AuditRule is the HVS permission rule that reads the key broker's audit
// (which host got or was refused which secret, when and why): the one that
// reads a secret's policy. The dashboard shows a node's releases only to a
// user who holds it.
const AuditRule = "secrets:retrieve:*"

// Journal limits: the decisions kept per host, and the hosts kept.
const (
	journalPerHost  = 50
	journalMaxHosts = 100_000
)

// Decision is one release decision of the audit log: a release, a
// refusal, or a revocation the broker pushed. It never holds a value.
type Decision struct {
	At       time.Time
	HostID   string
	Name     string // the secret's name as asked for
	SecretID string // "" when no secret has that name
	Version  int64
	// Outcome is OutcomeReleased, OutcomeRefused or OutcomeRevoked.
	Outcome string
	// Reason is the refusal's reason ("" for a release), Detail its text.
	Reason, Detail string
	// ReportID is the report the decision rests on, when there was one.
	ReportID string
	// PCRs are the PCRs a release was sealed to.
	PCRs []int
}

// journal keeps the latest decisions of each host in memory, beside the
// audit log, for the dashboard: what this verifier process decided since
// it started.
type journal struct {
	mu     sync.Mutex
	byHost map[string][]Decision // oldest first
}

func (j *journal) add(d Decision) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.byHost == nil {
		j.byHost = map[string][]Decision{}
	}
	ds, ok := j.byHost[d.HostID]
	if !ok && len(j.byHost) >= journalMaxHosts {
		// Past the bound, forget the host whose latest decision is oldest.
		var oldest string
		var at time.Time
		for h, hd := range j.byHost {
			if last := hd[len(hd)-1].At; oldest == "" || last.Before(at) {
				oldest, at = h, last
			}
		}
		delete(j.byHost, oldest)
	}
	if len(ds) == journalPerHost {
		ds = slices.Delete(ds, 0, 1)
	}
	j.byHost[d.HostID] = append(ds, d)
}

// Decisions returns the host's latest release decisions (at most 50), the
// newest first. They live in this process's memory only.
func (b *Broker) Decisions(hostID string) []Decision {
	b.journal.mu.Lock()
	defer b.journal.mu.Unlock()
	ds := b.journal.byHost[hostID]
	out := make([]Decision, len(ds))
	for i, d := range ds {
		d.PCRs = slices.Clone(d.PCRs)
		out[len(ds)-1-i] = d
	}
	return out
}

// record is the journal's form of a decision and its outcome.
func (d decision) record(at time.Time, err error) Decision {
	out := Decision{At: at, HostID: d.host, Name: d.name, SecretID: d.secretID, Version: d.version, ReportID: d.reportID,
		Outcome: OutcomeReleased, PCRs: slices.Clone(d.pcrs)}
	if err != nil {
		out.Outcome, out.Reason, out.PCRs = OutcomeRefused, ReasonOf(err), nil
		var re *RefusalError
		if errors.As(err, &re) {
			out.Detail = re.Detail
		}
	}
	return out
}
