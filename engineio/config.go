package engineio

import (
	"log/slog"
	"strings"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
)

// Defaults for Config fields left at zero.
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxSessionsPerConnection: a browser opens one Engine.IO
	// session per page, on whichever connection of its pool is free.
	DefaultMaxSessionsPerConnection = 1
	// DefaultMaxForwarded: Config.MaxForwarded.
	DefaultMaxForwarded = 10000
)

// upgradeTimeout bounds how long a WebSocket may probe a long-polling
// session without completing the upgrade (as the reference server does).
const upgradeTimeout = 10 * time.Second

// closeLinger is how long the sid of a polling session that its client
// closed while no GET was held still answers one GET, with a noop.
// Requests on different connections are handled on different loops, so
// a GET the client sent before its close (the official suites send both
// at once) may be handled after it: it gets the noop it would have got
// had it come first, not a 400. A client sends nothing after its close,
// so the window only needs to cover that skew.
const closeLinger = time.Second

// Timings the official protocol test suites require.
const (
	conformancePingInterval   = 300 * time.Millisecond
	conformancePingTimeout    = 200 * time.Millisecond
	conformanceConnectTimeout = time.Second
	conformanceMaxPayload     = 1000000
)

// Config configures Engine.IO v4 / Socket.IO v5 sessions. A zero field
// means its default.
type Config struct {
	// PingInterval is how often the server sends an Engine.IO ping.
	// Default 25 s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong before it
	// closes the session. Default 20 s.
	PingTimeout time.Duration
	// ConnectTimeout bounds the time from the Engine.IO handshake until a
	// namespace is connected (a refused CONNECT does not count). Default
	// 10 s: a session that never connects is a handshake flood's, and
	// its sid the only thing guarding it.
	ConnectTimeout time.Duration
	// MaxSessionsPerConnection bounds the long-polling sessions one
	// keep-alive TCP connection may have opened and still open (429
	// past it); -1 means unlimited. Connections from a trusted proxy,
	// which carry many clients' requests, are not bounded: their
	// sessions count against their clients' addresses. Default 1.
	MaxSessionsPerConnection int
	// CORSOrigins lists the browser origins allowed to use the long-polling
	// transport from another site, comma-separated: exact origins
	// ("https://chat.example.com") or "*" for any. Empty allows none
	// (same-origin pages need no CORS).
	CORSOrigins string
	// Conformance makes the endpoint behave as the official Engine.IO and
	// Socket.IO protocol test suites expect (fixed timings, namespaces "/"
	// and "/custom", "auth" event, "message-back" echo, acks echoed, and
	// the plain Engine.IO echo at /engine.io/) instead of serving chat.
	// Timings given above are ignored.
	Conformance bool
	// AllowEIO3 also serves Engine.IO protocol v3 clients (EIO=3:
	// socket.io-client 2.x, Socket.IO protocol v4), as socket.io's
	// allowEIO3 does (eio3.go). Off, they are refused with "Unsupported
	// protocol version".
	AllowEIO3 bool
	// MaxMessage is the largest packet accepted and the maxPayload
	// announced to clients, in bytes. Default 64 KiB.
	MaxMessage int
	// Verifier checks tokens from the handshake or the CONNECT auth
	// payload; nil turns authentication off.
	Verifier *auth.Verifier
	// AuthRequired refuses a CONNECT without a valid token
	// (CONNECT_ERROR).
	AuthRequired bool
	// Limits are the per-session rate limits (every Engine.IO packet
	// counts).
	Limits limit.Config
	// Namespaces lists the Socket.IO namespaces other than "/" served in
	// chat mode (-sio-namespaces); "/" is always served. With a backend
	// that decides connects (-proxy-connect-url) a CONNECT to any
	// namespace is asked of it instead. Each must pass
	// chat.CheckNamespace (the caller validates).
	Namespaces []string
	// ProxyHeaders lists the handshake headers passed to the backend's
	// connect call (-proxy-headers).
	ProxyHeaders []string
	// MaxForwarded bounds the long-polling requests this node forwards to
	// the sessions' home nodes at once in cluster mode (forward.go); past
	// it a request gets 503. A held GET counts until it is answered, so
	// it should exceed the polling clients one node sees for other nodes.
	// Default 10000.
	MaxForwarded int
	// Metrics receives handshake counts; nil records nothing.
	Metrics *metrics.Metrics
	// Logger receives the package's logs; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Conformance {
		c.PingInterval = conformancePingInterval
		c.PingTimeout = conformancePingTimeout
		c.ConnectTimeout = conformanceConnectTimeout
		c.MaxMessage = conformanceMaxPayload
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 64 << 10
	}
	if c.MaxForwarded <= 0 {
		c.MaxForwarded = DefaultMaxForwarded
	}
	if c.MaxSessionsPerConnection == 0 {
		c.MaxSessionsPerConnection = DefaultMaxSessionsPerConnection
	}
	c.Limits = c.Limits.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// corsAllowed reports whether origin may use the polling transport
// cross-site.
func (c *Config) corsAllowed(origin []byte) bool {
	list := c.CORSOrigins
	for len(list) > 0 {
		item := list
		if i := strings.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			list = ""
		}
		item = strings.TrimSpace(item)
		if item == "*" || strings.EqualFold(item, string(origin)) {
			return true
		}
	}
	return false
}

// CORSHeaders returns h with the CORS headers for a request from origin
// added when the origin is allowed (-sio-cors-origins), for other answers
// under the Socket.IO path (the client bundle, package sioclient), as
// socket.io's server applies its cors option to them.
func (c *Config) CORSHeaders(origin []byte, h []string) []string { return c.corsHeaders(origin, h) }

// corsHeaders adds the CORS headers for a request from origin, when the
// origin is allowed (-sio-cors-origins).
func (c *Config) corsHeaders(origin []byte, h []string) []string {
	if len(origin) == 0 || !c.corsAllowed(origin) {
		return h
	}
	return append(h,
		"Access-Control-Allow-Origin: "+string(origin),
		"Access-Control-Allow-Credentials: true",
		"Vary: Origin")
}
