package netpoll

import (
	"bytes"
	"sync/atomic"
	"time"

	"context"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// maxIovPerWrite bounds the frames queued for one connection before they
// are written, so a burst cannot grow a pass without limit.
const maxIovPerWrite = 512

// maxCoalesceBuf is the largest coalescing buffer a loop keeps between
// passes; a bigger one (a burst of large messages) is left to the GC.
const maxCoalesceBuf = 1 << 20

// taskKind says what a mailbox task carries.
type taskKind uint8

const (
	taskRun        taskKind = iota // run: anything else that must run on the loop
	taskFanout                     // members, skip, payloads: a room broadcast
	taskPush                       // peer, payloads[0]: one payload for one session
	taskDisconnect                 // peer, d: close one session
)

// task is one unit of work handed to a loop through its mailbox. kind
// says which fields are set.
type task struct {
	kind     taskKind
	run      func()
	members  []rooms.Member
	skip     rooms.Member
	payloads chat.Payloads // fanout: one per member kind; push: [0]
	peer     Peer          // push, disconnect
	d        chat.Disconnect
	born     int64 // Unix ns when a sampled broadcast was handed off, else 0
}

// Peer is what a push lands on: a WebSocket connection of this package,
// or a session of a transport above it (an Engine.IO long-polling
// session). Its methods run on the peer's own loop, during a mailbox pass.
type Peer interface {
	// Deliver queues p (framed for WebSocket by the sender, see
	// FrameWebSocket) for the client, under the outbound limits. The
	// peer must not keep p past the pass without retaining it.
	Deliver(p *payload.Shared)
	// Disconnect closes the peer with d.
	Disconnect(d chat.Disconnect)
}

// latencySampleEvery is how many broadcasts share one latency sample.
const latencySampleEvery = 64

func (t *task) release() {
	for _, p := range t.payloads {
		if p != nil {
			p.Release()
		}
	}
	*t = task{}
}

// loop is chatgate's state for one gnet event loop. Fields below mu are
// touched only on the loop itself.
type loop struct {
	idx int
	el  gnet.EventLoop
	srv *Server

	drainFn gnet.RunnableFunc
	sweepFn gnet.RunnableFunc

	mu        sync.Mutex
	mail      []task // guarded by mu
	scheduled bool   // guarded by mu: a drain is queued on the loop

	spare   []task           // the other half of the mailbox double buffer
	conns   connList         // every connection of this loop, for sweeps
	pending []pending        // connections with frames queued in this pass
	npend   int              // entries of pending in use
	heads   map[*conn][]byte // partial HTTP request heads
	cur     *conn            // connection whose traffic is being handled
	tmp     []byte           // scratch frame for writes outside traffic handling
	// spareMore holds connMore values given back (putMore) for reuse
	// (getMore), at most maxSpareMore: a connection takes one for its
	// first messages' rate-limit state, so a stream of new connections
	// would otherwise leave one as garbage each.
	spareMore []*connMore
	// moreTaken: a spare was taken since the last sweep; when none was,
	// the sweep drops the spares (trimMore), so that they go once the
	// connections stop coming.
	moreTaken bool

	parked    map[*conn]func() // held requests (Exchange.Park), with what to do if the client goes
	wbuf      []byte           // output for the connection whose traffic is handled
	cbuf      []byte           // coalescing buffer for one connection's queued frames
	pbuf      []byte           // payload scratch for replies
	req       chat.Request
	welcome   chat.Welcome   // the welcome being written (conn.upgrade)
	exch      Exchange       // the request a protocol is serving (conn.serveProtocol)
	rd        frame.Reader   // frame reader shared by connections between frames
	hreq      Request        // the HTTP request head being handled
	hscratch  []byte         // joined values of a repeated header
	hsr       bytes.Reader   // the head, read by the WebSocket upgrader
	hsrw      headReadWriter // upgrader I/O: reads hsr, writes wbuf
	delivered int            // frames queued this pass, for metrics
	sent      int            // bytes written this pass, for metrics
	// writes counts the writes of queued frames (write): one per
	// connection per pass, however many frames it had. For tests and
	// benchmarks (writes per delivery); read on the loop.
	writes int64

	// upgrader is the server's, with its extension negotiation bound to
	// this loop's flate (Config.Compression): the negotiation has state,
	// and a loop runs one handshake at a time.
	upgrader ws.Upgrader
	flate    wsflate.Extension
	// accepted holds the extension the handshake being handled accepted
	// (negotiate), reused from handshake to handshake.
	accepted [1]httphead.Option

	// The node-wide outbound budget (budget.go). backlog lists the
	// connections that had unsent bytes after a write; counted is this
	// loop's share of Server.pending as last published; grown is what
	// writes since then may have added; deferred: over the budget, this
	// loop waits for a loop with a larger backlog to reset it.
	backlog  []*conn
	counted  int64
	grown    int64
	deferred bool
	budgetFn func()
	// maxBacklog is the largest backlog at the last count, read by the
	// other loops; budgetQueued: a budgetCheck is queued on this loop.
	maxBacklog   atomic.Int64
	budgetQueued atomic.Bool
}

func newLoop(s *Server, idx int, el gnet.EventLoop) *loop {
	lp := &loop{idx: idx, el: el, srv: s, heads: make(map[*conn][]byte), parked: make(map[*conn]func())}
	lp.drainFn = func(context.Context) error { lp.drain(); return nil }
	lp.upgrader = s.upgrader
	if s.cfg.Compression {
		lp.flate.Parameters = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
		lp.upgrader.ExtensionCustom = lp.negotiate
	}
	lp.sweepFn = func(context.Context) error { lp.sweep(); return nil }
	lp.budgetFn = lp.budgetCheck
	return lp
}

// negotiate is the loop's Sec-WebSocket-Extensions negotiation
// (ws.Upgrader.ExtensionCustom), called with one header value and what
// earlier values accepted. Each offer goes to the loop's wsflate, which
// accepts the first permessage-deflate it can serve; an offer with
// parameters wsflate cannot parse is declined (RFC 7692 §5: the server
// declines what it does not understand) rather than failing the
// handshake. ws.Upgrader.Negotiate would do the same, but appends the
// accepted option to a new slice: about 450 bytes of garbage per
// compressing handshake, which a reconnect storm turns into heap growth
// and RSS. Here the option lives in lp.accepted (the upgrader reads it
// only until Upgrade returns, and a loop runs one handshake at a time).
// A malformed header fails the handshake (400), as with Negotiate.
func (lp *loop) negotiate(h []byte, dest []httphead.Option) ([]httphead.Option, bool) {
	if dest == nil {
		dest = lp.accepted[:0]
	}
	index := -1
	var offer httphead.Option
	ok := httphead.ScanOptions(h, func(i int, name, attr, val []byte) httphead.Control {
		if i != index {
			dest = lp.acceptOffer(offer, dest)
			index = i
			offer = httphead.Option{Name: name}
		}
		if attr != nil {
			offer.Parameters.Set(attr, val)
		}
		return httphead.ControlContinue
	})
	if !ok {
		return dest, false
	}
	return lp.acceptOffer(offer, dest), true
}

// acceptOffer appends to dest what wsflate answers to offer, if anything.
func (lp *loop) acceptOffer(offer httphead.Option, dest []httphead.Option) []httphead.Option {
	if offer.Size() == 0 {
		return dest
	}
	if accept, err := lp.flate.Negotiate(offer); err == nil && accept.Size() > 0 {
		dest = append(dest, accept)
	}
	return dest
}

// pending is one connection's frames queued during a mailbox pass. The
// entries, and their out slices, are reused from pass to pass.
type pending struct {
	c   *conn
	out [][]byte
}

// maxSpareMore bounds a loop's spare connMore values: enough to serve
// the connections a handshake storm opens between two sweeps without
// garbage, little memory once it is over (32 B each).
const maxSpareMore = 1024

// getMore returns a zero connMore, a spare one if the loop has one.
func (lp *loop) getMore() *connMore {
	if n := len(lp.spareMore); n > 0 {
		m := lp.spareMore[n-1]
		lp.spareMore[n-1] = nil
		lp.spareMore = lp.spareMore[:n-1]
		lp.moreTaken = true
		return m
	}
	return new(connMore)
}

// putMore takes back a connMore its connection no longer holds (its
// frame reader, if any, already reset). It must not be used after.
func (lp *loop) putMore(m *connMore) {
	if len(lp.spareMore) < maxSpareMore {
		*m = connMore{}
		lp.spareMore = append(lp.spareMore, m)
	}
}

// trimMore drops the spare connMore values (and their list) unless one
// was taken since the last call (each sweep): they serve a stream of new
// connections, and go within a sweep period (at most 1 s) of its end, so
// that an idle gateway keeps none.
func (lp *loop) trimMore() {
	if lp.moreTaken {
		lp.moreTaken = false
		return
	}
	lp.spareMore = nil
}

func (lp *loop) add(c *conn) { lp.conns.add(c) }

func (lp *loop) remove(c *conn) { lp.conns.remove(c) }

// post queues t for this loop. Safe from any goroutine. Only the first post
// after a drain schedules another drain, so a burst of broadcasts costs one
// Execute per loop.
func (lp *loop) post(t task) {
	lp.mu.Lock()
	lp.mail = append(lp.mail, t)
	schedule := !lp.scheduled
	lp.scheduled = true
	lp.mu.Unlock()
	if !schedule {
		return
	}
	if err := lp.el.Execute(context.Background(), lp.drainFn); err != nil {
		// The engine is shutting down: nothing will be written anymore.
		lp.mu.Lock()
		for i := range lp.mail {
			lp.mail[i].release()
		}
		lp.mail = lp.mail[:0]
		lp.scheduled = false
		lp.mu.Unlock()
	}
}

// drain runs on the loop: it queues every frame of every pending task on its
// recipients, writes each recipient once, then releases the frames.
func (lp *loop) drain() {
	lp.mu.Lock()
	tasks := lp.mail
	lp.mail = lp.spare[:0]
	lp.scheduled = false
	lp.mu.Unlock()

	for i := range tasks {
		t := &tasks[i]
		switch t.kind {
		case taskRun:
			t.run()
		case taskPush:
			t.peer.Deliver(t.payloads[0])
		case taskDisconnect:
			t.peer.Disconnect(t.d)
		case taskFanout:
			for _, m := range t.members {
				if m == t.skip {
					continue
				}
				p := t.payloads[m.Kind()]
				// The common peer is named first: a concrete type check
				// costs less than an interface call per recipient.
				switch peer := m.(*chat.Session).Peer().(type) {
				case *conn:
					peer.Deliver(p)
				case Peer:
					peer.Deliver(p)
				}
			}
		}
	}
	lp.flush()
	lp.flushProtocols()
	lp.settle()
	if m := lp.srv.m; m != nil {
		m.MessagesDelivered(lp.delivered)
		m.BytesSent(lp.sent)
		lp.delivered, lp.sent = 0, 0
		var now int64
		for i := range tasks {
			if b := tasks[i].born; b != 0 {
				if now == 0 {
					now = time.Now().UnixNano()
				}
				m.ObserveDeliveryLatency(time.Duration(now - b))
			}
		}
	}
	for i := range tasks {
		tasks[i].release()
	}
	lp.spare = tasks[:0]
}

// queue adds one frame to c's writes of this pass.
func (lp *loop) queue(c *conn, b []byte) {
	if c.pendIdx == 0 {
		if lp.npend == len(lp.pending) {
			lp.pending = append(lp.pending, pending{})
		}
		lp.pending[lp.npend].c = c
		lp.npend++
		c.pendIdx = int32(lp.npend)
	}
	p := &lp.pending[c.pendIdx-1]
	p.out = append(p.out, b)
	lp.delivered++
	if len(p.out) >= maxIovPerWrite {
		lp.write(p)
	}
}

// flush writes every connection with queued frames once.
func (lp *loop) flush() {
	for i := 0; i < lp.npend; i++ {
		p := &lp.pending[i]
		lp.write(p)
		p.c.pendIdx = 0
		p.c = nil
		if cap(p.out) > 4*maxIovPerWrite {
			p.out = nil
		}
	}
	lp.npend = 0
}

// write sends p's queued frames with one write, after checking the
// connection's backlog: a connection that does not read is closed rather
// than allowed to grow gateway memory.
func (lp *loop) write(p *pending) {
	c, out := p.c, p.out
	p.out = p.out[:0]
	defer clear(out) // drop references to shared frames so they can return to the pool
	if len(out) == 0 || !c.outboundOK(0) {
		return
	}
	lp.writes++
	if len(out) == 1 {
		_, _ = c.gc.Write(out[0])
		lp.sent += len(out[0])
		lp.noteWrite(c, len(out[0]))
		return
	}
	// Coalesce into one contiguous buffer and one write(2). Copying small
	// chat frames is cheaper than building an iovec array, and
	// x/sys/unix.Writev allocates one per call beyond 8 entries; gnet
	// copies whatever the socket does not take, so the buffer is free again
	// as soon as Write returns.
	buf := lp.cbuf[:0]
	for _, b := range out {
		buf = append(buf, b...)
	}
	_, _ = c.gc.Write(buf)
	lp.sent += len(buf)
	lp.noteWrite(c, len(buf))
	if cap(buf) <= maxCoalesceBuf {
		lp.cbuf = buf
	}
}

// sweep checks every connection of the loop for an expired timeout.
func (lp *loop) sweep() {
	now := lp.srv.now()
	for _, p := range lp.srv.protocols {
		p.Sweep(lp, now)
	}
	cfg := &lp.srv.cfg
	lp.trimMore()
	// Iterate backwards: closing a connection swap-removes it.
	for i := lp.conns.len() - 1; i >= 0; i-- {
		if i >= lp.conns.len() {
			continue
		}
		c := lp.conns.at(i)
		switch c.state {
		case stateHTTP, stateProxy:
			if now > c.stamp {
				c.timeoutHTTP()
			}
		case stateOpen:
			if c.more != nil && c.more.idle(now, &cfg.Limits) {
				c.dropMore() // back to a fresh state: an idle connection keeps none
			}
			if p := c.protocol(); p != nil {
				p.h.Sweep(now) // the protocol keeps its own heartbeat
				continue
			}
			if c.session() != nil && lp.srv.hub.ExpireToken(c.session(), now) {
				c.Disconnect(chat.DisconnectTokenExpired)
				continue
			}
			idle := now - c.stamp
			switch {
			case idle > int64(cfg.PingInterval+cfg.PingTimeout):
				c.Disconnect(chat.DisconnectPingTimeout)
			case idle > int64(cfg.PingInterval) && !c.pinged:
				c.pinged = true
				c.sendRaw(frame.PingFrame)
			}
		case stateClosing:
			if now > c.stamp {
				c.state = stateClosed
				_ = lp.el.Close(c.gc)
			}
		case stateSending:
			// Closed once the response is out; a client that does not
			// read it within the handshake timeout loses the rest.
			if c.gc.OutboundBuffered() == 0 || now > c.stamp {
				c.state = stateClosed
				_ = lp.el.Close(c.gc)
			}
		}
	}
	// Once per sweep, after the protocols' and their sockets' timers:
	// what those queued for parked requests is answered now.
	lp.flushProtocols()
	lp.settle()
}

// endSessions closes the chat session of every open native connection of
// the loop, as closed for d, and leaves the connections open for goingAway
// (the first step of a drain).
func (lp *loop) endSessions(d chat.Disconnect) {
	for i := lp.conns.len() - 1; i >= 0; i-- {
		if i >= lp.conns.len() {
			continue
		}
		if c := lp.conns.at(i); c.state == stateOpen {
			c.endSession(d.Metric)
		}
	}
}

// goingAway starts the close handshake with d (1012 and the reconnect
// hint) on every connection of the loop (drain on shutdown). Every client
// is told at once: the hint, not the server, spreads the reconnects
// (docs/deploy.md, rolling restarts).
func (lp *loop) goingAway(d chat.Disconnect) {
	// Protocols end their sessions first: a held long-polling GET gets
	// its close packet before its connection goes.
	for _, p := range lp.srv.protocols {
		p.Drain(lp)
	}
	lp.flushProtocols()
	for i := lp.conns.len() - 1; i >= 0; i-- {
		if i >= lp.conns.len() {
			continue
		}
		c := lp.conns.at(i)
		switch c.state {
		case stateHTTP, stateProxy:
			_ = c.gc.Close()
		case stateOpen:
			// Its session ended in endSessions, unless it became a
			// session since.
			c.endSession(d.Metric)
			c.startClose(d)
		}
	}
}
