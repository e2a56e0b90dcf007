package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medsettle_requests_total",
			Help: "Counter-interface transactions by infno and infcode.",
		}, []string{"infno", "infcode"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "medsettle_request_duration_seconds",
			Help:    "Time to answer a counter-interface transaction, by infno.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"infno"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *metrics) observe(infno string, infcode int, d time.Duration) {
	m.requests.WithLabelValues(infno, strconv.Itoa(infcode)).Inc()
	m.latency.WithLabelValues(infno).Observe(d.Seconds())
}
