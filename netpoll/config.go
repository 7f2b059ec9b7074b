package netpoll

import (
	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/limit"

	"github.com/chatgate/chatgate/metrics"

	"fmt"

	"github.com/chatgate/chatgate/clientip"

	"log/slog"
	"time"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultAddr             = ":8080"
	DefaultMaxMessage       = 64 << 10
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 20 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseTimeout     = 3 * time.Second
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultMaxPending       = 4 << 20
)

// Config configures a Server. A zero field means its default.
type Config struct {
	// Addr is the TCP listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// Loops is the number of event loops; 0 means one per CPU core.
	Loops int
	// MaxMessage is the largest WebSocket message accepted, in bytes
	// (RFC 6455 close code 1009 above it). Default 64 KiB.
	MaxMessage int
	// PingInterval is how long a connection may stay silent before the
	// server pings it. Default 25 s.
	PingInterval time.Duration
	// PingTimeout is how much longer a pinged connection may stay silent
	// before it is closed. Default 20 s.
	PingTimeout time.Duration
	// HandshakeTimeout bounds the time from accept to a complete HTTP
	// request head (slowloris). Default 10 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long the server waits for the peer's close
	// frame after sending its own. Default 3 s.
	CloseTimeout time.Duration
	// DrainSpread is the window over which clients should spread their
	// reconnects after a drain: Shutdown closes every WebSocket with 1012
	// "server restarting; reconnect=<ms>" (chat.DisconnectRestart). Zero
	// sends no hint.
	DrainSpread time.Duration
	// MaxHeaderBytes bounds the HTTP request head (431 above it). Default 8 KiB.
	MaxHeaderBytes int
	// MaxPending bounds a connection's unsent outbound bytes; a member that
	// stops reading is closed with 1008 "slow consumer" past it. Default 4 MiB.
	MaxPending int
	// MaxPendingTotal bounds the unsent outbound bytes of all the node's
	// WebSocket connections together: past it the connections with the
	// largest backlogs are reset as slow consumers, largest first, until
	// the node is under it (budget.go). 0 means the default,
	// DefaultMaxPendingTotal (an eighth of memory); negative turns it off.
	MaxPendingTotal int64
	// Echo enables the /echo endpoint, which sends every message back
	// unchanged (for conformance tests).
	Echo bool
	// Compression accepts permessage-deflate (RFC 7692) from clients that
	// offer it, always with server_no_context_takeover and
	// client_no_context_takeover, so no connection keeps compression
	// state between messages. Off by default.
	Compression bool
	// TrustedProxies are the peers whose Forwarded, X-Forwarded-For and
	// X-Real-IP headers are believed; nil trusts nobody, so a client
	// cannot spoof its address.
	TrustedProxies *clientip.Trusted
	// ProxyProtocol selects whether connections start with a PROXY
	// protocol v1/v2 header (haproxy send-proxy / send-proxy-v2).
	ProxyProtocol ProxyMode
	// Metrics receives the server's counters; nil records nothing.
	Metrics *metrics.Metrics
	// Verifier checks JWTs (Authorization: Bearer, ?token=, or the
	// Socket.IO CONNECT auth payload); nil turns authentication off.
	Verifier *auth.Verifier
	// AuthRequired refuses clients without a valid token: HTTP 401 before
	// the upgrade, or CONNECT_ERROR for Socket.IO.
	AuthRequired bool
	// ProxyHeaders lists the request headers passed to the backend's
	// connect call (-proxy-headers).
	ProxyHeaders []string
	// Origins is the browser-origin allowlist checked before an upgrade
	// (403 otherwise); nil allows every origin.
	Origins *auth.Origins
	// Limits are the connection and rate limits; zero fields take their
	// defaults (see package limit).
	Limits limit.Config
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// ProxyMode says whether a PROXY protocol header is expected.
type ProxyMode uint8

// PROXY protocol modes.
const (
	ProxyOff      ProxyMode = iota // no header; the bytes are HTTP
	ProxyOptional                  // a header is used when present
	ProxyRequired                  // a connection without a valid header is closed
)

// ParseProxyMode parses "off", "optional" or "required".
func ParseProxyMode(s string) (ProxyMode, error) {
	switch s {
	case "", "off":
		return ProxyOff, nil
	case "optional":
		return ProxyOptional, nil
	case "required":
		return ProxyRequired, nil
	}
	return ProxyOff, fmt.Errorf("netpoll: PROXY protocol mode %q: want off, optional or required", s)
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.WithDefaults()
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.MaxPendingTotal == 0 {
		c.MaxPendingTotal = DefaultMaxPendingTotal()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// sweepEvery is the period of the per-loop timeout sweep: a quarter of the
// shortest timeout (the protocols' shortest included), between 10 ms and 1 s. Deadlines are stamped with the
// coarse clock the sweep advances, so timeouts fire within one period of
// their nominal time, early or late.
func (c Config) sweepEvery(protocol time.Duration) time.Duration {
	d := min(c.PingInterval, c.PingTimeout, c.HandshakeTimeout, c.CloseTimeout)
	if protocol > 0 {
		d = min(d, protocol)
	}
	d /= 4
	return max(10*time.Millisecond, min(d, time.Second))
}
