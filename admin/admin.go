// Package admin serves the operator port: the admin page (GET /: live
// connections, rooms, rates and nodes, see page.go), Prometheus metrics,
// liveness, readiness and Go's pprof profiles. It is a plain net/http server, apart
// from the event loops: scrapes and profiles are rare, so a goroutine per
// request is fine here, and a slow scrape never delays chat traffic.
//
// The port exposes process internals (pprof, command line), so bind it to
// loopback or a private network, never to the public listener's interface.
//
//	a := admin.New("127.0.0.1:9090", m, logger)
//	if err := a.Start(); err != nil { ... }  // bind errors come back here
//	a.SetAPI(apiServer, apiKey)             // optional: the page's lists and actions
//	a.SetReady(true)                        // once the gateway listens
//	...
//	a.SetDraining(true)                     // first thing on SIGTERM
//	srv.Shutdown(ctx)
//	a.Shutdown(ctx)                         // last, so drains can be watched
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgate/chatgate/metrics"
)

// DefaultAddr is the conventional admin address: loopback only.
const DefaultAddr = "127.0.0.1:9090"

// Server limits. WriteTimeout must exceed the longest profile an operator
// asks for: pprof refuses a CPU profile or trace whose ?seconds= reaches it.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// ErrStarted is returned by Start on an Admin that has already started.
var ErrStarted = errors.New("admin: already started")

// Admin is the operator HTTP server. Its methods are safe from any
// goroutine; a nil *Admin does nothing.
type Admin struct {
	addr string
	m    *metrics.Metrics
	log  *slog.Logger
	srv  *http.Server

	ready    atomic.Bool
	draining atomic.Bool
	stateMu  sync.Mutex // serialises SetReady and SetDraining so the gauges follow the flags

	api atomic.Pointer[apiSource] // the admin page's API and key, nil until SetAPI

	mu   sync.Mutex // guards ln, done
	ln   net.Listener
	done chan struct{} // closed when Serve returns
}

// New returns an admin server for addr (host:port) serving m. It does not
// listen until Start. An empty addr disables the server: Start and Shutdown
// do nothing, while SetReady and SetDraining still drive m's gauges. m may
// be nil (then /metrics answers 404); a nil logger means slog.Default().
//
// The gateway starts not ready: /readyz answers 503 until SetReady(true).
func New(addr string, m *metrics.Metrics, logger *slog.Logger) *Admin {
	if logger == nil {
		logger = slog.Default()
	}
	a := &Admin{addr: addr, m: m, log: logger}
	a.srv = &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	m.SetReady(false)
	m.SetDraining(false)
	return a
}

// routes builds the private mux. net/http/pprof also registers itself on
// http.DefaultServeMux when imported; that mux is never served here.
func (a *Admin) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.m.Handler())
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("/debug/pprof/", pprof.Index) // named profiles: heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /{$}", pageHTML)
	mux.Handle("GET /admin/admin.js", pageJS)
	mux.Handle("GET /admin/admin.css", pageCSS)
	mux.HandleFunc("GET /admin/state", a.state)
	mux.HandleFunc("POST /admin/auth", a.authCheck)
	mux.HandleFunc("POST /admin/disconnect", a.disconnect)
	return mux
}

// Handler returns the admin routes, for tests and for embedding in another
// server. It is nil on a nil *Admin.
func (a *Admin) Handler() http.Handler {
	if a == nil {
		return nil
	}
	return a.srv.Handler
}

// Start listens on the admin address and serves in the background. A bind
// error is returned here, before any goroutine starts; errors after that
// are logged. With an empty address Start does nothing and returns nil.
func (a *Admin) Start() error {
	if a == nil || a.addr == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil {
		return ErrStarted
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", a.addr, err)
	}
	a.ln = ln
	a.done = make(chan struct{})
	a.log.Info("admin listening", "addr", ln.Addr().String())
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin: serve", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (useful with port 0), or
// nil before Start and when disabled.
func (a *Admin) Addr() net.Addr {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Shutdown stops the server: it stops accepting, lets requests in flight
// finish until ctx is done, then closes what is left. It returns once the
// serving goroutine has exited. It does nothing if the server never
// started.
func (a *Admin) Shutdown(ctx context.Context) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	if done == nil {
		return nil
	}
	err := a.srv.Shutdown(ctx)
	if err != nil {
		// A long profile is still running: cut it off rather than hold
		// the process past its drain budget.
		_ = a.srv.Close()
		err = fmt.Errorf("admin: shutdown: %w", err)
	}
	<-done
	return err
}

// SetReady sets whether the gateway is ready for traffic: once its
// listener accepts connections, true; false to take it out of rotation.
// /readyz answers 200 only when ready and not draining.
func (a *Admin) SetReady(ready bool) {
	if a == nil {
		return
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.ready.Store(ready)
	a.m.SetReady(a.isReady())
}

// SetDraining marks the start (or, with false, the cancellation) of a
// drain. While draining /readyz answers 503 whatever SetReady said, so the
// load balancer stops sending new clients before existing ones are closed.
func (a *Admin) SetDraining(draining bool) {
	if a == nil {
		return
	}
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.draining.Store(draining)
	a.m.SetDraining(draining)
	a.m.SetReady(a.isReady())
}

// Ready reports what /readyz answers: ready and not draining.
func (a *Admin) Ready() bool {
	if a == nil {
		return false
	}
	return a.isReady()
}

func (a *Admin) isReady() bool { return a.ready.Load() && !a.draining.Load() }

// healthz is liveness: the process runs and serves HTTP.
func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, "ok\n")
}

// readyz is readiness: 200 while the gateway should receive new clients.
func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case a.draining.Load():
		text(w, http.StatusServiceUnavailable, "draining\n")
	case !a.ready.Load():
		text(w, http.StatusServiceUnavailable, "not ready\n")
	default:
		text(w, http.StatusOK, "ready\n")
	}
}

func text(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
