// Package proxy carries clients' application events, room messages, joins,
// connects and disconnects to the application's backend over HTTP
// (-proxy-*-url), and its answers back: chatgate's chat.Backend.
//
// Every call is a POST of a JSON object; the backend answers
// {"result":{…}}, {"error":{"code":…,"message":…}} or
// {"disconnect":{"code":…,"reason":…}} (docs/backend.md). Calls never run
// on an event loop: Call queues the call for a fixed pool of workers
// (-proxy-concurrency) and returns at once; a full queue answers
// backend_unavailable at once. A worker uses one shared keep-alive HTTP
// client with a timeout (-proxy-timeout); a backend that is down, slow,
// answers non-2xx, answers more than 1 MiB or answers something that is not
// the envelope gives the client backend_unavailable, backend_timeout or
// backend_error — never a hang. Disconnects are fire and forget, batched.
//
// With -proxy-secret every request carries
// "X-Chatgate-Signature: sha256=<hex HMAC-SHA256 of the body>", so the
// backend can verify the gateway.
package proxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/metrics"
)

// Defaults of Config's zero fields.
const (
	DefaultConcurrency = 64
	DefaultQueue       = 16384
	DefaultTimeout     = 5 * time.Second
	// MaxAnswer bounds a backend's answer; a longer one is backend_error.
	MaxAnswer = 1 << 20
	// SignatureHeader carries the HMAC of the body when Secret is set.
	SignatureHeader = "X-Chatgate-Signature"
	// disconnectBatch and disconnectFlush bound a batch of disconnects.
	disconnectBatch = 256
	disconnectFlush = 200 * time.Millisecond
	// disconnectQueue bounds disconnects waiting for a batch; past it they
	// are dropped and counted.
	disconnectQueue = 65536
)

// Config configures a Client. An empty URL turns that call off.
type Config struct {
	ConnectURL, EventURL, PublishURL, JoinURL, DisconnectURL, RefreshURL string
	// Concurrency is the number of calls in flight at most; default 64.
	Concurrency int
	// Queue bounds calls waiting for a worker; default 16384.
	Queue int
	// Timeout bounds one call; default 5 s.
	Timeout time.Duration
	// Secret, when set, signs every request body (SignatureHeader).
	Secret string
	// Registry receives the proxy's metrics; nil registers none.
	Registry prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Client is the HTTP backend. Its methods are safe from any goroutine.
type Client struct {
	cfg  Config
	urls [6]string // by chat.CallKind
	http *http.Client
	jobs chan job
	log  *slog.Logger

	disc     chan json.RawMessage
	done     chan struct{}
	wg       sync.WaitGroup
	closeOne sync.Once

	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var kindNames = [6]string{"event", "publish", "join", "connect", "disconnect", "refresh"}

type job struct {
	kind chat.CallKind
	body []byte
	done func(chat.BackendAnswer)
	// deadline is when the call must be answered: -proxy-timeout from
	// when it was queued, so time spent waiting for a worker counts.
	deadline time.Time
}

// New starts a Client's workers. Close stops them.
func New(cfg Config) (*Client, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, log: cfg.Logger, jobs: make(chan job, cfg.Queue),
		disc: make(chan json.RawMessage, disconnectQueue), done: make(chan struct{})}
	c.urls = [6]string{cfg.EventURL, cfg.PublishURL, cfg.JoinURL, cfg.ConnectURL, cfg.DisconnectURL, cfg.RefreshURL}
	c.http = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:               nil, // the backend is addressed directly
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.Concurrency,
			MaxIdleConnsPerHost: cfg.Concurrency,
			MaxConnsPerHost:     cfg.Concurrency,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	c.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "chatgate", Subsystem: "proxy",
		Name: "calls_total", Help: "Backend calls by kind and result (ok, error = the backend refused, disconnect, unavailable, timeout, backend_error)."},
		[]string{"kind", "result"})
	c.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "chatgate", Subsystem: "proxy",
		Name: "duration_seconds", Help: "Time from a call's start to its answer, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"kind"})
	if cfg.Registry != nil {
		for _, col := range []prometheus.Collector{c.calls, c.duration} {
			if err := cfg.Registry.Register(col); err != nil {
				return nil, fmt.Errorf("proxy: metrics: %w", err)
			}
		}
	}
	for i := 0; i < cfg.Concurrency; i++ {
		c.wg.Add(1)
		go c.worker()
	}
	if cfg.DisconnectURL != "" {
		c.wg.Add(1)
		go c.disconnects()
	}
	return c, nil
}

// Close stops the workers; calls still queued are answered
// backend_unavailable, and pending disconnects are sent first.
func (c *Client) Close() {
	c.closeOne.Do(func() { close(c.done) })
	c.wg.Wait()
}

// Handles implements chat.Backend.
func (c *Client) Handles(kind chat.CallKind) bool {
	return int(kind) < len(c.urls) && c.urls[kind] != ""
}

// Call implements chat.Backend.
func (c *Client) Call(kind chat.CallKind, body []byte, done func(chat.BackendAnswer)) {
	select {
	case <-c.done:
		done(chat.BackendAnswer{Err: chat.ErrBackendUnavailable})
		return
	default:
	}
	select {
	case c.jobs <- job{kind, body, done, time.Now().Add(c.cfg.Timeout)}:
	default:
		c.count(kind, "unavailable")
		done(chat.BackendAnswer{Err: chat.ErrBackendUnavailable})
	}
}

func (c *Client) worker() {
	defer c.wg.Done()
	for {
		select {
		case j := <-c.jobs:
			j.done(c.do(j.kind, j.body, j.deadline))
		case <-c.done:
			for {
				select {
				case j := <-c.jobs:
					j.done(chat.BackendAnswer{Err: chat.ErrBackendUnavailable})
				default:
					return
				}
			}
		}
	}
}

// envelope is the backend's answer.
type envelope struct {
	Result     json.RawMessage `json:"result"`
	RawError   *errorBody      `json:"error"`
	Disconnect *disconnectBody `json:"disconnect"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type disconnectBody struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// do makes one call and turns what happened into the client's answer.
func (c *Client) do(kind chat.CallKind, body []byte, deadline time.Time) chat.BackendAnswer {
	start := time.Now()
	if !start.Before(deadline) {
		// It waited its whole timeout for a worker: the backend is too
		// slow for the load, and the client has waited long enough.
		c.count(kind, "timeout")
		return chat.BackendAnswer{Err: chat.ErrBackendTimeout}
	}
	a, result := c.post(kind, body, deadline)
	c.count(kind, result)
	c.duration.WithLabelValues(kindNames[kind]).Observe(time.Since(start).Seconds())
	return a
}

func (c *Client) post(kind chat.CallKind, body []byte, deadline time.Time) (chat.BackendAnswer, string) {
	b, err := c.send(c.urls[kind], body, deadline)
	if err != nil {
		return failure(err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		c.warn("backend answered something that is not JSON", kind, err)
		return chat.BackendAnswer{Err: chat.ErrBackendError}, "backend_error"
	}
	switch {
	case env.Disconnect != nil:
		d := chat.Disconnect{Code: uint16(env.Disconnect.Code), Reason: env.Disconnect.Reason, Metric: metrics.CloseServer}
		if env.Disconnect.Code < 4000 || env.Disconnect.Code > 4999 {
			d.Code = chat.DisconnectServer.Code
		}
		if len(d.Reason) > 123 {
			d.Reason = d.Reason[:123]
		}
		return chat.BackendAnswer{Disconnect: &d}, "disconnect"
	case env.RawError != nil:
		code := env.RawError.Code
		if code == "" || len(code) > 64 {
			code = chat.CodeBackendError
		}
		msg := env.RawError.Message
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return chat.BackendAnswer{Err: &chat.Error{Code: code, Message: msg}}, "error"
	case env.Result != nil && string(env.Result) != "null":
		return chat.BackendAnswer{Result: env.Result}, "ok"
	}
	c.warn("backend answered without result, error or disconnect", kind, nil)
	return chat.BackendAnswer{Err: chat.ErrBackendError}, "backend_error"
}

// errStatus is a non-2xx answer.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("proxy: backend answered HTTP %d", int(e)) }

var errTooLarge = errors.New("proxy: backend answer over 1 MiB")

// send POSTs body to url and returns the answer's body, by deadline.
func (c *Client) send(url string, body []byte, deadline time.Time) ([]byte, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(c.cfg.Secret, body))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, errStatus(resp.StatusCode)
	}
	if len(b) > MaxAnswer {
		return nil, errTooLarge
	}
	return b, nil
}

// failure maps a failed request to the client's error.
func failure(err error) (chat.BackendAnswer, string) {
	var st errStatus
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return chat.BackendAnswer{Err: chat.ErrBackendTimeout}, "timeout"
	case errors.As(err, &st), errors.Is(err, errTooLarge):
		return chat.BackendAnswer{Err: chat.ErrBackendError}, "backend_error"
	}
	return chat.BackendAnswer{Err: chat.ErrBackendUnavailable}, "unavailable"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Sign returns the signature header value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (c *Client) count(kind chat.CallKind, result string) {
	c.calls.WithLabelValues(kindNames[kind], result).Inc()
}

// warn logs a backend's malformed answer; per call, but such answers are
// a deployment error, not traffic.
func (c *Client) warn(msg string, kind chat.CallKind, err error) {
	c.log.Warn("proxy: "+msg, "kind", kindNames[kind], "err", err)
}

// Disconnected implements chat.Backend: the disconnect joins the next batch.
func (c *Client) Disconnected(body []byte) {
	if c.cfg.DisconnectURL == "" {
		return
	}
	select {
	case c.disc <- body:
	default:
		c.calls.WithLabelValues("disconnect", "dropped").Inc()
	}
}

// disconnects batches disconnect reports: {"disconnects":[…]}.
func (c *Client) disconnects() {
	defer c.wg.Done()
	t := time.NewTicker(disconnectFlush)
	defer t.Stop()
	var batch []json.RawMessage
	flush := func() {
		if len(batch) == 0 {
			return
		}
		body, _ := json.Marshal(struct {
			Disconnects []json.RawMessage `json:"disconnects"`
		}{batch})
		start := time.Now()
		_, err := c.send(c.cfg.DisconnectURL, body, time.Now().Add(c.cfg.Timeout))
		c.duration.WithLabelValues("disconnect").Observe(time.Since(start).Seconds())
		result := "ok"
		if err != nil {
			_, result = failure(err)
		}
		c.calls.WithLabelValues("disconnect", result).Add(float64(len(batch)))
		batch = batch[:0]
	}
	for {
		select {
		case b := <-c.disc:
			batch = append(batch, b)
			if len(batch) >= disconnectBatch {
				flush()
			}
		case <-t.C:
			flush()
		case <-c.done:
			for {
				select {
				case b := <-c.disc:
					batch = append(batch, b)
				default:
					flush()
					return
				}
			}
		}
	}
}
