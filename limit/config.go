package limit

import "time"

// Defaults for Config fields left at zero. They are meant to be safe on an
// internet-facing gateway and generous for real chat clients; the reasons
// are given with each Config field. docs/security.md lists them with their
// flags.
const (
	DefaultMaxConnections        = 100_000
	DefaultMaxConnectionsPerIP   = 1_000
	DefaultMessagesPerSecond     = 20
	DefaultBytesPerSecond        = 256 << 10
	DefaultMaxRoomsPerConnection = 100
	DefaultStrikeMax             = 100 // with the default burst; see defaultStrikeMax
	DefaultStrikeWindow          = 10 * time.Second
)

// Config gathers the limits of this package. A zero field means its
// default; a negative field means unlimited (or, for the strike rule,
// never close). Config is read-only once the server runs; every loop reads
// the same *Config without locks.
type Config struct {
	// MaxConnections bounds open TCP connections, in any state, over the
	// whole gateway; the next one gets HTTP 503 at accept. It caps memory
	// (each connection costs a few KiB in the kernel and the gateway) and
	// file descriptors before the process runs out of either. Default
	// 100,000; raise it (and the fd limit) on larger machines.
	MaxConnections int
	// MaxConnectionsPerIP bounds open connections per client address: an
	// IPv4 address or an IPv6 /64 (one subscriber's network, so an
	// attacker cannot rotate through its 2^64 addresses). The next gets
	// HTTP 429. Default 1,000: high because many users may share one
	// address behind a corporate or carrier-grade NAT, low enough that one
	// host cannot take a visible share of MaxConnections. The address is
	// the client's as resolved by package clientip (PROXY protocol or the
	// forwarding headers of trusted proxies); loopback addresses and
	// connections whose resolved address is a trusted proxy itself are
	// not counted (see PerIP).
	MaxConnectionsPerIP int
	// MessagesPerSecond is the sustained rate of inbound messages per
	// connection (WebSocket data messages and pings, Socket.IO packets).
	// Default 20: far above human typing, enough for presence and typing
	// indicators, and it bounds what one connection can make the gateway
	// fan out.
	MessagesPerSecond float64
	// MessageBurst is how many messages may arrive at once above the
	// sustained rate. Default: twice MessagesPerSecond (40), so a client
	// that reconnects and replays a short backlog is not refused.
	MessageBurst int
	// BytesPerSecond is the sustained rate of inbound payload bytes per
	// connection. Default 256 KiB/s.
	BytesPerSecond int
	// BytesBurst is the byte allowance above the sustained rate. Default:
	// twice BytesPerSecond (512 KiB). A message larger than the burst is
	// still accepted when the bucket is full (see Bucket.Allow).
	BytesBurst int
	// MaxRoomsPerConnection bounds the rooms one connection may be in at
	// once; joining one more is refused with the error "too_many_rooms".
	// Each membership costs memory in the room table and a delivery per
	// broadcast. Default 100.
	MaxRoomsPerConnection int
	// Strikes decides when rate-limit violations close the connection with
	// 1008. Default: more than 100 refused messages within 10 s, scaled
	// with MessageBurst (two and a half bursts, at least 30). A client
	// that bursts past its allowance and backs off on "rate_limited" stays
	// connected; one that keeps flooding is cut within a fraction of a
	// second (at 1,000 messages/s, after about 0.15 s).
	Strikes StrikeRule
	// HandshakeRate bounds new sessions per second over the whole node:
	// WebSocket upgrades at /ws and Socket.IO's, and Engine.IO long-polling
	// handshakes (the open GET without a sid). Past it a handshake gets
	// HTTP 503 with Retry-After (see Gate). 0 (the default) or negative:
	// no bound. Off by default because the right figure is the node's:
	// what it can admit per second while its live traffic keeps its
	// latency, with its backend and history (scripts/storm.sh measures
	// it); a guess would only slow the reconnect of a healthy node.
	HandshakeRate float64
	// HandshakeBurst is how many handshakes may arrive at once above
	// HandshakeRate. Default: one second's worth (HandshakeRate, at
	// least 1).
	HandshakeBurst int
}

// WithDefaults returns c with zero fields set to their defaults. Negative
// fields stay negative (unlimited).
func (c Config) WithDefaults() Config {
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if c.MessagesPerSecond == 0 {
		c.MessagesPerSecond = DefaultMessagesPerSecond
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = max(1, int(2*c.MessagesPerSecond))
	}
	if c.BytesPerSecond == 0 {
		c.BytesPerSecond = DefaultBytesPerSecond
	}
	if c.BytesBurst == 0 {
		c.BytesBurst = max(1, 2*c.BytesPerSecond)
	}
	if c.MaxRoomsPerConnection == 0 {
		c.MaxRoomsPerConnection = DefaultMaxRoomsPerConnection
	}
	if c.Strikes.Max == 0 {
		burst := c.MessageBurst
		if c.MessagesPerSecond < 0 {
			burst = -1 // messages unlimited: only bytes strike
		}
		c.Strikes.Max = defaultStrikeMax(burst)
	}
	if c.HandshakeRate > 0 && c.HandshakeBurst <= 0 {
		c.HandshakeBurst = max(1, int(c.HandshakeRate))
	}
	if c.Strikes.Window <= 0 {
		c.Strikes.Window = DefaultStrikeWindow
	}
	return c
}

// defaultStrikeMax scales the strike rule with the message burst: a client
// may be refused two and a half bursts' worth of messages within the
// window before it is closed. With the default burst (40) that is
// DefaultStrikeMax (100); a gateway configured for a small burst cuts a
// flooder sooner (burst 5: after 30 refusals, so 50 frames at once are cut). Unlimited
// messages (a negative burst) keep DefaultStrikeMax for the byte limit.
func defaultStrikeMax(burst int) int {
	if burst <= 0 {
		return DefaultStrikeMax
	}
	return max(30, burst*5/2)
}
