package verifier

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"trustedcompute.io/tc/internal/verifier/report"
)

// metrics are the verifier's Prometheus metrics, served on /metrics.
type metrics struct {
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
