package dashboard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/keybroker"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Node statuses as the verifier sees them. The attestation manager's
// decision (Verified, Attestation Failed, Secure Boot Disabled) lives in
// the cluster; the dashboard shows the verifier's reports.
const (
	statusTrusted   = "Trusted"
	statusUntrusted = "Untrusted"
	statusPending   = "Pending" // no report yet
	statusStale     = "Stale"   // the last report is older than StaleAfter
)

// statuses is the order of the fleet summary.
var statuses = []string{statusUntrusted, statusStale, statusPending, statusTrusted}

func statusClass(s string) string {
	switch s {
	case statusTrusted:
		return "ok"
	case statusUntrusted:
		return "bad"
	case statusStale:
		return "stale"
	}
	return "pending"
}

type statusCount struct {
	Status, Class string
	N             int
}

type fleetView struct {
	Total      int
	Counts     []statusCount
	Stale      int
	Oldest     string // age of the oldest last report
	StaleAfter string
	Nodes      []nodeRow
}

// nodeRow is one node of the fleet table.
type nodeRow struct {
	ID, Name      string
	Status, Class string
	Since         time.Time
	SinceExact    bool // false: the run of results started at Since or earlier
	SecureBoot    fact
	Disk          fact
	Trusted       fact
	LastReportID  string
	LastReport    time.Time
	Age           string
	Stale         bool
}

// fact is a value with its CSS class (ok, bad, warn or none).
type fact struct{ Text, Class string }

var noFact = fact{"—", "none"}

func (d *Dashboard) fleetView(ctx context.Context) (fleetView, error) {
	hosts, err := d.store.ListHosts(ctx, store.HostFilter{})
	if err != nil {
		return fleetView{}, err
	}
	latest, err := d.store.ListReports(ctx, store.ReportFilter{LatestPerHost: true})
	if err != nil {
		return fleetView{}, err
	}
	byHost := make(map[string]store.Report, len(latest))
	for _, r := range latest {
		byHost[r.HostID] = r
	}
	now := d.cfg.Clock.Now()
	v := fleetView{Total: len(hosts), StaleAfter: d.cfg.StaleAfter.String()}
	counts := map[string]int{}
	var oldest time.Time
	for _, h := range hosts {
		var last *store.Report
		if r, ok := byHost[h.ID]; ok {
			last = &r
			if oldest.IsZero() || r.CreatedAt.Before(oldest) {
				oldest = r.CreatedAt
			}
		}
		row, err := d.nodeRow(ctx, h, last, now)
		if err != nil {
			return fleetView{}, err
		}
		counts[row.Status]++
		if row.Stale {
			v.Stale++
		}
		v.Nodes = append(v.Nodes, row)
	}
	for _, s := range statuses {
		v.Counts = append(v.Counts, statusCount{Status: s, Class: statusClass(s), N: counts[s]})
	}
	if !oldest.IsZero() {
		v.Oldest = age(now, oldest)
	}
	return v, nil
}

// nodeRow builds a node's row from its last report (nil when none).
func (d *Dashboard) nodeRow(ctx context.Context, h store.Host, last *store.Report, now time.Time) (nodeRow, error) {
	row := nodeRow{ID: h.ID, Name: h.Name, Status: statusPending, Since: h.CreatedAt, SinceExact: true,
		SecureBoot: noFact, Disk: noFact, Trusted: noFact}
	if last == nil {
		row.Class = statusClass(row.Status)
		return row, nil
	}
	row.LastReportID, row.LastReport, row.Age = last.ID, last.CreatedAt, age(now, last.CreatedAt)
	trusted := d.signedTrusted(*last)
	row.Trusted = fact{"no", "bad"}
	switch {
	case trusted:
		row.Trusted = fact{"yes", "ok"}
	case last.Trusted && last.JWS == "":
		row.Trusted = fact{"unsigned", "bad"}
	case last.Trusted:
		row.Trusted = fact{"signature invalid", "bad"}
	}
	var r report.Report
	if err := json.Unmarshal(last.JSON, &r); err == nil && (trusted || !last.Trusted) {
		row.SecureBoot, row.Disk = secureBootFact(r.HostInfo), diskFact(r.HostInfo)
	}
	since, exact, err := d.runStart(ctx, h.ID, *last)
	if err != nil {
		return nodeRow{}, err
	}
	row.Since, row.SinceExact = since, exact
	row.Status = statusUntrusted
	if trusted {
		row.Status = statusTrusted
	}
	if now.Sub(last.CreatedAt) > d.cfg.StaleAfter {
		row.Status, row.Stale = statusStale, true
		row.Since, row.SinceExact = last.CreatedAt.Add(d.cfg.StaleAfter), true
	}
	row.Class = statusClass(row.Status)
	return row, nil
}

func secureBootFact(hi report.HostInfo) fact {
	switch {
	case !hi.SecureBoot.Verified:
		return fact{"unverified", "bad"}
	case hi.SecureBoot.FromPCR7:
		return fact{"on", "ok"}
	}
	return fact{"off", "bad"}
}

func diskFact(hi report.HostInfo) fact {
	switch hi.DiskEncryptionStatus {
	case appraise.DiskEncryptionMeasured:
		return fact{"measured", "ok"}
	case "":
		return noFact
	case appraise.DiskEncryptionNone:
		return fact{hi.DiskEncryptionStatus, "bad"}
	}
	return fact{hi.DiskEncryptionStatus, "warn"}
}

// runStart is when a host's current run of trusted (or untrusted) reports
// began, cached by the host's latest report.
type runStart struct {
	latestID string
	trusted  bool
	at       time.Time
	exact    bool
}

// Bounds of the walk back through a host's reports for runStart.
const (
	walkPage = 20
	walkMax  = 200
)

// runStart returns when the host's current run of results began: the
// oldest report of the run among the newest walkMax, not exact when the
// run is longer than that.
func (d *Dashboard) runStart(ctx context.Context, hostID string, latest store.Report) (time.Time, bool, error) {
	d.mu.Lock()
	c, cached := d.since[hostID]
	d.mu.Unlock()
	if cached && c.latestID == latest.ID {
		return c.at, c.exact, nil
	}
	at, exact, after := latest.CreatedAt, false, ""
walk:
	for n := 0; n < walkMax; {
		rs, err := d.store.ListReports(ctx, store.ReportFilter{HostID: hostID, AfterID: after, Limit: walkPage})
		if err != nil {
			return time.Time{}, false, err
		}
		for _, r := range rs {
			if r.Trusted != latest.Trusted {
				exact = true
				break walk
			}
			if cached && r.ID == c.latestID {
				at, exact = c.at, c.exact
				break walk
			}
			at = r.CreatedAt
		}
		if len(rs) < walkPage {
			exact = true
			break
		}
		after, n = rs[len(rs)-1].ID, n+len(rs)
	}
	d.mu.Lock()
	d.since[hostID] = runStart{latestID: latest.ID, trusted: latest.Trusted, at: at, exact: exact}
	d.mu.Unlock()
	return at, exact, nil
}

// age is how long ago t was, coarsely: "42s", "5m", "3h 10m", "2d 4h".
func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

type nodeView struct {
	Host     store.Host
	Row      nodeRow
	Timeline []timelineEntry
	// ShowReleases is true when the key broker runs and the user may read
	// its audit; Releases are then the node's latest decisions.
	ShowReleases bool
	Releases     []releaseEntry
}

// releaseEntry is one key broker decision about the node.
type releaseEntry struct {
	At             time.Time
	Age            string
	Name           string
	Version        int64
	Outcome, Class string
	Reason, Detail string
	ReportID       string
	PCRs           string
}

// releases are the key broker's latest decisions about the host.
func (d *Dashboard) releases(hostID string, now time.Time) []releaseEntry {
	var out []releaseEntry
	for _, dec := range d.cfg.Releases.Decisions(hostID) {
		e := releaseEntry{At: dec.At, Age: age(now, dec.At), Name: dec.Name, Version: dec.Version, Outcome: dec.Outcome,
			Class: "bad", Reason: dec.Reason, Detail: dec.Detail, ReportID: dec.ReportID}
		if dec.Outcome == keybroker.OutcomeReleased {
			e.Class = "ok"
		}
		if len(dec.PCRs) > 0 {
			e.PCRs = strings.Trim(fmt.Sprint(dec.PCRs), "[]")
		}
		out = append(out, e)
	}
	return out
}

// timelineEntry is one report of a node's timeline.
type timelineEntry struct {
	ID         string
	Created    time.Time
	Age        string
	Trusted    bool
	HostStatus string
	Rebooted   bool
	Faults     []string
	More       int // faults not listed
}

const maxTimelineFaults = 4

func (d *Dashboard) nodeView(ctx context.Context, id string, showReleases bool) (nodeView, error) {
	h, err := d.store.HostByID(ctx, id)
	if err != nil {
		return nodeView{}, err
	}
	rs, err := d.store.ListReports(ctx, store.ReportFilter{HostID: id, Limit: timelineLength})
	if err != nil {
		return nodeView{}, err
	}
	now := d.cfg.Clock.Now()
	var last *store.Report
	if len(rs) > 0 {
		last = &rs[0]
	}
	row, err := d.nodeRow(ctx, h, last, now)
	if err != nil {
		return nodeView{}, err
	}
	v := nodeView{Host: h, Row: row, ShowReleases: showReleases && d.cfg.Releases != nil}
	if v.ShowReleases {
		v.Releases = d.releases(h.ID, now)
	}
	for _, sr := range rs {
		e := timelineEntry{ID: sr.ID, Created: sr.CreatedAt, Age: age(now, sr.CreatedAt), Trusted: d.signedTrusted(sr)}
		var r report.Report
		if err := json.Unmarshal(sr.JSON, &r); err == nil {
			e.HostStatus, e.Rebooted = r.HostStatus, r.Rebooted
			for _, f := range allFaults(&r) {
				if len(e.Faults) == maxTimelineFaults {
					e.More++
					continue
				}
				e.Faults = append(e.Faults, f.summary())
			}
		}
		v.Timeline = append(v.Timeline, e)
	}
	return v, nil
}

// placedFault is a fault with where the report carries it.
type placedFault struct {
	Part, Rule string
	appraise.Fault
}

func (f placedFault) summary() string {
	s := f.Name
	if f.Part != "" {
		s = f.Part + " · " + s
	}
	switch {
	case f.PCRIndex != nil:
		s += fmt.Sprintf(" (%s PCR %d)", f.PCRBank, *f.PCRIndex)
	case f.File != "":
		s += " (" + f.File + ")"
	}
	return s
}

// allFaults lists the report's evidence faults, then the faults of each
// part's rules, parts in name order.
func allFaults(r *report.Report) []placedFault {
	var out []placedFault
	for _, f := range r.Faults {
		out = append(out, placedFault{Fault: f})
	}
	for _, p := range sortedParts(r) {
		for _, rr := range r.TrustInformation.FlavorsTrust[p].Rules {
			for _, f := range rr.Faults {
				out = append(out, placedFault{Part: string(p), Rule: rr.Rule.Name, Fault: f})
			}
		}
	}
	return out
}

func sortedParts(r *report.Report) []flavor.Part {
	parts := make([]flavor.Part, 0, len(r.TrustInformation.FlavorsTrust))
	for p := range r.TrustInformation.FlavorsTrust {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts
}

type reportView struct {
	ID, HostID, HostName string
	Created, Expires     time.Time
	Trusted              bool
	HostStatus           string
	Rebooted             bool
	ResetCount           uint32
	SecureBoot, Disk     fact
	Signature            signature
	HasJWS               bool
	Evidence             []faultView
	Parts                []partView
}

type partView struct {
	Part    string
	Trusted bool
	Rules   []ruleView
}

type ruleView struct {
	Name, FlavorID string
	Markers        []string
	PCR            string // the PCR a PCR rule is about
	Trusted        bool
	Faults         []faultView
}

// faultView is the drill-down of one fault: what the report carries.
type faultView struct {
	Name, Description  string
	PCR                string // "SHA384 PCR 8"
	Expected, Actual   string
	File               string
	Missing            []string
	Unexpected         []string
	Related            []related // event-log entries of other faults about the same PCR
	IMA                bool
	HasValues, HasList bool
}

// related is another fault of the report about the same PCR that lists
// event-log entries: the entries that explain a PCR value mismatch.
type related struct {
	Where      string // part · rule · fault name
	Missing    []string
	Unexpected []string
}

func (d *Dashboard) reportView(ctx context.Context, id string) (reportView, store.Report, error) {
	sr, err := d.store.ReportByID(ctx, id)
	if err != nil {
		return reportView{}, store.Report{}, err
	}
	sig, r := d.signature(sr)
	v := reportView{ID: sr.ID, HostID: sr.HostID, HostName: sr.HostName, Created: sr.CreatedAt, Expires: sr.ExpiresAt,
		Trusted: sr.Trusted, HasJWS: sr.JWS != "", Signature: sig}
	if r != nil {
		// The signed form is what the page shows whenever there is one,
		// not the columns beside it, which whoever writes the database can
		// change.
		v.HostName, v.Created, v.Expires, v.Trusted = r.HostName, r.Created, r.Expiration, r.Trusted()
	} else {
		r = new(report.Report)
		if err := json.Unmarshal(sr.JSON, r); err != nil {
			return reportView{}, store.Report{}, fmt.Errorf("report %q: %w", id, err)
		}
	}
	v.HostStatus, v.Rebooted, v.ResetCount = r.HostStatus, r.Rebooted, r.ResetCount
	v.SecureBoot, v.Disk = secureBootFact(r.HostInfo), diskFact(r.HostInfo)
	all := allFaults(r)
	for _, f := range r.Faults {
		v.Evidence = append(v.Evidence, newFaultView(placedFault{Fault: f}, all))
	}
	for _, p := range sortedParts(r) {
		pt := r.TrustInformation.FlavorsTrust[p]
		pv := partView{Part: string(p), Trusted: pt.Trust}
		for _, rr := range pt.Rules {
			rv := ruleView{Name: rr.Rule.Name, FlavorID: rr.FlavorID, Trusted: rr.Trusted}
			for _, m := range rr.Rule.Markers {
				rv.Markers = append(rv.Markers, string(m))
			}
			if rr.Rule.ExpectedPCR != nil {
				rv.PCR = rr.Rule.ExpectedPCR.PCR.String()
			}
			for _, f := range rr.Faults {
				rv.Faults = append(rv.Faults, newFaultView(placedFault{Part: string(p), Rule: rr.Rule.Name, Fault: f}, all))
			}
			pv.Rules = append(pv.Rules, rv)
		}
		v.Parts = append(v.Parts, pv)
	}
	return v, sr, nil
}

func newFaultView(f placedFault, all []placedFault) faultView {
	v := faultView{Name: f.Name, Description: f.Description, Expected: f.Expected, Actual: f.Actual, File: f.File,
		Missing: f.MissingEntries, Unexpected: f.UnexpectedEntries}
	v.IMA = f.File != "" || strings.HasPrefix(f.Name, "Ima") || strings.HasPrefix(f.Name, "IMA")
	v.HasValues = v.Expected != "" || v.Actual != ""
	v.HasList = len(v.Missing) > 0 || len(v.Unexpected) > 0
	if f.PCRIndex == nil {
		return v
	}
	v.PCR = fmt.Sprintf("%s PCR %d", f.PCRBank, *f.PCRIndex)
	if v.HasList {
		return v
	}
	for _, o := range all {
		if o.PCRIndex == nil || *o.PCRIndex != *f.PCRIndex || o.PCRBank != f.PCRBank ||
			len(o.MissingEntries)+len(o.UnexpectedEntries) == 0 {
			continue
		}
		where := o.Name
		if o.Part != "" {
			where = o.Part + " · " + o.Rule + " · " + o.Name
		}
		v.Related = append(v.Related, related{Where: where, Missing: o.MissingEntries, Unexpected: o.UnexpectedEntries})
	}
	return v
}

// signature is the signature status of a stored report.
type signature struct {
	OK   bool
	Text string
}

// signature checks the stored JWS of a report as a relying party would:
// the verifier's own signing identity under the CMS root (package
// signerid, through report.Verify), and that it is the same report. It
// returns the signed report whenever its signature verifies, nil
// otherwise. A stored row that says other than its signed form (its
// verdict, times or JSON) was changed in the database: its signature is
// shown invalid.
func (d *Dashboard) signature(sr store.Report) (signature, *report.Report) {
	if sr.JWS == "" {
		return signature{Text: "no signed form stored"}, nil
	}
	now := d.cfg.Clock.Now()
	r, err := d.reports.Verify(sr.JWS, now)
	expired := errors.Is(err, report.ErrExpired)
	if expired {
		// Check the signature as of when the report was made.
		r, err = d.reports.Verify(sr.JWS, sr.CreatedAt)
	}
	switch {
	case err != nil:
		return signature{Text: "invalid: " + err.Error()}, nil
	case r.ID != sr.ID || r.HostID != sr.HostID:
		return signature{Text: fmt.Sprintf("invalid: the signed report is %s of host %s", r.ID, r.HostID)}, nil
	case !sameAsSigned(sr, r):
		return signature{Text: "invalid: the stored report is not its signed form (the database was changed); " +
			"this page shows the signed form"}, r
	case expired:
		return signature{OK: true, Text: "valid, signed by the verifier's signing identity; the report expired " +
			r.Expiration.UTC().Format(time.RFC3339)}, r
	}
	return signature{OK: true, Text: "valid, signed by the verifier's signing identity"}, r
}

// sameAsSigned tells whether the stored row says what its signed report r
// says: the verdict, the times (the store keeps microseconds) and the JSON,
// which the verifier stores as the JWS payload.
func sameAsSigned(sr store.Report, r *report.Report) bool {
	if sr.Trusted != r.Trusted() || !sr.CreatedAt.Equal(r.Created.Truncate(time.Microsecond)) ||
		!sr.ExpiresAt.Equal(r.Expiration.Truncate(time.Microsecond)) {
		return false
	}
	_, rest, _ := strings.Cut(sr.JWS, ".")
	payload, _, _ := strings.Cut(rest, ".")
	signed, err := base64.RawURLEncoding.DecodeString(payload)
	return err == nil && (len(sr.JSON) == 0 || bytes.Equal(sr.JSON, signed))
}
