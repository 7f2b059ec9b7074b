package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is a chat message crossing nodes: a room message (Room set) or a
// direct message (To set). Its fields mirror chat.Message, so the hub
// converts without copying bytes.
type Message struct {
	Room []byte // room name; nil for a direct message
	To   []byte // target connection id of a direct message
	From string // sender's connection id
	Nick string // sender's nickname at the time of sending
	User string // sender's authenticated user id, "" if anonymous
	Data []byte // the sender's raw JSON, byte for byte
	TS   int64  // acceptance time on the sending node, Unix milliseconds
	// Attachments are Socket.IO binary payloads that Data refers to.
	Attachments [][]byte
	// Origin is the sending node's tag (inbound messages only).
	Origin string
	// Event names the event of a server API message (see chat.Message).
	Event string
	// EventArgs says Data is the argument array of event Event (a
	// backend's emit).
	EventArgs bool
	// Offset is the message's stream sequence (HistoryHandler.Sequenced);
	// 0 for a message without one.
	Offset uint64
	// Except is a connection the message is not for (chat.Message.Except):
	// a server message (an emit with except_self) only.
	Except string
}

// Presence tells local members that a remote member joined or left a room
// with local members.
type Presence struct {
	Room           []byte
	Join           bool // false: the member left
	ID, Nick, User string
	Origin         string // the member's node
	// Count is the room's cluster-wide member count after the change: the
	// local members this node's Local* calls reported plus the remote ones
	// in the replica.
	Count int
}

// Handler receives what peers send. A Handler that is also a
// HistoryHandler takes part in the cluster-wide history and in recovery
// across nodes (history.go). Its methods are called on the
// dispatcher goroutine, one at a time and never concurrently with
// themselves, in the order NATS delivered the messages. They must not block
// for long: the dispatcher serves every room. Every slice and string in the
// argument aliases the received payload and is valid only until the method
// returns; the argument itself is reused.
type Handler interface {
	// RoomMessage delivers m to every local member of m.Room: the sender is
	// remote, so there is nobody to skip.
	RoomMessage(m *Message)
	// Direct delivers m to the local connection m.To, if it still exists.
	Direct(m *Message)
	// User delivers m to every local connection of user m.To.
	User(m *Message)
	// All delivers m to every local connection.
	All(m *Message)
	// Presence tells the local members of p.Room about a remote join or
	// leave, including leaves of the members of a node that died.
	Presence(p *Presence)
}

// Cluster connects one gateway node to its peers over NATS. Methods are
// safe for concurrent use; the Local* and Publish* methods never block and
// may be called from event loops, and so may the replica reads (Remote*,
// NodeOf).
type Cluster struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	nc    *nats.Conn
	epoch uint64
	sign  *signer // HMAC of every payload (Config.Key), or none

	// Subjects.
	stateSubj, hbSubj, nodeSubj, syncSubj, roomPrefix, nodePrefix, syncPrefix string

	out      chan outMsg   // event loops → writer
	interest chan struct{} // room interest changed (cap 1)
	hbNow    chan struct{} // send a heartbeat now (cap 1)
	in       chan *nats.Msg
	syncReq  chan syncReq
	syncRes  chan syncResult
	done     chan struct{}
	wg       sync.WaitGroup
	closed   atomic.Bool
	noBye    bool // tests: die without a goodbye

	local local
	rep   replica

	// The cluster-wide history (history.go). hh is h as a HistoryHandler
	// (or nil); the rest is set by New only when Sequencing.
	hh         HistoryHandler
	keepRemote bool // remote drops are kept for recovery (KeepRemote)
	histPrefix string
	js         jetstream.JetStream
	iter       jetstream.MessagesContext
	hlog       *sharedLog
	seqOut     chan outMsg    // event loops → stream publisher
	seqIn      chan streamMsg // stream reader → dispatcher
	unseq      chan failedMsg // failed publishes → dispatcher
	replayDone chan struct{}  // closed when the replay at start is done
	replayLast uint64         // the stream's last sequence at start

	// Owned by the dispatcher goroutine.
	peers     map[string]*peer
	msg       Message
	pres      Presence
	scratch   wireMsg
	seqLast   uint64 // the last stream sequence read
	replaying bool   // loading what the stream held at start
	holeUntil int64  // monotonic: stream messages raise the floor until then
	recent    recentSet
	own       ownRing

	// Owned by the stream publisher goroutine.
	histSubjs map[string]string // room → subject

	// Owned by the writer goroutine: Stats.HistoryDropped when last
	// reported.
	histDroppedSeen uint64

	// Owned by the writer goroutine.
	subs        map[string]*nats.Subscription // room → subscription
	sysSubs     []*nats.Subscription
	roomSubjs   map[string]string // room → subject
	nodeSubjs   map[string]string // node tag → subject
	droppedBase uint64

	stats struct {
		reconnects, published, undelivered, stateLost, received atomic.Uint64
		dropped, bad, resyncs, forged, invalid                  atomic.Uint64
		nodes, sessions, subs                                   atomic.Int64
		histPublished, histFailed, histDropped, histReceived    atomic.Uint64
		unsequenced, histMissing, histOffset, remoteKept        atomic.Uint64
	}
	lastWarn atomic.Int64             // unix nanos of the last rate-limited warning
	nodes    atomic.Pointer[[]string] // live peers' tags (Nodes)
}

// local is this node's own membership, as the hub reports it.
type local struct {
	mu       sync.Mutex
	seq      uint64 // last state event's sequence number
	sessions map[string]*localSession
	rooms    map[string]int      // room → local members
	dirty    map[string]struct{} // rooms whose interest may have changed
}

type localSession struct {
	nick, user string
	rooms      []string
}

// outMsg is one payload for the writer. buf comes from bufPool.
type outMsg struct {
	buf     *[]byte
	subj    string // fixed subject (state, heartbeat), or ""
	room    []byte // room message: aliases *buf
	node    string // direct message: the target node
	counted bool   // a room or direct message (Undelivered), else state
	// flushed, when set, makes the message a barrier (Flush): the writer
	// closes it once everything queued before it reached the NATS server.
	flushed chan struct{}
}

type syncReq struct {
	tag   string
	epoch uint64
}

type syncResult struct {
	tag        string
	epoch, seq uint64
	sessions   []snapSession
	err        error
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func acquireBuf() *[]byte { return bufPool.Get().(*[]byte) }

func releaseBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// New starts cluster mode: it connects to NATS and starts the writer,
// dispatcher and sync goroutines. NATS need not be reachable: the
// connection keeps retrying in the background and New fails only on a bad
// Config. h receives what peers send.
func New(cfg Config, h Handler) (*Cluster, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var e [8]byte
	_, _ = rand.Read(e[:])
	p := cfg.Prefix + "."
	c := &Cluster{
		cfg:        cfg,
		h:          h,
		log:        cfg.Logger.With("node", cfg.Node),
		epoch:      binary.LittleEndian.Uint64(e[:]) | 1, // never 0
		sign:       newSigner(cfg.Key),
		stateSubj:  p + "state",
		hbSubj:     p + "hb",
		roomPrefix: p + "room.",
		histPrefix: p + "hist.",
		nodePrefix: p + "node.",
		syncPrefix: p + "sync.",
		out:        make(chan outMsg, cfg.OutQueue),
		interest:   make(chan struct{}, 1),
		hbNow:      make(chan struct{}, 1),
		in:         make(chan *nats.Msg, cfg.InQueue),
		syncReq:    make(chan syncReq, 64),
		syncRes:    make(chan syncResult, 8),
		done:       make(chan struct{}),
		peers:      make(map[string]*peer),
		subs:       make(map[string]*nats.Subscription),
		roomSubjs:  make(map[string]string),
		nodeSubjs:  make(map[string]string),
		histSubjs:  make(map[string]string),
		seqOut:     make(chan outMsg, cfg.SeqQueue),
		seqIn:      make(chan streamMsg, cfg.InQueue),
		unseq:      make(chan failedMsg, cfg.SeqQueue),
	}
	c.hh, _ = h.(HistoryHandler)
	c.nodeSubj = c.nodePrefix + cfg.Node
	c.syncSubj = c.syncPrefix + cfg.Node
	c.local.sessions = make(map[string]*localSession)
	c.local.rooms = make(map[string]int)
	c.local.dirty = make(map[string]struct{})
	c.rep.init()

	authOpts, err := natsAuthOptions(&c.cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	nc, err := nats.Connect(cfg.URL, append(authOpts,
		nats.Name("chatgate-"+cfg.Node),
		// The sender delivers to its own members itself: echoes would
		// deliver twice.
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/2, cfg.ReconnectWait/2),
		// No reconnect buffer: a publish during an outage fails at once
		// and is counted, instead of being held in memory and sent late
		// (or lost uncounted when the buffer overflows).
		nats.ReconnectBufSize(-1),
		// Notice a silent broker within a few TTLs, not the default minutes.
		nats.PingInterval(cfg.TTL),
		nats.MaxPingsOutstanding(2),
		nats.FlusherTimeout(2*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.Warn("cluster: NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.stats.reconnects.Add(1)
			c.log.Info("cluster: NATS reconnected", "url", nc.ConnectedUrlRedacted())
			// Tell peers at once so they resynchronise what we published
			// into the outage.
			select {
			case c.hbNow <- struct{}{}:
			default:
			}
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.log.Info("cluster: NATS connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.warn("cluster: NATS async error", "err", err)
		}),
		// Refused credentials are retried like an unreachable server (the
		// server's configuration may change), and logged.
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			c.warn("cluster: NATS connection attempt failed", "err", err)
		}),
	)...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	if c.hh != nil && cfg.History.Size > 0 {
		c.setupHistory()
	}
	// Offsets of a history kept per node mean nothing on another node:
	// remote drops are kept only when the history is shared, or off.
	c.keepRemote = c.hh != nil && (c.hlog != nil || cfg.History.Size == 0)
	subjs := []string{c.stateSubj, c.hbSubj, c.nodeSubj, c.syncSubj}
	if c.hlog == nil {
		// Nodes that do use the stream publish room messages only
		// there: read them as plain NATS messages (a cluster whose
		// nodes disagree still delivers both ways).
		subjs = append(subjs, c.histPrefix+">")
	}
	for _, subj := range subjs {
		s, err := nc.ChanSubscribe(subj, c.in)
		if err != nil {
			c.abort()
			return nil, err
		}
		c.sysSubs = append(c.sysSubs, s)
	}
	c.wg.Add(3)
	go c.writeLoop()
	go c.dispatchLoop()
	go c.syncLoop()
	if c.hlog != nil {
		c.wg.Add(3)
		go c.seqLoop()
		go c.consumeLoop()
		go c.sweepLoop()
		c.awaitReplay()
	}
	return c, nil
}

// abort undoes New before its goroutines started.
func (c *Cluster) abort() {
	if c.iter != nil {
		c.iter.Stop()
	}
	c.nc.Close()
}

// Node returns this node's tag.
func (c *Cluster) Node() string { return c.cfg.Node }

// Close stops the goroutines, tells peers this node is leaving (they drop
// its members at once) and closes the NATS connection. Later calls to any
// method are harmless; publishes are counted as undelivered.
func (c *Cluster) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if c.iter != nil {
		c.iter.Stop() // the stream reader's Next returns
	}
	close(c.done)
	c.wg.Wait()
	if c.js != nil {
		// Give the stream's acknowledgements of the last messages a
		// moment: they are counted as failed otherwise.
		t := time.NewTimer(time.Second)
		select {
		case <-c.js.PublishAsyncComplete():
		case <-t.C:
		}
		t.Stop()
	}
	if !c.noBye && c.nc.IsConnected() {
		c.local.mu.Lock()
		seq := c.local.seq
		c.local.mu.Unlock()
		_ = c.nc.Publish(c.hbSubj, c.sign.seal(appendHB(nil, c.cfg.Node, c.epoch, seq, c.hbFlags()|hbBye)))
		_ = c.nc.FlushTimeout(time.Second)
	}
	c.nc.Close()
	return nil
}

// hbFlags are the flags of this node's heartbeats.
func (c *Cluster) hbFlags() uint8 {
	if c.hlog != nil {
		return hbSequencing
	}
	return 0
}

// warn logs at most one warning per 10 s: the conditions it reports
// (slow consumer, bad payloads) tend to repeat per message.
func (c *Cluster) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := c.lastWarn.Load()
	if now-last < int64(10*time.Second) || !c.lastWarn.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn(msg, args...)
}

// Stats returns the current counters. Safe from any goroutine.
func (c *Cluster) Stats() Stats {
	return Stats{
		Connected:      c.nc.IsConnected(),
		Reconnects:     c.stats.reconnects.Load(),
		Published:      c.stats.published.Load(),
		Undelivered:    c.stats.undelivered.Load(),
		StateLost:      c.stats.stateLost.Load(),
		Received:       c.stats.received.Load(),
		Dropped:        c.stats.dropped.Load(),
		BadPayloads:    c.stats.bad.Load(),
		Forged:         c.stats.forged.Load(),
		Invalid:        c.stats.invalid.Load(),
		Resyncs:        c.stats.resyncs.Load(),
		RemoteNodes:    int(c.stats.nodes.Load()),
		RemoteSessions: int(c.stats.sessions.Load()),
		Subscriptions:  int(c.stats.subs.Load()),

		Sequencing:       c.hlog != nil,
		HistoryPublished: c.stats.histPublished.Load(),
		HistoryFailed:    c.stats.histFailed.Load(),
		HistoryDropped:   c.stats.histDropped.Load(),
		HistoryReceived:  c.stats.histReceived.Load(),
		Unsequenced:      c.stats.unsequenced.Load(),
		HistoryMissing:   c.stats.histMissing.Load(),
		HistoryOffset:    c.stats.histOffset.Load(),
		RemoteKept:       c.stats.remoteKept.Load(),
	}
}

// ---- Publishing (event loops) ----

// enqueue hands o to the writer without blocking. It reports false, and
// counts the loss, when the queue is full or the cluster closed.
func (c *Cluster) enqueue(o outMsg) bool {
	if !c.closed.Load() {
		select {
		case c.out <- o:
			return true
		default:
		}
	}
	if o.counted {
		c.stats.undelivered.Add(1)
	} else {
		c.stats.stateLost.Add(1)
	}
	releaseBuf(o.buf)
	return false
}

// errFlush is returned by Flush when the barrier cannot be queued or does
// not pass in time.
var errFlush = errors.New("cluster: flush did not complete")

// Flush waits, at most timeout, until everything queued before it (state
// events such as LocalClosed, messages) has been published and the NATS
// server has seen it (a round trip). A draining node calls it between
// closing its sessions and telling their clients, so that the other nodes
// hear of the closes first. Safe from any goroutine but the writer's.
func (c *Cluster) Flush(timeout time.Duration) error {
	if c.closed.Load() {
		return errFlush
	}
	done := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case c.out <- outMsg{flushed: done}:
	case <-t.C:
		return errFlush
	}
	select {
	case <-done:
		return nil
	case <-t.C:
		return errFlush
	}
}

// PublishRoom sends m to the room's members on other nodes. It never
// blocks: m is encoded into a pooled buffer (m may be reused when it
// returns) and queued for the writer goroutine. It reports whether the
// message was queued; a message that was not, or that the writer cannot
// hand to NATS, is counted in Stats.Undelivered. Call it for every
// accepted room message, even when the room has no other local member.
func (c *Cluster) PublishRoom(m *Message) bool {
	if len(m.Room) == 0 {
		return false
	}
	b := acquireBuf()
	*b = appendMessage(*b, kindRoom, c.cfg.Node, m.Room, m)
	// The room is the first field after the header: alias it for the
	// writer's subject lookup instead of copying it.
	hdr := 2 + uvarintLen(uint64(len(c.cfg.Node))) + len(c.cfg.Node) + uvarintLen(uint64(len(m.Room)))
	return c.enqueue(outMsg{buf: b, room: (*b)[hdr : hdr+len(m.Room)], counted: true})
}

// PublishDirect sends m to connection m.To on node (see NodeOf). Like
// PublishRoom it never blocks and counts what it cannot deliver.
func (c *Cluster) PublishDirect(node string, m *Message) bool {
	if !validToken(node) || node == c.cfg.Node {
		return false
	}
	b := acquireBuf()
	*b = appendMessage(*b, kindDirect, c.cfg.Node, m.To, m)
	return c.enqueue(outMsg{buf: b, node: node, counted: true})
}

// PublishUser sends m to the connections of user m.To on the other nodes
// that have any (per the replica). Like PublishRoom it never blocks and
// counts what it cannot deliver. It reports how many nodes it was sent to.
func (c *Cluster) PublishUser(m *Message) int {
	nodes := c.rep.userNodes(string(m.To), nil)
	for _, node := range nodes {
		b := acquireBuf()
		*b = appendMessage(*b, kindUser, c.cfg.Node, m.To, m)
		c.enqueue(outMsg{buf: b, node: node, counted: true})
	}
	return len(nodes)
}

// PublishAll sends m to every connection on the other live nodes. Like
// PublishRoom it never blocks and counts what it cannot deliver.
func (c *Cluster) PublishAll(m *Message) {
	for _, node := range c.Nodes() {
		b := acquireBuf()
		*b = appendMessage(*b, kindAll, c.cfg.Node, nil, m)
		c.enqueue(outMsg{buf: b, node: node, counted: true})
	}
}

// RemoteUserCount is the number of connections of user on other nodes.
func (c *Cluster) RemoteUserCount(user string) int { return c.rep.userCount(user) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// ---- Local membership (event loops) ----

// emitLocked publishes one state event. c.local.mu must be held: it orders
// sequence numbers and queue positions alike. A lost event leaves a gap
// that peers notice and repair with a snapshot.
func (c *Cluster) emitLocked(o op, id, nick, user, room string) {
	c.local.seq++
	b := acquireBuf()
	*b = appendState(*b, c.cfg.Node, c.epoch, c.local.seq, o, id, nick, user, room)
	c.enqueue(outMsg{buf: b, subj: c.stateSubj})
}

func (c *Cluster) sessionLocked(id string) *localSession {
	s := c.local.sessions[id]
	if s == nil {
		s = &localSession{}
		c.local.sessions[id] = s
	}
	return s
}

// markDirtyLocked records that room's interest changed and wakes the
// writer. It runs under c.local.mu and before the state event is queued, so
// the writer, on taking that event, finds the signal and subscribes first.
func (c *Cluster) markDirtyLocked(room string) {
	c.local.dirty[room] = struct{}{}
	select {
	case c.interest <- struct{}{}:
	default:
	}
}

// LocalOpened announces a new local session. Call it from Hub.Open (nick
// and user as known then). Never blocks.
func (c *Cluster) LocalOpened(id, nick, user string) {
	c.local.mu.Lock()
	s := c.sessionLocked(id)
	s.nick, s.user = nick, user
	c.emitLocked(opOpen, id, nick, user, "")
	c.local.mu.Unlock()
}

// LocalNick announces a local session's new nickname. Never blocks.
func (c *Cluster) LocalNick(id, nick string) {
	c.local.mu.Lock()
	s := c.sessionLocked(id)
	s.nick = nick
	c.emitLocked(opNick, id, nick, "", "")
	c.local.mu.Unlock()
}

// LocalJoined announces that local session id joined room. The room's first
// local member subscribes this node to the room's subject. Never blocks:
// the subscription is made by the writer goroutine. Joining twice is
// harmless.
func (c *Cluster) LocalJoined(id, room string) {
	c.local.mu.Lock()
	s := c.sessionLocked(id)
	for _, r := range s.rooms {
		if r == room {
			c.local.mu.Unlock()
			return
		}
	}
	s.rooms = append(s.rooms, room)
	c.local.rooms[room]++
	if c.local.rooms[room] == 1 {
		c.markDirtyLocked(room)
	}
	c.emitLocked(opJoin, id, s.nick, s.user, room)
	c.local.mu.Unlock()
}

// LocalLeft announces that local session id left room; the room's last
// local member unsubscribes it. Never blocks; leaving a room the session
// is not in is harmless.
func (c *Cluster) LocalLeft(id, room string) {
	c.local.mu.Lock()
	c.leaveLocked(id, room, true)
	c.local.mu.Unlock()
}

func (c *Cluster) leaveLocked(id, room string, emit bool) {
	s := c.local.sessions[id]
	if s == nil {
		return
	}
	i := -1
	for j, r := range s.rooms {
		if r == room {
			i = j
			break
		}
	}
	if i < 0 {
		return
	}
	s.rooms = append(s.rooms[:i], s.rooms[i+1:]...)
	n := c.local.rooms[room] - 1
	if n <= 0 {
		delete(c.local.rooms, room)
		c.markDirtyLocked(room)
	} else {
		c.local.rooms[room] = n
	}
	if emit {
		c.emitLocked(opLeave, id, s.nick, s.user, room)
	}
}

// LocalClosed announces that local session id closed: it leaves all its
// rooms (one event for all of them). recoverable says its client may
// resume it (a drop, not a close the client or the server decided): peers
// then keep it for recovery (HistoryHandler.KeepRemote). Never blocks.
func (c *Cluster) LocalClosed(id string, recoverable bool) {
	c.local.mu.Lock()
	s := c.local.sessions[id]
	if s == nil {
		c.local.mu.Unlock()
		return
	}
	for len(s.rooms) > 0 {
		c.leaveLocked(id, s.rooms[len(s.rooms)-1], false)
	}
	delete(c.local.sessions, id)
	var flags byte
	if recoverable {
		flags = closeRecoverable
	}
	c.local.seq++
	b := acquireBuf()
	*b = appendClose(*b, c.cfg.Node, c.epoch, c.local.seq, id, s.nick, s.user, flags)
	c.enqueue(outMsg{buf: b, subj: c.stateSubj})
	c.local.mu.Unlock()
}

func (c *Cluster) localCount(room string) int {
	c.local.mu.Lock()
	n := c.local.rooms[room]
	c.local.mu.Unlock()
	return n
}

// ---- Replica reads (any goroutine) ----

// RemoteCount returns the number of members room has on other nodes. One
// shard read-lock, no allocation.
func (c *Cluster) RemoteCount(room []byte) int { return c.rep.count(room) }

// RemoteMembers appends room's members on other nodes to dst, in no
// particular order, and returns it.
func (c *Cluster) RemoteMembers(room []byte, dst []Member) []Member {
	return c.rep.members(room, dst)
}

// RemoteRooms adds every room with members on other nodes to dst, with
// their remote member counts (added to what dst holds).
func (c *Cluster) RemoteRooms(dst map[string]int) { c.rep.list(dst) }

// NodeOf returns the node that owns connection id, if the replica knows
// the connection.
func (c *Cluster) NodeOf(id []byte) (node string, ok bool) { return c.rep.owner(id) }

// UserNodes returns the other nodes with connections of user.
func (c *Cluster) UserNodes(user string) []string { return c.rep.userNodes(user, nil) }
