package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/chatgate/chatgate/history"
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
	// DefaultMaxMessage is the default bound of a client message's data
	// (and of each attachment) accepted from a peer: the gateway's default
	// -max-message.
	DefaultMaxMessage = 64 << 10
	// MinKeyLen is the shortest Config.Key accepted.
	MinKeyLen = 32
	// DefaultSeqQueue is the default capacity of the queue between the
	// event loops and the JetStream publisher (Config.SeqQueue).
	DefaultSeqQueue = 16384
	// DefaultMaxAckPending is the default bound of JetStream publishes
	// awaiting their acknowledgement (Config.MaxAckPending).
	DefaultMaxAckPending = 4096
	// DefaultAckTimeout is how long the publisher waits for JetStream to
	// acknowledge a room message before it delivers it without an offset.
	DefaultAckTimeout = 5 * time.Second
	// DefaultReplayTimeout bounds the wait in New for this node's copy of
	// the stream to catch up with what the stream held at start.
	DefaultReplayTimeout = 30 * time.Second
	// DefaultStreamSlack is the default Config.StreamSlack: a node may
	// lag this many messages of one room behind the stream without
	// missing any.
	DefaultStreamSlack = 65536
	// setupTimeout bounds each JetStream API request made by New.
	setupTimeout = 5 * time.Second
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

	// MaxMessage bounds the data of a client's message received from a
	// peer, and each of its attachments: the gateway's -max-message, as
	// no client can send more. Messages of the server (server API,
	// backend commands: no sender id) may carry up to 1 MiB. Default
	// 64 KiB.
	MaxMessage int

	// Key, when set, authenticates every message between nodes: each
	// carries an HMAC-SHA256 with this key (wire version 2), and a node
	// drops what is unsigned or signed with another key (Stats.Forged).
	// Every node of a cluster needs the same key. At least MinKeyLen
	// bytes. Without it any client that may publish on the cluster's
	// subjects can forge messages: NATS permissions are then the only
	// protection (docs/cluster.md).
	Key []byte

	// History configures the cluster-wide room history (docs/cluster.md,
	// "History and recovery across nodes"): with History.Size above 0 and a
	// Handler that is a HistoryHandler, New keeps room messages in a
	// JetStream stream when the NATS server has JetStream, with these limits
	// (MaxMsgsPerSubject = Size + StreamSlack, MaxAge = TTL, MaxBytes =
	// Memory), and gives the Handler this node's copy of it. History.Epoch and
	// History.Now are ignored: the stream decides the epoch. Zero: no shared
	// history (each node keeps its own, if any).
	History history.Config
	// StreamSlack is how many messages per room the stream keeps beyond
	// History.Size: the stream is the room bus, and a message the
	// per-room limit drops before a node has read it never reaches that
	// node's members. A node's log still shows History.Size per room.
	// Default DefaultStreamSlack; negative: none.
	StreamSlack int
	// Stream is the name of the JetStream stream; default the Prefix with
	// '.' as '_' followed by "_history".
	Stream string
	// HistoryReplicas is the stream's replica count in a JetStream
	// cluster (1 to 5); default 1.
	HistoryReplicas int
	// SeqQueue is the capacity of the queue between the event loops and
	// the JetStream publisher; a room message that finds it full is lost
	// and counted (Stats.HistoryDropped). Default 16384.
	SeqQueue int
	// MaxAckPending bounds the JetStream publishes awaiting their
	// acknowledgement; past it the publisher waits. Default 4096.
	MaxAckPending int
	// AckTimeout is how long a publish may wait for its acknowledgement
	// before the message is delivered without an offset. Default 5 s.
	AckTimeout time.Duration
	// ReplayTimeout bounds New's wait for the node's copy of the history
	// to load what the stream held at start. Default 30 s.
	ReplayTimeout time.Duration

	// NATS credentials: at most one of User (with Password), Token,
	// NKeySeedFile and CredsFile. Credentials in URL work too.
	User, Password string
	Token          string
	// NKeySeedFile is a file holding an NKey user seed ("SU…").
	NKeySeedFile string
	// CredsFile is a NATS credentials file (user JWT and NKey seed,
	// decentralised auth).
	CredsFile string
	// TLS to the NATS server: TLSCAFile is a PEM file of the CAs that
	// verify the server (default: the system's); TLSCertFile and
	// TLSKeyFile, given together, are the client certificate for servers
	// that verify clients. Setting any of them requires TLS.
	TLSCAFile, TLSCertFile, TLSKeyFile string
}

// Errors of New.
var (
	ErrNoURL    = errors.New("cluster: no NATS URL")
	ErrBadNode  = errors.New("cluster: node tag must be 1-64 letters, digits, '-' or '_'")
	ErrBadTTL   = errors.New("cluster: TTL must exceed the heartbeat interval")
	ErrShortKey = fmt.Errorf("cluster: key must be at least %d bytes", MinKeyLen)
	ErrAuth     = errors.New("cluster: give at most one of NATS user/password, token, NKey seed and credentials file; a password needs a user")
	ErrTLSPair  = errors.New("cluster: a TLS client certificate needs its key, and a key its certificate")
	ErrHistory  = errors.New("cluster: history limits must not be negative, replicas at most 5, and the stream name a JetStream name (no spaces, '.', '*', '>', '/' or '\\')")
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
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.Stream == "" {
		c.Stream = strings.ReplaceAll(c.Prefix, ".", "_") + "_history"
	}
	if c.StreamSlack == 0 {
		c.StreamSlack = DefaultStreamSlack
	} else if c.StreamSlack < 0 {
		c.StreamSlack = 0
	}
	if c.HistoryReplicas <= 0 {
		c.HistoryReplicas = 1
	}
	if c.SeqQueue <= 0 {
		c.SeqQueue = DefaultSeqQueue
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ReplayTimeout <= 0 {
		c.ReplayTimeout = DefaultReplayTimeout
	}
	if c.History.Size < 0 || c.History.TTL < 0 || c.History.Memory < 0 || c.HistoryReplicas > 5 || !validStreamName(c.Stream) {
		return ErrHistory
	}
	if c.Key != nil && len(c.Key) < MinKeyLen {
		return ErrShortKey
	}
	n := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 || c.Password != "" && c.User == "" {
		return ErrAuth
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return ErrTLSPair
	}
	// Files are read when connecting (and again on reconnects): a missing
	// one is a configuration error now, not a silent retry loop.
	for _, f := range []string{c.NKeySeedFile, c.CredsFile, c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
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

// validStreamName reports whether s can name a JetStream stream.
func validStreamName(s string) bool {
	return s != "" && len(s) <= 255 && !strings.ContainsAny(s, " \t\r\n.*>/\\")
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
	// BadPayloads counts inbound payloads that did not decode (or were of
	// another wire version).
	BadPayloads uint64
	// Forged counts inbound payloads dropped by a node with a Key because
	// they were unsigned or their HMAC did not verify, including node API
	// requests and replies.
	Forged uint64
	// Invalid counts inbound payloads that decoded but broke the limits
	// client input has (data not JSON or too large, an id that is not the
	// origin node's, names too long, too many attachments...).
	Invalid uint64
	// Resyncs counts snapshot requests sent to peers.
	Resyncs uint64
	// RemoteNodes is the number of live peers; RemoteSessions the
	// sessions they hold.
	RemoteNodes, RemoteSessions int
	// Subscriptions is the number of room subjects subscribed (rooms with
	// local members).
	Subscriptions int

	// Sequencing says room messages go through the JetStream stream (see
	// Config.History); the History* counters stay 0 otherwise.
	Sequencing bool
	// HistoryPublished counts room messages handed to JetStream (their
	// acknowledgements come later; those that fail count in
	// HistoryFailed too).
	HistoryPublished uint64
	// HistoryFailed counts room messages JetStream did not take (no
	// stream, NATS down, no acknowledgement in time): each was delivered
	// without an offset instead, through the core room subjects.
	HistoryFailed uint64
	// HistoryDropped counts room messages lost on this node: the queue to
	// the JetStream publisher, or the one of failed publishes, was full.
	HistoryDropped uint64
	// HistoryReceived counts messages read from the stream (the replay at
	// start included).
	HistoryReceived uint64
	// Unsequenced counts room messages this node delivered without an
	// offset (its own failed publishes and those of peers).
	Unsequenced uint64
	// HistoryMissing counts stream sequence numbers this node never
	// delivered: deleted before it read them, or not valid payloads.
	HistoryMissing uint64
	// HistoryOffset is the last stream sequence this node has delivered
	// or loaded.
	HistoryOffset uint64
	// RemoteKept counts sessions of other nodes kept for recovery here
	// (their recoverable close, their node's death or goodbye).
	RemoteKept uint64
}
