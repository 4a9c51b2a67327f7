package manager

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"trustedcompute.io/tc/internal/cluster"
	"trustedcompute.io/tc/internal/run"
)

// Metrics are the attestation manager's Prometheus metrics.
type Metrics struct {
	reg         *prometheus.Registry
	cordons     *prometheus.CounterVec
	eimFailures prometheus.Counter
}

// NewMetrics registers the manager's metrics; nodes_by_status reads m.
func NewMetrics(m *Manager) *Metrics {
	x := &Metrics{reg: prometheus.NewRegistry()}
	x.cordons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "manager", Name: "cordons_total",
		Help: "Nodes cordoned by the attestation manager, by status.",
	}, []string{"status"})
	x.eimFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "tc", Subsystem: "manager", Name: "eim_failures_total",
		Help: "Edge Infrastructure Manager status updates that failed after their retries.",
	})
	nodes := prometheus.NewDesc("tc_manager_nodes", "Enabled nodes by attestation status.", []string{"status"}, nil)
	x.reg.MustRegister(x.cordons, x.eimFailures, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectorFunc{desc: nodes, collect: func(ch chan<- prometheus.Metric) {
			counts := m.StatusCounts()
			for _, s := range []cluster.Status{cluster.StatusPending, cluster.StatusVerified, cluster.StatusAttestationFailed, cluster.StatusSecureBootDisabled} {
				ch <- prometheus.MustNewConstMetric(nodes, prometheus.GaugeValue, float64(counts[s]), string(s))
			}
		}})
	return x
}

// Cordoned counts a cordon (Deps.OnCordon).
func (x *Metrics) Cordoned(_ string, s cluster.Status) { x.cordons.WithLabelValues(string(s)).Inc() }

// EIMFailed counts an EIM update that failed (eim.Notifier.OnFailure).
func (x *Metrics) EIMFailed(string, error) { x.eimFailures.Inc() }

type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// ServeOps serves /healthz, /readyz and /metrics on addr until ctx ends.
// ready reports whether the manager can do its work.
func ServeOps(ctx context.Context, addr string, x *Metrics, ready func() error, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{}))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	return run.Server(ctx, srv, func() error { return srv.Serve(ln) }, 5*time.Second)
}
