// Package metrics owns the service's Prometheus instruments and the registry
// they are served from (GET /metrics). Nothing else imports prometheus: the
// other packages report through small interfaces or func fields they declare
// themselves, and Metrics satisfies them. It owns no behaviour of the
// service: dropping it changes what is measured, never what is delivered.
//
// The per-delivery path (FramesWritten) costs one counter add per written
// batch and one histogram observation per notification frame; every label
// value on that path is resolved once, in New, never looked up per call.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"notification-service/broker"
	"notification-service/internal/version"
)

const namespace = "notification_service"

// Buckets of the delivery latency histogram: publish to socket write is
// well under a millisecond on an idle instance and tens of milliseconds
// under fan-out load; the tail up to seconds shows queues backing up.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// Buckets of the schedule lateness histogram: a few milliseconds normally
// (README "Redis mode"), about a second when an expiry event was lost or a
// fire was retried, more when Redis was away.
var latenessBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// scrapeTimeout bounds a scrape-time read of a store (the pending schedules
// in Redis), so a Redis that hangs does not hang the scrape.
const scrapeTimeout = time.Second

// Metrics holds every instrument of the service and the registry they are
// registered on. Its methods are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	connections  *prometheus.GaugeVec
	disconnects  *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	redisErrors  *prometheus.CounterVec
	redisRecover *prometheus.CounterVec

	// The children of the hot and common paths, resolved once.
	sse, ws transportSeries
	// accepted holds one series per kind, made up front: a label value
	// from a caller never creates a series.
	accepted map[string]prometheus.Counter
	dropped  prometheus.Counter
	latency  prometheus.Histogram
	fired    prometheus.Counter
	lateness prometheus.Histogram
}

// transportSeries are one transport's children.
type transportSeries struct {
	connections prometheus.Gauge
	deliveries  prometheus.Counter
}

// New returns the instruments registered on a registry of their own (never
// the process-wide default one), with the Go runtime, process and build
// collectors beside them.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections",
			Help: "Live SSE and WebSocket connections on this instance.",
		}, []string{"transport"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "disconnects_total",
			Help: "Streams ended, by transport and reason (slow_consumer, client_closed, write_failed, ping_timeout, server_shutdown, token_expired, resync, replay_failed, frame_too_large).",
		}, []string{"transport", "reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_total",
			Help: "Notification frames written to client sockets (live and replayed), by transport.",
		}, []string{"transport"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "redis_errors_total",
			Help: "Redis commands that failed, by component (bus, scheduler).",
		}, []string{"component"}),
		redisRecover: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "redis_reconnects_total",
			Help: "Times a component got Redis back after losing it: the bus's feed reader reading again, the scheduler resubscribed to expiry events.",
		}, []string{"component"}),
	}
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "notifications_accepted_total",
		Help: "Notifications accepted, by kind: send (REST, published at once), schedule (REST, stored to fire later), pusher_api (Pusher HTTP API) or laravel_redis (Laravel's redis broadcaster). A batch to several users counts once.",
	}, []string{"kind"})
	m.accepted = make(map[string]prometheus.Counter, len(acceptedKinds))
	for _, kind := range acceptedKinds {
		m.accepted[kind] = accepted.WithLabelValues(kind)
	}
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "frames_dropped_total",
		Help: "Frames the hub could not queue for a connection because its queue was full (the connection is then closed as a slow consumer and resumes from its cursor).",
	})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "delivery_latency_seconds",
		Help:    "Time from a notification's publish to the write of its frame to a client socket, per live delivery (replays are not observed).",
		Buckets: latencyBuckets,
	})
	m.fired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "scheduled_fired_total",
		Help: "Scheduled items this instance fired (published).",
	})
	m.lateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "schedule_lateness_seconds",
		Help:    "Fire time minus scheduled_at of each scheduled item this instance fired.",
		Buckets: latenessBuckets,
	})
	m.sse = transportSeries{m.connections.WithLabelValues("sse"), m.deliveries.WithLabelValues("sse")}
	m.ws = transportSeries{m.connections.WithLabelValues("ws"), m.deliveries.WithLabelValues("ws")}
	// Both components show from the first scrape, at zero.
	for _, c := range []string{"bus", "scheduler"} {
		m.redisErrors.WithLabelValues(c)
		m.redisRecover.WithLabelValues(c)
	}

	m.registry.MustRegister(
		m.connections, m.disconnects, m.deliveries, m.redisErrors, m.redisRecover,
		accepted, m.dropped, m.latency, m.fired, m.lateness,
		buildInfo(),
		collectors.NewBuildInfoCollector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// buildInfo is notification_service_build_info: always 1, its labels say
// which build is running.
func buildInfo() prometheus.Collector {
	b := version.Current()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels name the running build (release or module version, Go version, VCS revision when stamped).",
		ConstLabels: prometheus.Labels{"version": b.Version, "go_version": b.GoVersion, "revision": b.Revision},
	})
	g.Set(1)
	return g
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks). A collector that fails is left out
// of the answer rather than failing the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.registry, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	})
}

func (m *Metrics) series(transport string) transportSeries {
	switch transport {
	case "sse":
		return m.sse
	case "ws":
		return m.ws
	}
	return transportSeries{m.connections.WithLabelValues(transport), m.deliveries.WithLabelValues(transport)}
}

// ConnectionOpened counts a stream registered in the hub.
func (m *Metrics) ConnectionOpened(transport string) {
	m.series(transport).connections.Inc()
}

// ConnectionClosed counts a stream that left the hub, and why it ended.
func (m *Metrics) ConnectionClosed(transport, reason string) {
	// A scrape gathers each metric on its own, so it may see the gauge
	// drop before the reason is counted, or the other way round.
	m.disconnects.WithLabelValues(transport, reason).Inc()
	m.series(transport).connections.Dec()
}

// FrameDropped counts a frame the hub could not queue for a connection: its
// queue was full.
func (m *Metrics) FrameDropped() { m.dropped.Inc() }

// FramesWritten records one successful write to a client socket: the
// notification frames in it are deliveries, and those published live
// (Frame.Published set) are observed for latency. Control frames (ready,
// read, pong, ...) count for neither. One clock read per batch.
func (m *Metrics) FramesWritten(transport string, frames []*broker.Frame) {
	var now time.Time
	n := 0
	for _, f := range frames {
		if f.Seq == 0 {
			continue
		}
		n++
		if f.Published.IsZero() {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		// Across instances the publish time is another machine's clock:
		// a small skew must not make a negative latency.
		m.latency.Observe(max(now.Sub(f.Published), 0).Seconds())
	}
	if n > 0 {
		m.series(transport).deliveries.Add(float64(n))
	}
}

// acceptedKinds are the ways a notification is accepted.
var acceptedKinds = []string{"send", "schedule", "pusher_api", "laravel_redis"}

// NotificationAccepted counts a notification accepted by one of
// acceptedKinds; any other kind is not counted.
func (m *Metrics) NotificationAccepted(kind string) {
	if c, ok := m.accepted[kind]; ok {
		c.Inc()
	}
}

// ScheduleFired counts a scheduled item fired this late.
func (m *Metrics) ScheduleFired(lateness time.Duration) {
	m.fired.Inc()
	m.lateness.Observe(max(lateness, 0).Seconds())
}

// RedisError returns the function a component calls for each Redis command
// that failed (broker.RedisOptions.OnError, schedule.RedisOptions.OnError).
func (m *Metrics) RedisError(component string) func() {
	c := m.redisErrors.WithLabelValues(component)
	return c.Inc
}

// RedisReconnect returns the function a component calls when it has Redis
// back after losing it.
func (m *Metrics) RedisReconnect(component string) func() {
	c := m.redisRecover.WithLabelValues(component)
	return c.Inc
}

// WatchQueues reports, at each scrape, the frames waiting in every live
// connection's queue and in the fullest one, as fn counts them.
func (m *Metrics) WatchQueues(fn func() (total, fullest int)) {
	m.registry.MustRegister(&queueCollector{
		fn: fn,
		total: prometheus.NewDesc(namespace+"_queued_frames",
			"Frames waiting in the queues of all live connections on this instance, at scrape time.", nil, nil),
		fullest: prometheus.NewDesc(namespace+"_queued_frames_max",
			"Frames waiting in the fullest connection queue on this instance, at scrape time (CLIENT_QUEUE_SIZE closes it).", nil, nil),
	})
}

type queueCollector struct {
	fn             func() (total, fullest int)
	total, fullest *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.total
	ch <- c.fullest
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	total, fullest := c.fn()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(total))
	ch <- prometheus.MustNewConstMetric(c.fullest, prometheus.GaugeValue, float64(fullest))
}

// WatchScheduled reports, at each scrape, the pending scheduled items as fn
// counts them. In Redis mode that is every instance's count, the same
// number on each (aggregate with max, not sum). When fn fails (Redis away)
// the series is left out of that scrape.
func (m *Metrics) WatchScheduled(fn func(context.Context) (int, error)) {
	m.registry.MustRegister(&pendingCollector{
		fn: fn,
		desc: prometheus.NewDesc(namespace+"_scheduled_pending",
			"Scheduled items waiting for their time, at scrape time (in Redis mode: all instances' items).", nil, nil),
	})
}

type pendingCollector struct {
	fn   func(context.Context) (int, error)
	desc *prometheus.Desc
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	n, err := c.fn(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
