package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every chatgate metric.
const namespace = "chatgate"

// Scrape limits of Handler: a scrape gathers every metric once, so a few in
// flight are plenty, and a stuck collector must not hold the request forever.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)

// fanoutBuckets are the upper bounds of chatgate_broadcast_fanout_size: a
// 1-2-5 series from 1 to 100000 recipients, exponential in steps an operator
// can read at a glance.
var fanoutBuckets = []float64{
	1, 2, 5, 10, 20, 50, 100, 200, 500,
	1000, 2000, 5000, 10000, 20000, 50000, 100000,
}

// latencyBuckets are the upper bounds of chatgate_delivery_latency_seconds,
// from 100 µs (an idle loop) to 10 s (a loop stalled for good).
var latencyBuckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05,
	.1, .25, .5, 1, 2.5, 5, 10,
}

// Options configures New. The zero value is usable: build info comes from
// the binary and the scrape-time gauges are left out.
type Options struct {
	// Version is the chatgate_build_info version label. Empty means the
	// main module version recorded in the binary ("devel" for a local
	// build).
	Version string

	// Scrape-time gauges: each func is called once per scrape, on the
	// scrape's goroutine, so it must be safe from any goroutine and should
	// be cheap (an atomic load). A nil func leaves its metric out.

	// Connections returns the open TCP connections of the public listener
	// (chatgate_connections).
	Connections func() int
	// Sessions returns the open chat sessions (chatgate_sessions).
	Sessions func() int
	// Rooms returns the rooms with at least one member (chatgate_rooms).
	Rooms func() int
	// PendingBytes returns the node's unsent outbound bytes
	// (chatgate_pending_bytes, against -max-pending-total).
	PendingBytes func() int

	// Logger receives scrape errors; nil means slog.Default().
	Logger *slog.Logger
}

// Metrics holds the gateway's Prometheus metrics on a dedicated registry.
//
// Every method is safe from any goroutine, including event loops: each one
// is an atomic update of a child resolved in New, with no allocation and no
// lock. A nil *Metrics is valid and every method on it does nothing, so code
// paths can run without metrics.
//
// The counters are shared by all loops, so each update is a contended atomic
// add: callers on hot paths should add counts in batches (once per read or
// per mailbox pass) rather than once per frame.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	opened    prometheus.Counter
	closed    [numCloseReasons]prometheus.Counter
	handshake [numTransports]prometheus.Counter
	hsFailed  [numHandshakeFailures]prometheus.Counter

	members prometheus.Gauge

	msgsReceived  prometheus.Counter
	msgsDelivered prometheus.Counter
	bytesReceived prometheus.Counter
	bytesSent     prometheus.Counter

	fanout  prometheus.Observer
	latency prometheus.Observer

	slowClosed  prometheus.Counter
	slowDropped prometheus.Counter
	// budgetClosed: slow consumers reset for the node-wide budget.
	budgetClosed prometheus.Counter

	errors [len(errorCodes)]prometheus.Counter

	ready    prometheus.Gauge
	draining prometheus.Gauge

	recoveryKept, recoveryDone, recoveryFailed prometheus.Counter
	recoveryReads                              [2]prometheus.Counter // storm.go

	serverAcks [numAckOutcomes]prometheus.Counter

	forward forwardCounters // forward.go
}

// AckOutcome is how an acknowledgement the server asked a client for
// (the server API's send with "ack") ended, or an ACK nobody waited for.
type AckOutcome uint8

// Outcomes of server acknowledgements.
const (
	AckAnswered     AckOutcome = iota // the client acknowledged in time
	AckTimeout                        // the timeout passed first
	AckDisconnected                   // the session ended first
	AckIgnored                        // an ACK with an id the server was not waiting for (unknown or reused)
	numAckOutcomes
)

var ackOutcomeNames = [numAckOutcomes]string{"answered", "timeout", "disconnected", "ignored"}

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on a new registry. Every labelled child is created
// here, so each series is exported (at 0) from the first scrape on and rate()
// works on the first event.
func New(opts Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	f := factory{reg}

	m.opened = f.counter("connections_opened_total",
		"TCP connections accepted on the public listener.")
	closed := f.counterVec("connections_closed_total",
		"TCP connections of the public listener that ended, by reason: the code of the first close frame, or tcp, timeout, http.",
		"reason")
	for r := range m.closed {
		m.closed[r] = closed.WithLabelValues(closeReasonNames[r])
	}
	hs := f.counterVec("handshakes_total",
		"Handshakes that opened a session, by transport.", "transport")
	for t := range m.handshake {
		m.handshake[t] = hs.WithLabelValues(transportNames[t])
	}
	failed := f.counterVec("handshakes_failed_total",
		"Connections refused before they became a session, by reason.", "reason")
	for r := range m.hsFailed {
		m.hsFailed[r] = failed.WithLabelValues(handshakeFailureNames[r])
	}

	m.members = f.gauge("room_members",
		"Room memberships: the sum over rooms of their member counts.")

	m.msgsReceived = f.counter("messages_received_total",
		"Client requests received (native messages and Socket.IO events), whether they succeeded or not.")
	m.msgsDelivered = f.counter("messages_delivered_total",
		"Room and direct messages and presence events written to recipients, one per recipient.")
	m.bytesReceived = f.counter("received_bytes_total",
		"Bytes read from client connections, HTTP heads and WebSocket framing included.")
	m.bytesSent = f.counter("sent_bytes_total",
		"Bytes written to client connections, HTTP responses and WebSocket framing included.")

	m.fanout = f.histogram("broadcast_fanout_size",
		"Recipients of each room broadcast, the sender excluded.", fanoutBuckets)
	m.latency = f.histogram("delivery_latency_seconds",
		"Time from a sampled broadcast being encoded to its write on a recipient event loop.", latencyBuckets)

	slow := f.counterVec("slow_consumers_total",
		"Recipients whose unsent backlog passed the limit, by what the gateway did: closed the connection or dropped the message.",
		"action")
	m.slowClosed = slow.WithLabelValues("closed")
	m.slowDropped = slow.WithLabelValues("dropped")
	m.budgetClosed = f.counter("node_budget_closes_total",
		"Connections reset as slow consumers because the node's unsent bytes passed -max-pending-total, largest backlog first (also in chatgate_slow_consumers_total).")

	errs := f.counterVec("errors_total",
		"Error replies sent to clients, by error code (docs/protocol.md).", "code")
	for i := range m.errors {
		m.errors[i] = errs.WithLabelValues(errorCodes[i])
	}

	rec := f.counterVec("recoveries_total",
		"Connection state recovery: dropped sessions kept for resuming (kept), sessions resumed (recovered), and resume attempts refused (failed: a bad, used or expired token, or an unrecoverable gap).",
		"outcome")
	m.recoveryKept = rec.WithLabelValues("kept")
	m.recoveryDone = rec.WithLabelValues("recovered")
	m.recoveryFailed = rec.WithLabelValues("failed")

	m.newRecoveryReads(f)

	acks := f.counterVec("server_acks_total",
		"Acknowledgements the server asked clients for (server API send with ack), by outcome; ignored counts ACKs with an id the server was not waiting for.",
		"outcome")
	for o := range m.serverAcks {
		m.serverAcks[o] = acks.WithLabelValues(ackOutcomeNames[o])
	}

	m.initForward(f)

	m.ready = f.gauge("ready", "1 when the gateway accepts traffic (readiness), else 0.")
	m.draining = f.gauge("draining", "1 once the gateway has started draining on shutdown, else 0.")

	f.gaugeFunc("connections", "Open TCP connections on the public listener.", opts.Connections)
	f.gaugeFunc("sessions", "Open chat sessions, all transports.", opts.Sessions)
	f.gaugeFunc("rooms", "Rooms with at least one member.", opts.Rooms)
	f.gaugeFunc("pending_bytes", "Unsent outbound bytes of all WebSocket connections, as the event loops last counted them (against -max-pending-total).", opts.PendingBytes)

	version, goVersion := buildVersions(opts.Version)
	info := f.gaugeVec("build_info",
		"Always 1; the labels carry the gateway version and the Go version it was built with.",
		"version", "goversion")
	info.WithLabelValues(version, goVersion).Set(1)

	reg.MustRegister(
		collectors.NewGoCollector(
			// The scheduler latency histogram shows goroutines (event
			// loops among them) waiting for a CPU: the first sign of an
			// overloaded gateway.
			collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler),
		),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	m.handler = promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{logger},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	}))
	return m
}

// Handler returns the Prometheus scrape handler of the dedicated registry
// (text exposition format). On a nil *Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Registry returns the dedicated registry, for collectors of other packages.
// It is nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Opened counts a TCP connection accepted on the public listener. Call it
// once per connection, where the connection is registered.
func (m *Metrics) Opened() {
	if m == nil {
		return
	}
	m.opened.Inc()
}

// Closed counts a connection of the public listener that ended. Call it
// exactly once per connection counted by Opened, where the connection is
// unregistered.
func (m *Metrics) Closed(r CloseReason) {
	if m == nil {
		return
	}
	if r >= numCloseReasons {
		r = CloseOtherCode
	}
	m.closed[r].Inc()
}

// Handshake counts a handshake that opened a session on transport t: a
// WebSocket upgrade, or an Engine.IO open over polling.
func (m *Metrics) Handshake(t Transport) {
	if m == nil || t >= numTransports {
		return
	}
	m.handshake[t].Inc()
}

// HandshakeFailed counts a connection refused before it became a session.
func (m *Metrics) HandshakeFailed(f HandshakeFailure) {
	if m == nil {
		return
	}
	if f >= numHandshakeFailures {
		f = HandshakeOther
	}
	m.hsFailed[f].Inc()
}

// Joined counts a membership added to a room (a join that changed the
// table).
func (m *Metrics) Joined() {
	if m == nil {
		return
	}
	m.members.Inc()
}

// RecoveryKept counts a dropped session kept for recovery.
func (m *Metrics) RecoveryKept() {
	if m != nil {
		m.recoveryKept.Inc()
	}
}

// ServerAck counts the outcome of an acknowledgement the server asked
// for, or an ACK it did not expect.
func (m *Metrics) ServerAck(o AckOutcome) {
	if m != nil {
		m.serverAcks[o].Inc()
	}
}

// RecoveryDone counts a resumed session.
func (m *Metrics) RecoveryDone() {
	if m != nil {
		m.recoveryDone.Inc()
	}
}

// RecoveryFailed counts a resume that was refused.
func (m *Metrics) RecoveryFailed() {
	if m != nil {
		m.recoveryFailed.Inc()
	}
}

// Left counts a membership removed from a room (a leave, or a session that
// closed while in the room).
func (m *Metrics) Left() {
	if m == nil {
		return
	}
	m.members.Dec()
}

// MessagesReceived counts n client requests.
func (m *Metrics) MessagesReceived(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.msgsReceived.Add(float64(n))
}

// MessagesDelivered counts n messages written to recipients (one per
// recipient).
func (m *Metrics) MessagesDelivered(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.msgsDelivered.Add(float64(n))
}

// BytesReceived counts n bytes read from client connections.
func (m *Metrics) BytesReceived(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.bytesReceived.Add(float64(n))
}

// BytesSent counts n bytes written to client connections.
func (m *Metrics) BytesSent(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.bytesSent.Add(float64(n))
}

// Broadcast records the fan-out of one room broadcast: the number of
// recipients, the sender excluded.
func (m *Metrics) Broadcast(recipients int) {
	if m == nil || recipients < 0 {
		return
	}
	m.fanout.Observe(float64(recipients))
}

// ObserveDeliveryLatency records the delivery latency of one sampled
// broadcast. The caller samples (e.g. one broadcast in 64) because reading
// the clock costs more than everything else here.
func (m *Metrics) ObserveDeliveryLatency(d time.Duration) {
	if m == nil || d < 0 {
		return
	}
	m.latency.Observe(d.Seconds())
}

// SlowConsumerClosed counts a recipient closed because its unsent backlog
// passed the limit.
func (m *Metrics) SlowConsumerClosed() {
	if m == nil {
		return
	}
	m.slowClosed.Inc()
}

// NodeBudgetClosed counts a recipient closed because the node's unsent
// bytes passed the node-wide budget and its backlog was the largest. The
// close itself is also counted by SlowConsumerClosed.
func (m *Metrics) NodeBudgetClosed() {
	if m == nil {
		return
	}
	m.budgetClosed.Inc()
}

// SlowConsumerDropped counts a message dropped for a recipient whose unsent
// backlog passed the limit (the connection stays open).
func (m *Metrics) SlowConsumerDropped() {
	if m == nil {
		return
	}
	m.slowDropped.Inc()
}

// Error counts an error reply with the given code (chat.Error.Code). Codes
// outside the documented set are counted as "other", which keeps the label
// set bounded whatever the caller passes.
func (m *Metrics) Error(code string) {
	if m == nil {
		return
	}
	m.errors[errorIndex(code)].Inc()
}

// SetReady sets chatgate_ready. The admin server calls it with its own
// readiness; call it directly only when there is no admin server.
func (m *Metrics) SetReady(ready bool) {
	if m == nil {
		return
	}
	m.ready.Set(b2f(ready))
}

// SetDraining sets chatgate_draining.
func (m *Metrics) SetDraining(draining bool) {
	if m == nil {
		return
	}
	m.draining.Set(b2f(draining))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// buildVersions returns the version labels of chatgate_build_info.
func buildVersions(version string) (string, string) {
	if version == "" {
		version = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
	}
	return version, runtime.Version()
}

// factory creates chatgate metrics and registers them on one registry.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeFunc(name, help string, fn func() int) {
	if fn == nil {
		return
	}
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
		func() float64 { return float64(fn()) }))
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

// promLogger routes promhttp's scrape errors to slog.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("metrics: scrape error", "err", fmt.Sprint(v...))
}
