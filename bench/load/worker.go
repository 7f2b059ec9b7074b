package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/bench/hist"
)

// maxErrors is how many distinct error messages a worker keeps to report.
const maxErrors = 5

// Worker holds a share of the load connections in one process and acts on
// the coordinator's commands. Create it with NewWorker and run Serve.
type Worker struct {
	outMu sync.Mutex
	enc   *json.Encoder

	cfg     dialConfig
	clients []*client // indexed by client index - first; nil if it failed
	first   int
	loops   int
	pollers pollerSet

	// Counters of the connection phase.
	open, failed, lost atomic.Int64
	roomsMu            sync.Mutex
	rooms              map[int]int

	// Per-step state. step changes only between steps (see prepare).
	step       atomic.Int64
	rec        hist.Sharded
	stale      atomic.Uint64
	dups       atomic.Uint64
	sent       atomic.Uint64
	expected   atomic.Uint64
	sendErrors atomic.Uint64
	srvErrors  atomic.Uint64
	lagMax     atomic.Int64

	cycles, cycleFailed atomic.Int64

	// order turns on the duplicate check of deliver (OpenCmd.Order);
	// redial, when set, dials lost clients again (OpenCmd.Reconnect).
	order                   bool
	redial                  *redialer
	reconnected, reconnFail atomic.Int64
	reconnLast              atomic.Int64

	// api publishes through the server API (runAPI); made by the first
	// step that asks for it and kept, so its connections stay open.
	api *apiClient

	// rs is the resume scenario's state, set by r-open (resume.go).
	rs atomic.Pointer[resumeWorker]

	errMu  sync.Mutex
	errors []string

	// tickMu makes "drain the histogram and emit it" one step, so that
	// reports leave the worker in the order of their contents.
	tickMu sync.Mutex
}

// NewWorker returns a worker that writes its events to out.
func NewWorker(out io.Writer) *Worker {
	return &Worker{enc: json.NewEncoder(out), rooms: make(map[int]int)}
}

// Serve reads commands from in until the input ends, a close command
// arrives, ctx ends, or the deadline of the open command passes. It closes
// every connection before returning.
func (w *Worker) Serve(ctx context.Context, in io.Reader) error {
	// opCtx bounds everything the worker does; the deadline of the open
	// command cancels it.
	opCtx, cancel := context.WithCancel(ctx)
	cmds := make(chan Command)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var c Command
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				w.emit(Event{Ev: evError, Errors: []string{"bad command: " + err.Error()}})
				continue
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()

	var busy sync.WaitGroup // the long operation in progress, if any
	var stopTicks func()
	var deadline *time.Timer
	// Stop in order: cancel the work, stop reporting, wait for the work to
	// notice, then close the connections.
	defer func() {
		cancel()
		if deadline != nil {
			deadline.Stop()
		}
		if stopTicks != nil {
			stopTicks()
		}
		busy.Wait()
		w.closeAll()
	}()
	for {
		var c Command
		var ok bool
		select {
		case c, ok = <-cmds:
			if !ok {
				return nil
			}
		case <-opCtx.Done():
			return opCtx.Err()
		}
		switch c.Op {
		case opOpen:
			if c.Open == nil || stopTicks != nil {
				continue // one open per worker
			}
			if !c.Open.Deadline.IsZero() {
				deadline = time.AfterFunc(time.Until(c.Open.Deadline), cancel)
			}
			stopTicks = w.startTicks(opCtx)
			busy.Add(1)
			go func(ctx context.Context, o OpenCmd) {
				defer busy.Done()
				w.openAll(ctx, o)
			}(opCtx, *c.Open)
		case opPrepare:
			busy.Wait()
			w.prepare(c.Step)
			w.emit(Event{Ev: evPrepared, Step: c.Step})
		case opRun:
			if c.Run == nil {
				continue
			}
			busy.Add(1)
			go func(ctx context.Context, r RunCmd) {
				defer busy.Done()
				w.run(ctx, r)
			}(opCtx, *c.Run)
		case opFlush:
			w.tick(c.Seq)
		case opChurn:
			if c.Churn == nil {
				continue
			}
			busy.Wait()
			busy.Add(1)
			go func(ctx context.Context, ch ChurnCmd) {
				defer busy.Done()
				w.churn(ctx, ch)
			}(opCtx, *c.Churn)
		case opROpen:
			if c.R == nil || stopTicks != nil {
				continue // one open per worker
			}
			if !c.R.Deadline.IsZero() {
				deadline = time.AfterFunc(time.Until(c.R.Deadline), cancel)
			}
			stopTicks = w.startTicks(opCtx)
			w.openResume(opCtx, *c.R, &busy)
		case opRPublish, opRDrop, opRResume, opRStop, opRVerify:
			w.serveResume(opCtx, c, &busy)
		case opClose:
			cancel()
			busy.Wait()
			w.closeAll()
			w.emit(Event{Ev: evClosed})
			return nil
		}
	}
}

func (w *Worker) emit(ev Event) {
	ev.CPU = selfCPU()
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.enc.Encode(ev)
}

func (w *Worker) noteError(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	msg := err.Error()
	for _, e := range w.errors {
		if e == msg {
			return
		}
	}
	if len(w.errors) < maxErrors {
		w.errors = append(w.errors, msg)
	}
}

func (w *Worker) takeErrors() []string {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	e := w.errors
	w.errors = nil
	return e
}

// startTicks reports progress every second until ctx ends or the returned
// function is called.
func (w *Worker) startTicks(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.tick(0)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// tick emits the current counters and the deliveries recorded since the
// previous tick; seq is the flush it answers, or 0.
func (w *Worker) tick(seq int) {
	w.tickMu.Lock()
	defer w.tickMu.Unlock()
	h := new(hist.Histogram)
	w.rec.Drain(h)
	ev := w.counters(evTick)
	ev.Seq = seq
	if h.Count() > 0 {
		ev.Hist = h
	}
	w.emit(ev)
}

func (w *Worker) counters(kind string) Event {
	return Event{
		Ev:          kind,
		Step:        int(w.step.Load()),
		Open:        int(w.open.Load()),
		Failed:      int(w.failed.Load()),
		Lost:        int(w.lost.Load()),
		Sent:        w.sent.Load(),
		Expected:    w.expected.Load(),
		SendErrors:  w.sendErrors.Load(),
		ServerErrs:  w.srvErrors.Load(),
		LagMax:      time.Duration(w.lagMax.Load()),
		Stale:       w.stale.Load(),
		Dups:        w.dups.Load(),
		Reconnected: int(w.reconnected.Load()),
		ReconnFail:  int(w.reconnFail.Load()),
		ReconnLast:  w.reconnLast.Load(),
		Cycles:      int(w.cycles.Load()),
		CycleFailed: int(w.cycleFailed.Load()),
		Errors:      w.takeErrors(),
		R:           w.resumeProgress(),
	}
}

// resumeProgress returns the resume scenario's counters, or nil in other
// scenarios.
func (w *Worker) resumeProgress() *ResumeEvent {
	if rs := w.rs.Load(); rs != nil {
		return rs.progress()
	}
	return nil
}

// openAll opens this worker's share of the clients.
func (w *Worker) openAll(ctx context.Context, o OpenCmd) {
	start := time.Now()
	w.cfg = dialConfig{
		addr:    o.Addr,
		path:    o.Path,
		proto:   o.Proto,
		local:   net.ParseIP(o.LocalIP),
		timeout: o.DialTimeout,
		readBuf: o.ReadBuf,
		deflate: o.Compression,
	}
	if w.cfg.timeout <= 0 {
		w.cfg.timeout = 10 * time.Second
	}
	if w.cfg.readBuf < 256 {
		w.cfg.readBuf = 256
	}
	w.first = o.First
	w.loops = o.Loops
	w.order = o.Order
	if o.Reconnect {
		w.redial = &redialer{ctx: ctx, sem: make(chan struct{}, max(o.Concurrency, 1))}
	}
	if !pollerSupported {
		w.loops = 0
	}
	w.clients = make([]*client, o.Count)
	roomSize := max(o.RoomSize, 1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < max(o.Concurrency, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.Count {
					return
				}
				idx := o.First + i
				room := idx / roomSize
				c, err := w.dialRetry(ctx, idx, room, o.Retries)
				if err != nil {
					w.failed.Add(1)
					w.noteError(err)
					continue
				}
				w.clients[i] = c
				w.roomsMu.Lock()
				w.rooms[room]++
				w.roomsMu.Unlock()
				w.open.Add(1)
				w.startReading(c)
			}
		}()
	}
	wg.Wait()
	ev := w.counters(evOpened)
	ev.Secs = time.Since(start).Seconds()
	w.roomsMu.Lock()
	ev.Rooms = make(map[int]int, len(w.rooms))
	for r, n := range w.rooms {
		ev.Rooms[r] = n
	}
	w.roomsMu.Unlock()
	w.emit(ev)
}

// startReading hands c to a poller, or to a goroutine of its own when
// there are no pollers or the handoff fails.
func (w *Worker) startReading(c *client) {
	if w.loops > 0 {
		err := w.pollers.add(w, w.cfg.proto, w.loops, c)
		if err == nil {
			return
		}
		w.noteError(fmt.Errorf("poller: %w", err))
		c.wmu.Lock()
		handed := c.nc == nil
		c.wmu.Unlock()
		if handed {
			// The socket moved and then failed: count it lost.
			w.lostConn(err)
			return
		}
	}
	go c.readLoop(w.cfg.proto)
}

// dialRetry dials with a short growing pause between attempts, because a
// refused or timed-out connect under a burst of handshakes usually
// succeeds a moment later.
func (w *Worker) dialRetry(ctx context.Context, idx, room, retries int) (*client, error) {
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var c *client
		if c, _, err = dial(ctx, &w.cfg, w, idx, room); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// prepare starts step k: from now on only deliveries of messages stamped
// with step k count, and the counters start from zero. The coordinator
// prepares every worker before any of them publishes, so no receiver sees
// a message of a step it has not reached.
func (w *Worker) prepare(k int) {
	w.tickMu.Lock()
	defer w.tickMu.Unlock()
	w.step.Store(int64(k))
	var discard hist.Histogram
	w.rec.Drain(&discard)
	w.stale.Store(0)
	w.dups.Store(0)
	w.sent.Store(0)
	w.expected.Store(0)
	w.sendErrors.Store(0)
	w.srvErrors.Store(0)
	w.lagMax.Store(0)
}

// deliver records a chat message received by c. It is called by every
// client's reader, so it only touches atomics, the sharded histogram and
// c's own lastT (which only c's reader uses).
func (w *Worker) deliver(c *client, msg []byte) {
	t, k, ok := parseData(msg)
	if !ok {
		return
	}
	if int64(k) != w.step.Load() {
		w.stale.Add(1)
		return
	}
	if w.order {
		// One publisher per room, one connection at a time: its
		// timestamps only grow, so one not above the last is a repeat.
		if t <= c.lastT {
			w.dups.Add(1)
			return
		}
		c.lastT = t
	}
	lat := Mono() - t
	if lat < 0 {
		lat = 0
	}
	w.rec.Record(c.idx, uint64(lat))
}

// serverError counts an error reply and keeps its text (the first few
// distinct ones) for the report.
func (w *Worker) serverError(frame []byte) {
	w.srvErrors.Add(1)
	if len(frame) > 200 {
		frame = frame[:200]
	}
	w.noteError(errors.New("server replied " + string(frame)))
}

func (w *Worker) lostConn(err error) {
	w.lost.Add(1)
	w.noteError(err)
}

// run publishes for one step on an open-loop schedule: message i of the
// worker is due at start + i/rate whatever happened to the previous ones,
// so a server that stalls its readers is charged for the wait. The
// messages are sent by the worker's publishing clients, or, when r.API is
// set, through the server API (see runAPI).
func (w *Worker) run(ctx context.Context, r RunCmd) {
	if r.API != nil {
		w.runAPI(ctx, r)
		return
	}
	var pubs []*client
	for _, c := range w.clients {
		if c != nil && r.PubStride > 0 && c.idx%r.PubStride == 0 && c.idx/r.PubStride < r.PubCount {
			pubs = append(pubs, c)
		}
	}
	// The sender does not receive its own message.
	owed := func(room int) uint64 {
		if room < len(r.Members) && r.Members[room] > 1 {
			return uint64(r.Members[room] - 1)
		}
		return 0
	}
	var payload, frame []byte
	var sent, expected uint64
	w.pace(ctx, r.RatePerPub*float64(len(pubs)), r.Duration, func(i int, due int64) {
		stamp := w.stamp(due, r.Slack)
		c := pubs[i%len(pubs)].latest()
		c.seq++
		payload = appendSend(payload[:0], w.cfg.proto, c.seq+10, c.room, stamp, r.Step, r.Size)
		frame = appendFrame(frame[:0], opText, payload)
		if err := c.write(frame); err != nil {
			w.sendErrors.Add(1)
			w.noteError(err)
			return
		}
		sent++
		expected += owed(c.room)
		w.sent.Store(sent)
		w.expected.Store(expected)
	})
	w.reportSent()
}

// pace calls send for message i = 0, 1, ... at its due time start +
// i/rate (CLOCK_MONOTONIC ns) until dur has passed or ctx ends. A send
// that blocks delays the following ones; they are still all sent, late.
func (w *Worker) pace(ctx context.Context, rate float64, dur time.Duration, send func(i int, due int64)) {
	if rate <= 0 {
		return
	}
	interval := float64(time.Second) / rate
	start := Mono()
	end := start + int64(dur)
	for i := 0; ; i++ {
		due := start + int64(float64(i)*interval)
		if due >= end || (i&63 == 0 && ctx.Err() != nil) {
			return
		}
		if ahead := due - Mono(); ahead > 50_000 {
			time.Sleep(time.Duration(ahead))
		}
		send(i, due)
	}
}

// stamp returns the send time to write into a message due at due, read
// just before it goes out: now, or due when the message is more than
// slack late. Timer jitter below the slack is not charged to the server;
// a real backlog is (see RunCmd.Slack). Only the pacing goroutine calls
// it.
func (w *Worker) stamp(due int64, slack time.Duration) int64 {
	now := Mono()
	if lag := now - due; lag > int64(slack) {
		if lag > w.lagMax.Load() {
			w.lagMax.Store(lag)
		}
		return due
	}
	return now
}

// reportSent tells the coordinator this worker has finished publishing.
func (w *Worker) reportSent() {
	w.tickMu.Lock()
	ev := w.counters(evSent)
	w.tickMu.Unlock()
	w.emit(ev)
}

// churn runs connect–join–send–close cycles.
func (w *Worker) churn(ctx context.Context, ch ChurnCmd) {
	var next atomic.Int64
	var wg sync.WaitGroup
	rooms := max(ch.Rooms, 1)
	for g := 0; g < max(ch.Concurrency, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= ch.Cycles {
					return
				}
				var err error
				buf, err = w.cycle(ctx, ch.First+i, ch.RoomBase+i%rooms, ch.Size, buf)
				if err != nil {
					w.cycleFailed.Add(1)
					w.noteError(err)
					continue
				}
				w.cycles.Add(1)
			}
		}()
	}
	wg.Wait()
	w.tickMu.Lock()
	ev := w.counters(evChurned)
	w.tickMu.Unlock()
	w.emit(ev)
}

// errNoAck is returned when a churn cycle's message is not acknowledged.
var errNoAck = errors.New("load: message not acknowledged")

// cycle connects, joins, publishes one message, waits for its ack and
// closes with a close frame, as a short-lived browser tab would.
func (w *Worker) cycle(ctx context.Context, idx, room, size int, buf []byte) ([]byte, error) {
	c, _, err := dial(ctx, &w.cfg, w, idx, room)
	if err != nil {
		return buf, err
	}
	defer c.close()
	_ = c.nc.SetDeadline(time.Now().Add(w.cfg.timeout))
	const id = 3 // after nick (1) and join (2)
	buf = appendSend(buf[:0], w.cfg.proto, id, room, Mono(), -1, size)
	if err := c.write(appendFrame(nil, opText, buf)); err != nil {
		return buf, err
	}
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return buf, fmt.Errorf("%w: %v", errNoAck, err)
		}
		if err := c.control(op, b); err != nil {
			return buf, err
		}
		if op == opText && isAck(w.cfg.proto, b, id) {
			break
		}
	}
	var cf [8]byte
	_ = c.write(appendFrame(nil, ws.OpClose, append(cf[:0], 0x03, 0xe8))) // 1000 normal closure
	return buf, nil
}

// isAck reports whether frame acknowledges request id.
func isAck(p Protocol, frame []byte, id uint64) bool {
	if p == SocketIO {
		want := fmt.Appendf(nil, "43%d[", id)
		return len(frame) >= len(want) && string(frame[:len(want)]) == string(want)
	}
	var r reply
	if json.Unmarshal(frame, &r) != nil {
		return false
	}
	return (r.Type == "ack" || r.Type == "error") && string(r.ID) == fmt.Sprint(id)
}

func (w *Worker) closeAll() {
	if rs := w.rs.Load(); rs != nil {
		rs.close()
	}
	for i, c := range w.clients {
		if c != nil {
			c.closeChain()
			w.clients[i] = nil
		}
	}
	w.pollers.shutdown()
	if w.api != nil {
		w.api.close()
	}
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
