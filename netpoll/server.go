package netpoll

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/frame"
	"github.com/chatgate/chatgate/limit"
	"github.com/chatgate/chatgate/metrics"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// Server is the gnet event-loop server. Create it with New, start it with
// Run and stop it with Shutdown.
type Server struct {
	gnet.BuiltinEventEngine

	cfg      Config
	log      *slog.Logger
	m        *metrics.Metrics // nil-safe
	hub      *chat.Hub
	upgrader ws.Upgrader
	routes   map[string]HandlerFunc
	sweep    time.Duration

	eng    gnet.Engine
	booted chan struct{}

	// loops[i] is the loop with index i, registered on its first
	// connection; the index is what rooms.Member.Loop returns.
	loops    []atomic.Pointer[loop]
	loopsMu  sync.Mutex
	numLoops int

	// Protocols mounted above the sockets (Mount), by exact path, and
	// each once; set before Run, read-only after.
	mounts       map[string]Protocol
	protocols    []Protocol
	protoMaxBody int // largest message of a protocol's sockets
	maxBody      int // largest HTTP request body

	fanouts atomic.Uint64 // broadcasts, for latency sampling
	total   limit.Total   // open connections, against Limits.MaxConnections
	perIP   limit.PerIP   // sessions per client address
	// hsGate is the node's handshake rate (Limits.HandshakeRate), and
	// limited its refusals by Retry-After seconds, built once (storm.go).
	hsGate  limit.Gate
	limited []Response

	clock    atomic.Int64 // coarse Unix nanoseconds, advanced by OnTick
	conns    atomic.Int64 // open TCP connections
	draining atomic.Bool
	leaving  atomic.Bool // /healthz answers 503 (Leave), connections still served

	// pending is the node's unsent outbound bytes, the sum of what each
	// loop last counted (budget.go).
	pending atomic.Int64
}

// New returns a server for hub. The hub's room table must have been made for
// cfg.Loops loops (see Loops).
func New(cfg Config, hub *chat.Hub) *Server {
	cfg = cfg.withDefaults()
	n := cfg.Loops
	if n <= 0 {
		n = runtime.NumCPU()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		m:        cfg.Metrics,
		hub:      hub,
		routes:   make(map[string]HandlerFunc),
		mounts:   make(map[string]Protocol),
		booted:   make(chan struct{}),
		loops:    make([]atomic.Pointer[loop], n),
		numLoops: n,
		upgrader: ws.Upgrader{ReadBufferSize: cfg.MaxHeaderBytes},
	}
	s.clock.Store(time.Now().UnixNano())
	s.limited = rateLimitedResponses()
	hub.SetTransport(s)
	s.Handle("/healthz", s.serveHealthz)
	s.Handle("/stats", s.serveStats)
	return s
}

// Loops returns the number of event loops the server runs, which is the
// loop count the room table must be made for.
func Loops(cfg Config) int {
	if cfg.Loops > 0 {
		return cfg.Loops
	}
	return runtime.NumCPU()
}

// Handle registers a plain HTTP handler for an exact path. It must be called
// before Run.
func (s *Server) Handle(path string, h HandlerFunc) { s.routes[path] = h }

// Run listens and serves until Shutdown. It blocks.
func (s *Server) Run() error {
	shortest := time.Duration(0)
	s.maxBody = s.cfg.MaxMessage
	for _, p := range s.protocols {
		if d := p.ShortestTimeout(); shortest == 0 || d < shortest {
			shortest = d
		}
		s.protoMaxBody = max(s.protoMaxBody, p.MaxBody())
		s.maxBody = max(s.maxBody, p.MaxBody())
	}
	s.sweep = s.cfg.sweepEvery(shortest)
	err := gnet.Run(s, "tcp://"+s.cfg.Addr,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.numLoops),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		// A restarted gateway must bind at once, even while connections of
		// the previous process linger in TIME_WAIT.
		gnet.WithReuseAddr(true),
		gnet.WithLogger(gnetLogger{s.log}),
	)
	if err != nil {
		return fmt.Errorf("netpoll: serve %s: %w", s.cfg.Addr, err)
	}
	return nil
}

// Ready returns a channel closed once the listener accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.booted }

// Stats is a point-in-time view of the server, served as JSON at /stats.
type Stats struct {
	Connections int  `json:"connections"`
	Sessions    int  `json:"sessions"`
	Rooms       int  `json:"rooms"`
	Goroutines  int  `json:"goroutines"`
	Loops       int  `json:"loops"`
	Draining    bool `json:"draining"`
}

// Stats returns current figures. Safe from any goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		Connections: int(s.conns.Load()),
		Sessions:    s.hub.Sessions(),
		Rooms:       s.hub.Table().Len(),
		Goroutines:  runtime.NumGoroutine(),
		Loops:       s.numLoops,
		Draining:    s.draining.Load(),
	}
}

func (s *Server) serveStats(*Request) Response {
	b, _ := json.Marshal(s.Stats())
	return Response{Status: 200, ContentType: "application/json", Body: append(b, '\n')}
}

// serveHealthz answers the proxies' health checks on the public port:
// 503 from Leave (or Shutdown) on, so that they take the node out of
// rotation.
func (s *Server) serveHealthz(*Request) Response {
	if s.leaving.Load() || s.draining.Load() {
		return textResponse(503, "draining\n")
	}
	return textResponse(200, "ok\n")
}

// Leave is the first step of a drain: /healthz answers 503 from now on, so
// that load balancers stop sending new clients, while connections are still
// accepted and served until Shutdown. It is safe to call from any
// goroutine.
func (s *Server) Leave() { s.leaving.Store(true) }

// Shutdown drains the server: new connections are refused, every WebSocket
// gets a close frame 1012 (service restart) whose reason carries the
// reconnect hint of Config.DrainSpread, and the server waits for peers to
// close until ctx is done; then the engine stops and Run returns.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return nil
	}
	select {
	case <-s.booted:
	default:
		return nil // never started
	}
	d := chat.DisconnectRestart(s.cfg.DrainSpread)
	// Sessions first, clients after: every chat session ends (kept for
	// resuming) and the cluster has sent the closes to NATS before any
	// client hears of the restart, so that a client that reconnects to
	// another node at once finds its session's record there instead of a
	// session still open here (which refuses the resume).
	s.forEachLoopWait(ctx, func(lp *loop) { lp.endSessions(d) })
	s.hub.FlushBroker(time.Second)
	s.forEachLoop(func(lp *loop) { lp.goingAway(d) })
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
wait:
	for s.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-t.C:
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.eng.Stop(stopCtx); err != nil {
		return fmt.Errorf("netpoll: stop engine: %w", err)
	}
	return nil
}

// forEachLoop runs fn on every registered loop, on that loop.
func (s *Server) forEachLoop(fn func(lp *loop)) {
	for i := range s.loops {
		lp := s.loops[i].Load()
		if lp == nil {
			continue
		}
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			fn(lp)
			return nil
		}))
	}
}

// forEachLoopWait runs fn on every registered loop, on that loop, and
// waits until every one has run it or ctx is done.
func (s *Server) forEachLoopWait(ctx context.Context, fn func(lp *loop)) {
	var wg sync.WaitGroup
	for i := range s.loops {
		lp := s.loops[i].Load()
		if lp == nil {
			continue
		}
		wg.Add(1)
		err := lp.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			fn(lp)
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// loopFor returns the loop state for el, registering it on first use.
func (s *Server) loopFor(el gnet.EventLoop) *loop {
	for i := range s.loops {
		if lp := s.loops[i].Load(); lp != nil && lp.el == el {
			return lp
		}
	}
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	for i := range s.loops {
		lp := s.loops[i].Load()
		if lp == nil {
			lp = newLoop(s, i, el)
			s.loops[i].Store(lp)
			return lp
		}
		if lp.el == el {
			return lp
		}
	}
	// gnet never runs more loops than asked for.
	panic("netpoll: more event loops than configured")
}

func (s *Server) now() int64 { return s.clock.Load() }

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	s.log.Info("listening", "addr", s.cfg.Addr, "loops", s.numLoops)
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if s.draining.Load() {
		s.m.HandshakeFailed(metrics.HandshakeDraining)
		return appendResponse(nil, textResponse(503, "shutting down\n")), gnet.Close
	}
	if !s.total.Acquire(s.cfg.Limits.MaxConnections) {
		s.m.HandshakeFailed(metrics.HandshakeOverloaded)
		return appendResponse(nil, textResponse(503, "too many connections\n")), gnet.Close
	}
	var peer netip.Addr
	if ta, ok := gc.RemoteAddr().(*net.TCPAddr); ok {
		peer = ta.AddrPort().Addr().Unmap()
	}
	// A direct client (no PROXY header to come, not a trusted proxy) is
	// held to its address's limit at once, so that it cannot pile up
	// half-open connections.
	held := false
	if s.cfg.ProxyProtocol == ProxyOff && !s.cfg.TrustedProxies.Contains(peer) {
		if !s.perIP.Acquire(peer, s.cfg.Limits.MaxConnectionsPerIP) {
			s.total.Release()
			s.m.HandshakeFailed(metrics.HandshakeOverloaded)
			return appendResponse(nil, textResponse(429, "too many connections from this address\n")), gnet.Close
		}
		held = true
	}
	s.m.Opened()
	lp := s.loopFor(gc.EventLoop())
	c := &conn{gc: gc, lp: lp, stamp: s.now() + int64(s.cfg.HandshakeTimeout), ipHeld: held}
	c.setIP(peer)
	if s.cfg.ProxyProtocol != ProxyOff {
		c.state = stateProxy
	}
	gc.SetContext(c)
	lp.add(c)
	s.conns.Add(1)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok || c == nil {
		return gnet.None
	}
	gc.SetContext(nil)
	s.total.Release()
	s.m.Closed(c.why)
	c.closed(err)
	s.conns.Add(-1)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok || c == nil {
		return gnet.Close
	}
	buf, _ := gc.Next(-1)
	return c.onTraffic(buf)
}

// OnTick implements gnet.EventHandler: it advances the coarse clock and
// asks every loop to sweep its connections for timeouts.
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.clock.Store(time.Now().UnixNano())
	for i := range s.loops {
		if lp := s.loops[i].Load(); lp != nil {
			_ = lp.el.Execute(context.Background(), lp.sweepFn)
		}
	}
	return s.sweep, gnet.None
}

// FrameWebSocket frames p for WebSocket delivery, once, before p is
// shared: the text as one text frame (its header written into the room
// reserved in front of it, so nothing is copied) and each attachment as a
// binary frame after it. Safe only while the caller is p's sole holder.
func FrameWebSocket(p *payload.Shared) { frameWebSocket(p, ws.OpText) }

// frameWebSocket is FrameWebSocket with the text's opcode: OpBinary for a
// codec whose payloads are binary messages (chat.BinaryPayloads).
func frameWebSocket(p *payload.Shared, op ws.OpCode) {
	if p.Framed() != nil {
		return
	}
	if p.Attachments() == 0 {
		var h [frame.MaxHeaderLen]byte
		p.SetHeader(frame.AppendHeader(h[:0], op, len(p.Payload())))
		return
	}
	p.SetFramed(func(dst []byte) []byte {
		dst = frame.AppendFrame(dst, op, p.Payload())
		for i := 0; i < p.Attachments(); i++ {
			dst = frame.AppendFrame(dst, ws.OpBinary, p.Attachment(i))
		}
		return dst
	})
}

// Fanout implements chat.Transport: each payload is framed once, then
// handed to each loop that has members once, whatever the number of
// members on it.
func (s *Server) Fanout(snap *rooms.Snapshot, skip rooms.Member, ps *chat.Payloads) {
	// One broadcast in latencySampleEvery carries its birth time, for the
	// delivery latency histogram.
	sample := s.m != nil && s.fanouts.Add(1)%latencySampleEvery == 0
	var born int64
	if sample {
		born = time.Now().UnixNano()
	}
	for k, p := range ps {
		if p != nil {
			frameWebSocket(p, s.textOp(k))
		}
	}
	for i, members := range snap.ByLoop {
		if len(members) == 0 || (len(members) == 1 && members[0] == skip) {
			continue
		}
		lp := s.loops[i].Load()
		if lp == nil {
			continue
		}
		for _, p := range ps {
			if p != nil {
				p.Retain(1)
			}
		}
		t := task{kind: taskFanout, members: members, skip: skip, payloads: *ps}
		if sample {
			t.born = born
		}
		lp.post(t)
	}
	for _, p := range ps {
		if p != nil {
			p.Release()
		}
	}
}

// Push implements chat.Transport: p goes to the session's loop through its
// mailbox and out under the same outbound policy as every other write.
func (s *Server) Push(to *chat.Session, p *payload.Shared) {
	peer, lp := s.peerOf(to)
	if peer == nil || p.Empty() {
		p.Release()
		return
	}
	frameWebSocket(p, s.textOp(to.Kind()))
	t := task{kind: taskPush, peer: peer}
	t.payloads[0] = p
	lp.post(t)
}

// textOp is the opcode of the payloads of session kind k.
func (s *Server) textOp(k int) ws.OpCode {
	if chat.BinaryPayloads(s.hub.Codec(k)) {
		return ws.OpBinary
	}
	return ws.OpText
}

// Disconnect implements chat.Transport.
func (s *Server) Disconnect(to *chat.Session, d chat.Disconnect) {
	if peer, lp := s.peerOf(to); peer != nil {
		lp.post(task{kind: taskDisconnect, peer: peer, d: d})
	}
}

// peerOf returns the peer of session to and the loop that owns it.
func (s *Server) peerOf(to *chat.Session) (Peer, *loop) {
	lp := s.loops[to.Loop()].Load()
	if lp == nil {
		return nil, nil
	}
	peer, _ := to.Peer().(Peer)
	return peer, lp
}

// gnetLogger routes gnet's own logs to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }

// Exec implements chat.Transport: fn runs on the session's loop, through
// its mailbox.
func (s *Server) Exec(to *chat.Session, fn func()) {
	if lp := s.loops[to.Loop()].Load(); lp != nil {
		lp.post(task{kind: taskRun, run: fn})
	}
}
