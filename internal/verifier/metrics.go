package verifier

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"trustedcompute.io/tc/internal/run"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// MetricsConfig says where the verifier's Prometheus metrics are served.
//
// On the HTTPS API port GET /metrics always needs a token with the
// permission HVS:metrics:retrieve:* (the counts of trusted and untrusted
// hosts are not for anyone who can reach the port). Listen, when set, also
// serves GET /metrics (and /healthz) without a token on its own plain-HTTP
// listener, for a Prometheus scraper on loopback or a trusted pod network:
// for example 127.0.0.1:9464, or :9464 in a pod behind a NetworkPolicy.
type MetricsConfig struct {
	Listen string
}

// The permission /metrics needs on the API port.
const (
	metricsService = "HVS"
	metricsRule    = "metrics:retrieve:*"
)

// metrics are the verifier's Prometheus metrics, served on /metrics.
type metrics struct {
	ln       net.Listener // the metrics listener, nil without MetricsConfig.Listen
	reg      *prometheus.Registry
	reports  *prometheus.CounterVec
	parts    *prometheus.CounterVec
	latency  prometheus.Histogram
	clients  prometheus.GaugeFunc
	numConns func() int
}

func newMetrics(numConns func() int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), numConns: numConns}
	m.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "reports_total",
		Help: "Trust reports made, by result (trusted, untrusted) and host status.",
	}, []string{"result", "host_status"})
	m.parts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "report_parts_total",
		Help: "Flavor parts appraised in trust reports, by part and result.",
	}, []string{"part", "result"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "tc", Subsystem: "hvs", Name: "report_duration_seconds",
		Help:    "Time to make one trust report: quote over NATS, appraisal, flavor match, signing, store.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
	})
	m.clients = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tc", Subsystem: "nats", Name: "connections",
		Help: "Client connections to the embedded NATS server (trust agents and services).",
	}, func() float64 {
		if m.numConns == nil {
			return 0
		}
		return float64(m.numConns())
	})
	m.reg.MustRegister(m.reports, m.parts, m.latency, m.clients,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchPools serves the database connection pools' figures as
// go_sql_*{db_name="..."}: among them how long statements waited for a
// connection (go_sql_wait_duration_seconds_total).
func (m *metrics) watchPools(pools map[string]*sql.DB) {
	for name, db := range pools {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
}

// countLimited serves n() as tc_bus_messages_limited_total{kind="kind"}:
// the messages of one agent (or manager) beyond its budget (hostlimit),
// dropped or folded into a turn of its own.
func (m *metrics) countLimited(kind string, n func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "bus", Name: "messages_limited_total",
		Help:        "Bus messages of one agent or manager beyond its budget, dropped or folded into its next turn, by kind (event, renewal, secret_request).",
		ConstLabels: prometheus.Labels{"kind": kind},
	}, func() float64 { return float64(n()) }))
}

// observe records one report.
func (m *metrics) observe(r *report.Report, took time.Duration) {
	m.reports.WithLabelValues(result(r.Trusted()), r.HostStatus).Inc()
	for part, pt := range r.TrustInformation.FlavorsTrust {
		m.parts.WithLabelValues(string(part), result(pt.Trust)).Inc()
	}
	m.latency.Observe(took.Seconds())
}

func result(trusted bool) string {
	if trusted {
		return "trusted"
	}
	return "untrusted"
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// MetricsAddr returns the address of the metrics listener, or "" without one.
func (v *Verifier) MetricsAddr() string {
	if v.metrics == nil || v.metrics.ln == nil {
		return ""
	}
	return v.metrics.ln.Addr().String()
}

// serveMetrics serves GET /metrics and GET /healthz, and nothing else, on
// the metrics listener until ctx ends.
func (v *Verifier) serveMetrics(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", v.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(v.logger.Handler(), slog.LevelWarn),
	}
	return run.Server(ctx, srv, func() error { return srv.Serve(v.metrics.ln) }, 5*time.Second)
}

// attemptStats is what the overdue gauges read at each scrape;
// *store.Store is one.
type attemptStats interface {
	HostAttemptStats(ctx context.Context, successBefore time.Time) (store.AttemptStats, error)
}

// attemptCollector reports, at each scrape, the enabled hosts, the overdue
// ones (last success older than 1.5 × hvs.interval, issue 14) and the oldest
// last success, from the database that every replica shares: each replica
// reports the fleet's figures, not its own share. There is no per-host
// series: its cardinality would grow with the fleet (10,000 series per
// replica); per-host times are in GET /hvs/v2/hosts and tcctl host list.
type attemptCollector struct {
	stats                  attemptStats
	overdueBefore          func(now time.Time) time.Time
	hosts, overdue, oldest *prometheus.Desc
	failed                 *prometheus.Desc
}

// scrapeTimeout bounds the database read of one scrape.
const scrapeTimeout = 5 * time.Second

func newAttemptCollector(stats attemptStats, overdueBefore func(now time.Time) time.Time) *attemptCollector {
	return &attemptCollector{
		stats: stats, overdueBefore: overdueBefore,
		hosts: prometheus.NewDesc("tc_hvs_hosts", "Registered hosts that are not disabled.", nil, nil),
		overdue: prometheus.NewDesc("tc_hvs_hosts_overdue",
			"Enabled hosts whose last successful attestation (or, never attested, registration) is older than 1.5 × hvs.interval.", nil, nil),
		oldest: prometheus.NewDesc("tc_hvs_oldest_success_timestamp_seconds",
			"Unix time of the oldest last successful attestation among the enabled hosts (0 if none).", nil, nil),
		failed: prometheus.NewDesc("tc_hvs_hosts_scrape_errors", "1 if the host counts could not be read at this scrape.", nil, nil),
	}
}

func (c *attemptCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hosts
	ch <- c.overdue
	ch <- c.oldest
	ch <- c.failed
}

func (c *attemptCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.stats.HostAttemptStats(ctx, c.overdueBefore(time.Now()))
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, 0)
	ch <- prometheus.MustNewConstMetric(c.hosts, prometheus.GaugeValue, float64(st.Hosts))
	ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(st.Overdue))
	oldest := 0.0
	if !st.OldestSuccess.IsZero() {
		oldest = float64(st.OldestSuccess.UnixMicro()) / 1e6
	}
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
}
