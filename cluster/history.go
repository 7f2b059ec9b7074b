package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster-wide room history (Config.History; docs/cluster.md, "History
// and recovery across nodes"). One JetStream stream is the room bus: a node
// hands each room message to the stream (SequenceRoom) instead of
// delivering it, and every node reads the whole stream in order with one
// ordered consumer and delivers each message to its own members with the
// stream sequence as its offset (HistoryHandler.Sequenced). Every node thus
// has the same offsets and the same epoch (derived from the stream's
// creation), and a client can resume on any node.
//
// Goroutines, besides those of New:
//   - the stream publisher (seqLoop) takes what the event loops queued and
//     publishes it with JetStream's asynchronous publish; acknowledgements
//     are checked by nats.go, and failures come back through
//     onPublishError;
//   - the stream reader (consumeLoop) waits on the ordered consumer and
//     hands each message to the dispatcher, which alone delivers, records
//     and keeps the floors below;
//   - the sweeper drops expired messages of idle rooms from the node's log.
//
// Failures. A room message JetStream does not take (no stream, NATS down,
// no acknowledgement within AckTimeout) is delivered without an offset:
// locally, and to the peers over the core room subject. It is not in the
// history, so the node's log raises its floor (sharedLog): no position
// from before it can be resumed on that node as if nothing was missing.

// HistoryHandler is a Handler that takes part in the cluster-wide room
// history and in recovery across nodes; HubHandler implements it. Its
// methods run on the dispatcher goroutine, like Handler's, except
// UseHistory.
type HistoryHandler interface {
	Handler
	// UseHistory installs log as the node's room history. New calls it
	// once, on its caller's goroutine and before any goroutine may call
	// Sequenced, when the stream is in use (Cluster.Sequencing).
	UseHistory(log chat.History)
	// Sequenced delivers room message m to the local members of m.Room
	// and records it in the log under offset m.Offset; m.Offset 0 means
	// JetStream did not take it: deliver, do not record. local says m was
	// sent from this node (its sender, m.From, is skipped). With a
	// non-zero offset the strings of m are the handler's to keep (the log
	// keeps them); its byte slices are valid only during the call.
	Sequenced(m *Message, local bool)
	// KeepRemote keeps for recovery a session of another node that
	// dropped: its close was recoverable, or its node died or left. rooms
	// is the handler's to keep.
	KeepRemote(id, user, nick string, rooms []string)
	// ForgetRemote drops the recovery record of id, if any: the session
	// is open again, on some node.
	ForgetRemote(id string)
}

// streamMsg is one message read from the stream, for the dispatcher.
type streamMsg struct {
	data    []byte // the payload as published (signed with Config.Key)
	seq     uint64 // the stream sequence: the message's offset
	pending uint64 // messages after it in the stream when it was read
}

// failedMsg is a room message JetStream did not take, for the dispatcher.
type failedMsg struct {
	data []byte
	// ambiguous: the stream may have stored it after all (the
	// acknowledgement timed out, or NATS disconnected meanwhile).
	ambiguous bool
}

// maxRecent bounds the payload hashes the dispatcher remembers to keep a
// message from being delivered twice (recentSet, ownRing).
const maxRecent = 4096

// sharedLog is this node's copy of the cluster's room history: a
// history.Memory holding what the node read from the stream, under the
// stream's sequence numbers, and floors below which it refuses a position
// (chat.ErrUnrecoverable) because it may not hold the whole gap after it.
//
// A room's retained messages in the stream are always the newest of that
// room (JetStream's limits drop the oldest first), so a room first met in
// the replay at start lacks at most messages with sequences below the
// highest sequence the node never saw before meeting it. Sequences missing
// later (deleted before the node read them, invalid payloads) and messages
// delivered without an offset could belong to any room and raise the
// log-wide floor.
type sharedLog struct {
	*history.Memory

	// Guarded by the Memory's lock.
	floor   uint64            // positions below it are refused in every room
	missing uint64            // the highest stream sequence the node never loaded
	first   map[string]uint64 // rooms met in the replay: missing when first met
}

// floorOf returns room's floor. Lock held.
func (l *sharedLog) floorOf(room []byte) uint64 {
	f, ok := l.first[string(room)]
	if !ok {
		// A room never met in the replay: any sequence never loaded
		// may have been one of its messages.
		f = l.missing
	}
	return max(f, l.floor)
}

// SinceLocked implements chat.History: the Memory's answer, or
// chat.ErrUnrecoverable when since is below room's floor. Lock held.
func (l *sharedLog) SinceLocked(room []byte, since chat.Position, limit int, dst []chat.Message) ([]chat.Message, chat.Position, *chat.Error) {
	n := len(dst)
	msgs, pos, err := l.Memory.SinceLocked(room, since, limit, dst)
	if err != nil || since.Epoch == "" {
		return msgs, pos, err
	}
	if since.Offset < l.floorOf(room) {
		return msgs[:n], pos, chat.ErrUnrecoverable
	}
	return msgs, pos, nil
}

// raise lifts the log-wide floor to f. Lock held.
func (l *sharedLog) raise(f uint64) {
	if f > l.floor {
		l.floor = f
		l.Changed() // merged recovery reads must not outlive the old floor
	}
}

// streamEpoch derives the log's epoch from the stream's name and creation
// time: the same on every node, and new when the stream is recreated (its
// sequence numbers start again).
func streamEpoch(info *jetstream.StreamInfo) string {
	h := sha256.New()
	h.Write([]byte(info.Config.Name))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(info.Created.UnixNano(), 10)))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// streamConfig is the stream of Config.History: one subject per room
// under <prefix>.hist., whose limits are the history's, but for
// Config.StreamSlack more messages per room (a node's log trims them).
func (c *Cluster) streamConfig() jetstream.StreamConfig {
	h := c.cfg.History
	maxBytes := h.Memory
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:              c.cfg.Stream,
		Description:       "chatgate room history",
		Subjects:          []string{c.histPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: int64(h.Size + c.cfg.StreamSlack),
		MaxAge:            h.TTL,
		MaxBytes:          maxBytes,
		MaxMsgSize:        -1,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		Replicas:          c.cfg.HistoryReplicas,
	}
}

// setupHistory creates or updates the stream and opens the ordered
// consumer that reads it from its first message, then gives the handler
// the node's log. Any failure leaves the node without a shared history
// (c.log nil), logged: the caller keeps a history of its own.
func (c *Cluster) setupHistory() {
	if !c.nc.IsConnected() {
		c.log.Warn("cluster: NATS unreachable at start: room history is kept per node, and clients moving between nodes are not recovered")
		return
	}
	js, err := jetstream.New(c.nc,
		jetstream.WithPublishAsyncErrHandler(c.onPublishError),
		jetstream.WithPublishAsyncMaxPending(c.cfg.MaxAckPending),
		jetstream.WithPublishAsyncTimeout(c.cfg.AckTimeout),
		jetstream.WithDefaultTimeout(setupTimeout))
	if err != nil {
		c.log.Error("cluster: JetStream", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	st, err := js.CreateOrUpdateStream(ctx, c.streamConfig())
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			c.log.Info("cluster: the NATS server has no JetStream: room history is kept per node, and clients moving between nodes are not recovered")
		} else {
			c.log.Error("cluster: cannot create or update the history stream: room history is kept per node", "stream", c.cfg.Stream, "err", err)
		}
		return
	}
	info := st.CachedInfo()
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{c.histPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err == nil {
		c.iter, err = cons.Messages()
	}
	if err != nil {
		c.log.Error("cluster: cannot read the history stream: room history is kept per node", "stream", c.cfg.Stream, "err", err)
		return
	}
	hc := c.cfg.History
	hc.Epoch, hc.Now = streamEpoch(info), nil
	c.hlog = &sharedLog{Memory: history.NewMemory(hc), first: make(map[string]uint64)}
	c.js = js
	c.replayLast = info.State.LastSeq
	c.replaying = info.State.Msgs > 0
	c.replayDone = make(chan struct{})
	if !c.replaying {
		close(c.replayDone)
	}
	c.hh.UseHistory(c.hlog)
	c.log.Info("cluster: room history in JetStream", "stream", c.cfg.Stream, "messages", info.State.Msgs,
		"first", info.State.FirstSeq, "last", info.State.LastSeq, "epoch", hc.Epoch)
}

// awaitReplay waits until the dispatcher has loaded what the stream held
// at start, bounded by Config.ReplayTimeout, then raises the floor to the
// stream's first sequence: messages deleted while it read may have left
// holes in rooms it had met. On timeout the node serves with the floor at
// the stream's last sequence at start: nothing before can be resumed here.
func (c *Cluster) awaitReplay() {
	t := time.NewTimer(c.cfg.ReplayTimeout)
	defer t.Stop()
	select {
	case <-c.replayDone:
	case <-t.C:
		c.log.Warn("cluster: the history stream did not load in time: older positions are not recoverable on this node",
			"timeout", c.cfg.ReplayTimeout, "last", c.replayLast)
		c.hlog.Lock()
		c.hlog.raise(c.replayLast)
		c.hlog.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	first := c.replayLast + 1 // if unknown: all of it may be gone
	if st, err := c.js.Stream(ctx, c.cfg.Stream); err != nil {
		c.log.Warn("cluster: history stream info", "err", err)
	} else {
		first = st.CachedInfo().State.FirstSeq
	}
	if first > 0 {
		c.hlog.Lock()
		c.hlog.raise(first - 1)
		c.hlog.Unlock()
	}
}

// Sequencing reports whether room messages go through the JetStream
// stream: it was set up at start (Config.History). Any goroutine.
func (c *Cluster) Sequencing() bool { return c.hlog != nil }

// SequenceRoom hands room message m to the stream; every node, this one
// included, delivers it from there (HistoryHandler.Sequenced). It never
// blocks: m is encoded into a pooled buffer (m may be reused when it
// returns) and queued for the stream publisher. It reports whether the
// message was queued; a message that finds the queue full is lost and
// counted (Stats.HistoryDropped). Safe from any goroutine; without
// Sequencing it does nothing and reports false.
func (c *Cluster) SequenceRoom(m *Message) bool {
	if c.hlog == nil || len(m.Room) == 0 {
		return false
	}
	b := acquireBuf()
	*b = appendMessage(*b, kindRoom, c.cfg.Node, m.Room, m)
	hdr := 2 + uvarintLen(uint64(len(c.cfg.Node))) + len(c.cfg.Node) + uvarintLen(uint64(len(m.Room)))
	if !c.closed.Load() {
		select {
		case c.seqOut <- outMsg{buf: b, room: (*b)[hdr : hdr+len(m.Room)]}:
			return true
		default:
		}
	}
	c.stats.histDropped.Add(1)
	releaseBuf(b)
	return false
}

// ---- Stream publisher goroutine ----

// seqLoop publishes queued room messages to the stream. Only it calls
// PublishMsgAsync, which may wait (up to 200 ms per message) while
// Config.MaxAckPending acknowledgements are outstanding: that slows this
// goroutine and fills the queue, never an event loop.
func (c *Cluster) seqLoop() {
	defer c.wg.Done()
	for {
		select {
		case o := <-c.seqOut:
			c.seqPublish(o)
		case <-c.done:
			for {
				select {
				case o := <-c.seqOut:
					c.stats.histDropped.Add(1)
					releaseBuf(o.buf)
				default:
					return
				}
			}
		}
	}
}

func (c *Cluster) seqPublish(o outMsg) {
	subj, ok := c.histSubjs[string(o.room)]
	if !ok {
		if len(c.histSubjs) >= 65536 {
			clear(c.histSubjs) // a cache, bounded
		}
		subj = c.histPrefix + roomToken(o.room)
		c.histSubjs[string(o.room)] = subj
	}
	*o.buf = c.sign.seal(*o.buf)
	// nats.go keeps the payload until the acknowledgement (for retries
	// and the error handler): it gets a copy, and the pooled buffer goes
	// back at once.
	data := bytes.Clone(*o.buf)
	releaseBuf(o.buf)
	c.stats.histPublished.Add(1)
	if _, err := c.js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data}); err != nil {
		c.publishFailed(data, false, err)
	}
}

// onPublishError is nats.go's report of a publish JetStream did not
// acknowledge. It runs on a nats.go goroutine, sometimes with the
// publisher's lock held, so it only queues the message for the dispatcher.
func (c *Cluster) onPublishError(_ jetstream.JetStream, m *nats.Msg, err error) {
	ambiguous := errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrDisconnected)
	c.publishFailed(m.Data, ambiguous, err)
}

// publishFailed hands a room message JetStream did not take to the
// dispatcher, which delivers it without an offset. Never blocks.
func (c *Cluster) publishFailed(data []byte, ambiguous bool, err error) {
	c.stats.histFailed.Add(1)
	c.warn("cluster: JetStream did not take a room message: delivered without an offset", "err", err)
	select {
	case c.unseq <- failedMsg{data: data, ambiguous: ambiguous}:
	default:
		c.stats.histDropped.Add(1)
	}
}

// ---- Stream reader goroutine ----

// consumeLoop reads the stream with the ordered consumer (which recreates
// itself after a gap, a NATS reconnect or a missed heartbeat, from the
// last sequence read) and hands each message to the dispatcher. A full
// dispatcher queue makes it wait: the consumer is pull-based, so nothing
// is lost, the server holds the rest.
func (c *Cluster) consumeLoop() {
	defer c.wg.Done()
	for {
		m, err := c.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || c.closed.Load() {
				return
			}
			c.warn("cluster: reading the history stream", "err", err)
			t := time.NewTimer(c.cfg.ReconnectWait)
			select {
			case <-c.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			c.stats.bad.Add(1)
			continue
		}
		select {
		case c.seqIn <- streamMsg{data: m.Data(), seq: meta.Sequence.Stream, pending: meta.NumPending}:
		case <-c.done:
			return
		}
	}
}

// sweepLoop drops the expired messages of idle rooms from the node's log.
func (c *Cluster) sweepLoop() {
	defer c.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.hlog.Sweep()
		case <-c.done:
			return
		}
	}
}

// ---- Dispatcher: stream messages, failed publishes ----

// fromStream delivers or records one message of the stream. During the
// replay at start (sequences up to the stream's last then) it only
// records: the node serves no client yet, and a message from before the
// start must not reach a client as if it were new. A message this node
// already delivered without an offset (its acknowledgement was late) is
// recorded, not delivered again.
func (c *Cluster) fromStream(sm streamMsg) {
	c.stats.histReceived.Add(1)
	l := c.hlog
	if sm.seq <= c.seqLast {
		return // already read (the consumer was recreated)
	}
	w := &c.scratch
	ok := c.receive(sm.data, c.histPrefix, w)
	if ok && w.kind != kindRoom {
		c.stats.bad.Add(1)
		ok = false
	}
	replay := c.replaying
	l.Lock()
	if sm.seq > c.seqLast+1 {
		c.stats.histMissing.Add(sm.seq - c.seqLast - 1)
		l.missing = max(l.missing, sm.seq-1)
		l.Changed()
		if !replay {
			// Deleted before this node read them: they may have been
			// in any room, including one whose newer messages it has.
			l.raise(sm.seq - 1)
		}
	}
	c.seqLast = sm.seq
	c.stats.histOffset.Store(sm.seq)
	if !ok {
		// Not a message here, maybe one on other nodes (their limits
		// differ): a hole in whichever room it was.
		c.stats.histMissing.Add(1)
		l.missing = sm.seq
		l.Changed()
		l.raise(sm.seq)
		l.Unlock()
		c.endReplay(sm)
		return
	}
	if replay {
		if _, met := l.first[string(w.room)]; !met {
			l.first[string(w.room)] = l.missing
		}
	}
	if monotonic() < c.holeUntil {
		// Shortly after a message went without an offset: a client
		// may have read this one on another node before that one.
		l.raise(sm.seq + 1)
	}
	self := str(w.origin) == c.cfg.Node
	if self {
		c.own.add(fnv1a64(sm.data))
	}
	if replay || c.recent.take(sm.data) {
		cm := chat.Message{Room: w.room, From: strings.Clone(str(w.from)), Nick: strings.Clone(str(w.nick)),
			User: strings.Clone(str(w.user)), Data: w.data, TS: w.ts, Attachments: w.atts,
			Event: strings.Clone(str(w.event)), EventArgs: w.mflag&msgEventArgs != 0, Offset: sm.seq}
		l.Append(&cm)
		l.Unlock()
		c.endReplay(sm)
		return
	}
	l.Unlock()
	msg := &c.msg
	*msg = Message{Room: w.room, From: strings.Clone(str(w.from)), Nick: strings.Clone(str(w.nick)),
		User: strings.Clone(str(w.user)), Data: w.data, TS: w.ts, Attachments: w.atts,
		Origin: str(w.origin), Event: strings.Clone(str(w.event)), EventArgs: w.mflag&msgEventArgs != 0,
		Offset: sm.seq, Except: strings.Clone(str(w.except))}
	c.hh.Sequenced(msg, self)
	*msg = Message{}
}

// endReplay ends the replay at start once sm is the last message the
// stream held then, or nothing is left to read.
func (c *Cluster) endReplay(sm streamMsg) {
	if c.replaying && (sm.seq >= c.replayLast || sm.pending == 0) {
		c.replaying = false
		close(c.replayDone)
	}
}

// fellBack delivers a room message of this node that JetStream did not
// take: to the peers over the core room subject, and to the local members,
// without an offset. A message whose acknowledgement only timed out and
// that the stream did store has already been delivered from it: it is
// dropped here.
func (c *Cluster) fellBack(f failedMsg) {
	h := fnv1a64(f.data)
	if f.ambiguous && c.own.has(h) {
		return
	}
	w := &c.scratch
	if !c.receive(f.data, "fallback", w) || w.kind != kindRoom {
		return
	}
	if err := c.nc.Publish(c.roomPrefix+roomToken(w.room), f.data); err != nil {
		c.stats.undelivered.Add(1)
	}
	c.recent.add(h, monotonic()+int64(c.cfg.AckTimeout+c.cfg.TTL))
	c.unsequenced(w, true)
}

// unsequenced delivers a room message that has no offset (this node's
// failed publish, or a peer's over the core room subject) and raises the
// log's floor: a client that read up to the current position on any node
// may not have received it, and the history does not hold it. For TTL
// after it, each stream message raises the floor past itself too, since
// nodes deliver the two paths in different orders.
func (c *Cluster) unsequenced(w *wireMsg, local bool) {
	c.hlog.Lock()
	c.hlog.raise(c.seqLast + 1)
	c.hlog.Unlock()
	c.holeUntil = monotonic() + int64(c.cfg.TTL)
	c.stats.unsequenced.Add(1)
	msg := &c.msg
	*msg = Message{Room: w.room, From: str(w.from), Nick: str(w.nick), User: str(w.user), Data: w.data,
		TS: w.ts, Attachments: w.atts, Origin: str(w.origin), Event: str(w.event),
		EventArgs: w.mflag&msgEventArgs != 0, Except: str(w.except)}
	c.hh.Sequenced(msg, local)
	*msg = Message{}
}

// recentSet remembers, for a while, the hashes of payloads delivered
// without an offset, so that one the stream stored after all is recorded
// but not delivered a second time. At most maxRecent; dispatcher only. It
// is empty (and costs nothing per stream message) unless publishes failed.
type recentSet struct {
	m    map[uint64]int64 // hash → until (monotonic)
	fifo []recentEntry
}

type recentEntry struct {
	h     uint64
	until int64
}

func (r *recentSet) add(h uint64, until int64) {
	if r.m == nil {
		r.m = make(map[uint64]int64)
	}
	if len(r.fifo) >= maxRecent {
		r.pop()
	}
	r.m[h] = until
	r.fifo = append(r.fifo, recentEntry{h, until})
}

func (r *recentSet) pop() {
	e := r.fifo[0]
	r.fifo = r.fifo[1:]
	if r.m[e.h] == e.until {
		delete(r.m, e.h)
	}
}

// take reports whether data's hash is remembered, forgetting it.
func (r *recentSet) take(data []byte) bool {
	if len(r.m) == 0 {
		return false
	}
	h := fnv1a64(data)
	if _, ok := r.m[h]; !ok {
		return false
	}
	delete(r.m, h)
	return true
}

// expire forgets what is past its time.
func (r *recentSet) expire(now int64) {
	for len(r.fifo) > 0 && r.fifo[0].until <= now {
		r.pop()
	}
	if len(r.fifo) == 0 {
		r.fifo = nil
	}
}

// ownRing holds the hashes of this node's last maxRecent messages read
// from the stream: a publish whose acknowledgement timed out is found
// there if the stream stored it. Dispatcher only.
type ownRing struct {
	h [maxRecent]uint64
	n int
}

func (o *ownRing) add(h uint64) {
	o.h[o.n%maxRecent] = h
	o.n++
}

func (o *ownRing) has(h uint64) bool {
	for _, x := range o.h[:min(o.n, maxRecent)] {
		if x == h {
			return true
		}
	}
	return false
}

// fnv1a64 hashes a payload for recentSet and ownRing.
func fnv1a64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
