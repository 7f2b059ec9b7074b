package cluster

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultPrefix        = "chatgate"
	DefaultHeartbeat     = time.Second
	DefaultTTL           = 3 * time.Second
	DefaultReconnectWait = 500 * time.Millisecond
	DefaultSyncTimeout   = 2 * time.Second
	DefaultOutQueue      = 16384
	DefaultInQueue       = 65536
	// maxSnapPart bounds one snapshot part, well under NATS's default
	// max_payload of 1 MiB.
	maxSnapPart = 256 << 10
	// maxPooledBuf is the largest buffer put back into the pool, so one
	// huge message does not pin its buffer for good.
	maxPooledBuf = 64 << 10
)

// Config configures New. The zero value of every field but URL and Node
// means its default.
type Config struct {
	// URL is the NATS server URL, e.g. "nats://127.0.0.1:4222"; a comma
	// separated list names several servers of one NATS cluster. Required.
	URL string
	// Node is this gateway's tag: the prefix of its connection ids
	// (chat.Config.Node), unique in the cluster. Letters, digits, '-' and
	// '_' only, 1 to 64 bytes. Required.
	Node string
	// Prefix is the first token of every subject; default "chatgate". Two
	// clusters on one NATS server need different prefixes.
	Prefix string
	// Heartbeat is the interval of this node's heartbeats; default 1 s.
	Heartbeat time.Duration
	// TTL is how long a node may stay silent before its peers drop its
	// members; default 3 s. It must exceed Heartbeat.
	TTL time.Duration
	// ReconnectWait is the pause between attempts to reach NATS (plus up to
	// half of it as jitter); default 500 ms.
	ReconnectWait time.Duration
	// SyncTimeout bounds one snapshot request; default 2 s.
	SyncTimeout time.Duration
	// OutQueue is the capacity of the queue between the event loops and
	// the publishing goroutine; a publish that finds it full is counted as
	// undelivered. Default 16384.
	OutQueue int
	// InQueue is the capacity of the queue between NATS and the dispatcher
	// goroutine; messages arriving while it is full are dropped and
	// counted (Stats.Dropped). Default 65536.
	InQueue int
	// Logger receives connection and membership events; nil means
	// slog.Default(). Nothing is logged per message.
	Logger *slog.Logger
}

// Errors of New.
var (
	ErrNoURL   = errors.New("cluster: no NATS URL")
	ErrBadNode = errors.New("cluster: node tag must be 1-64 letters, digits, '-' or '_'")
	ErrBadTTL  = errors.New("cluster: TTL must exceed the heartbeat interval")
)

func (c *Config) setDefaults() error {
	if c.URL == "" {
		return ErrNoURL
	}
	if !validToken(c.Node) {
		return ErrBadNode
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.TTL <= c.Heartbeat {
		return ErrBadTTL
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = DefaultSyncTimeout
	}
	if c.OutQueue <= 0 {
		c.OutQueue = DefaultOutQueue
	}
	if c.InQueue <= 0 {
		c.InQueue = DefaultInQueue
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// validToken reports whether s can be a node tag: it is used as a subject
// token, so no dots, spaces or wildcards.
func validToken(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Stats are the cluster's counters since New. Counters only grow.
type Stats struct {
	// Connected says the NATS connection is up right now.
	Connected bool
	// Reconnects counts successful reconnections to NATS.
	Reconnects uint64
	// Published counts room and direct messages handed to NATS.
	Published uint64
	// Undelivered counts room and direct messages that were not handed to
	// NATS: the broker was unreachable, the outbound queue was full, or the
	// cluster was closed. Their local delivery is unaffected.
	Undelivered uint64
	// StateLost counts state events and heartbeats that could not be
	// published; peers notice the gap and resynchronise.
	StateLost uint64
	// Received counts room and direct messages received from peers.
	Received uint64
	// Dropped counts inbound messages dropped because the dispatcher
	// queue was full (NATS slow consumer).
	Dropped uint64
	// BadPayloads counts inbound payloads that did not decode.
	BadPayloads uint64
	// Resyncs counts snapshot requests sent to peers.
	Resyncs uint64
	// RemoteNodes is the number of live peers; RemoteSessions the
	// sessions they hold.
	RemoteNodes, RemoteSessions int
	// Subscriptions is the number of room subjects subscribed (rooms with
	// local members).
	Subscriptions int
}
