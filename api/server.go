package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat"
)

// DefaultAddr is the API listener's default address: loopback only.
const DefaultAddr = "127.0.0.1:9091"

// MaxBody bounds a request body; a larger one is refused with too_large.
const MaxBody = 1 << 20

// DefaultCallTimeout bounds the wait for another node's answer.
const DefaultCallTimeout = 2 * time.Second

// Cluster is what the API needs of cluster mode (package cluster's
// *Cluster); nil means a single node.
type Cluster interface {
	// Nodes lists the other live nodes.
	Nodes() []string
	// NodeOf names the node that owns connection id.
	NodeOf(id []byte) (string, bool)
	// UserNodes lists the other nodes with connections of user.
	UserNodes(user string) []string
	// Call runs req on node's Serve function (Server.ServeRemote).
	Call(ctx context.Context, node string, req []byte) ([]byte, error)
}

// Stats reports this node's figures for the info method.
type Stats struct {
	Connections int
	Rooms       int
}

// Config configures a Server. Zero fields take their defaults.
type Config struct {
	// Addr is the listen address; DefaultAddr when empty.
	Addr string
	// Key, when set, is required as "Authorization: apikey <Key>".
	Key string
	// Version is reported by info.
	Version string
	// CallTimeout bounds each call to another node; DefaultCallTimeout.
	CallTimeout time.Duration
	// Stats returns this node's connection and room counts.
	Stats func() Stats
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the API for one node.
type Server struct {
	cfg     Config
	hub     *chat.Hub
	cl      Cluster
	log     *slog.Logger
	started time.Time
	http    *http.Server
	ln      net.Listener
	mux     *http.ServeMux
	// remoteAcks holds a token per other node's send with "ack" being
	// waited on (ServeRemoteAsync).
	remoteAcks chan struct{}
}

// CheckAddr refuses an API address that is not loopback when no key is
// set: the API can disconnect every client, so it is never open to a
// network without a key.
func CheckAddr(addr, key string) error {
	if addr == "" || key != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("api: -api-addr %q is not a loopback address: set -api-key (CHATGATE_API_KEY) to serve it", addr)
}

// New returns the API over hub; cl is nil on a single node.
func New(cfg Config, hub *chat.Hub, cl Cluster) *Server {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stats == nil {
		cfg.Stats = func() Stats { return Stats{} }
	}
	s := &Server{cfg: cfg, hub: hub, cl: cl, log: cfg.Logger, started: time.Now(),
		remoteAcks: make(chan struct{}, maxRemoteAcks)}
	s.mux = http.NewServeMux()
	s.mux.Handle("/api/", s)
	return s
}

// Handler returns the API's HTTP handler (POST /api/<method>), for
// mounting on another listener (the admin page's).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	if err := CheckAddr(s.cfg.Addr, s.cfg.Key); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api listener", "err", err)
		}
	}()
	s.log.Info("api listening", "addr", ln.Addr().String(), "key", s.cfg.Key != "")
	return nil
}

// Addr is the address the listener is bound to (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the listener, letting calls in progress finish until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// ServeHTTP answers POST /api/<method>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeError(w, errUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, errMethod)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, errContentType)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if _, ok := methods[method]; !ok {
		writeError(w, errUnknownMethod)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, errTooLarge)
			return
		}
		writeError(w, badRequest("reading the body: "+err.Error()))
		return
	}
	res, apiErr := s.call(r.Context(), method, body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Result any `json:"result"`
	}{res})
}

// authorized checks the API key in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Key == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "apikey ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Key)) == 1
}

// Do runs one method with its JSON params, as POST /api/<method> would
// (for the admin page, which serves the read-only methods itself). The
// result marshals to the "result" object. Safe from any goroutine but an
// event loop.
func (s *Server) Do(ctx context.Context, method string, params []byte) (any, *Error) {
	return s.call(ctx, method, params)
}

// ReadOnly reports whether method only reads (rooms, members,
// connections, info).
func ReadOnly(method string) bool {
	switch method {
	case "rooms", "members", "connections", "info":
		return true
	}
	return false
}

// call decodes params for method and runs it.
func (s *Server) call(ctx context.Context, method string, params []byte) (any, *Error) {
	m, ok := methods[method]
	if !ok {
		return nil, errUnknownMethod
	}
	params = bytes.TrimSpace(params)
	if len(params) == 0 || params[0] != '{' || !json.Valid(params) {
		return nil, errNotJSON
	}
	// encoding/json would quietly turn invalid UTF-8 in a string into
	// U+FFFD, so a room "a\xffb" would become another room: refuse it.
	if !utf8.Valid(params) {
		return nil, errNotUTF8
	}
	return m(s, ctx, params)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads params into v, refusing unknown fields so that a typo is
// an error rather than a silent no-op.
func decode(params []byte, v any) *Error {
	d := json.NewDecoder(bytes.NewReader(params))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("params: " + err.Error())
	}
	return nil
}
