package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/chatgate/chatgate/bench/hist"
)

// The resume scenario measures connection state recovery (chatgate's
// native protocol: a session token in the welcome, /ws?resume=&offset=,
// a recovered welcome and one recovered event per room; docs/history.md).
//
// A worker holds members (the clients that drop and resume) and the
// publishers of some rooms. Every member keeps a tracker of what it has
// received: the highest offset, and the publisher's sequence number q
// that each message's data carries, so it can tell a missing, doubled or
// reordered message from the sequence alone, whichever way the message
// came (live before the drop, replayed in the recovered event, live
// after). A publisher is the only sender of its room and numbers its
// messages 1, 2, 3...: a member that joined before the first message
// must see exactly 1..last, each once, in order.
//
// Members are read by a goroutine each, not by the epoll pollers of the
// other scenarios: the offset a member resumes from must be read after
// its old connection's reader has stopped, and a goroutine that exits
// says so plainly. The scenario publishes at a modest rate, so the
// pollers' CPU savings do not matter here.

// ResumeCmd carries the parameters of a resume-scenario command. Which
// fields apply depends on the op.
type ResumeCmd struct {
	// r-open: members First..First+Count-1 connect to Addr (a
	// comma-separated list spreads them as dial does), member i joining
	// room i/RoomSize; the worker also hosts the publishers of PubRooms,
	// the publisher of room r having index PubBase+r. A publisher that is
	// cut reconnects to ResumeAddr.
	Addr        string        `json:"addr,omitempty"`
	ResumeAddr  string        `json:"resume_addr,omitempty"`
	Path        string        `json:"path,omitempty"`
	LocalIP     string        `json:"local_ip,omitempty"`
	First       int           `json:"first,omitempty"`
	Count       int           `json:"count,omitempty"`
	RoomSize    int           `json:"room_size,omitempty"`
	PubRooms    []int         `json:"pub_rooms,omitempty"`
	PubBase     int           `json:"pub_base,omitempty"`
	Concurrency int           `json:"concurrency,omitempty"`
	Retries     int           `json:"retries,omitempty"`
	DialTimeout time.Duration `json:"dial_timeout,omitempty"`
	ReadBuf     int           `json:"read_buf,omitempty"`
	Deadline    time.Time     `json:"deadline,omitzero"`

	// r-publish: each publisher sends Rate messages per second of Size
	// bytes of data until r-stop.
	Rate float64 `json:"rate,omitempty"`
	Size int     `json:"size,omitempty"`

	// r-resume: every dropped member reconnects to ResumeAddr,
	// ResumeConcurrency at a time (0: all at once).
	ResumeConcurrency int `json:"resume_concurrency,omitempty"`

	// Roll (r-open): members and publishers resume by themselves whenever
	// their connection ends (a rolling restart), after a random wait
	// within the close frame's reconnect hint (a draining gateway's 1012
	// "…; reconnect=<ms>"; no wait with NoHint or without a hint), at the
	// servers of ResumeAddr in turn.
	Roll   bool `json:"roll,omitempty"`
	NoHint bool `json:"no_hint,omitempty"`

	// r-verify: Finals is the last sequence number each room's publisher
	// sent; members have until Drain to catch up with it.
	Finals map[int]int64 `json:"finals,omitempty"`
	Drain  time.Duration `json:"drain,omitempty"`
}

// ResumeEvent is a worker's report in the resume scenario. Counters are
// cumulative over the run, and every event has them; the other fields
// belong to the event that carries them.
type ResumeEvent struct {
	// Connected members and publishers, and members that failed to.
	Members int `json:"members,omitempty"`
	Pubs    int `json:"pubs,omitempty"`
	Failed  int `json:"failed,omitempty"`
	// Dropped members (by r-drop or from outside); Lost counts members
	// whose connection ended after they resumed.
	Dropped int `json:"dropped,omitempty"`
	Lost    int `json:"lost,omitempty"`
	// Resumed members got a welcome: Recovered with "recovered":true,
	// NotRecovered with false; RoomsNotRecovered counts recovered events
	// with "recovered":false; ResumeFailed members got no welcome at all.
	// IDChanged counts recovered welcomes with another id than before.
	Resumed           int `json:"resumed,omitempty"`
	Recovered         int `json:"recovered,omitempty"`
	NotRecovered      int `json:"not_recovered,omitempty"`
	RoomsNotRecovered int `json:"rooms_not_recovered,omitempty"`
	ResumeFailed      int `json:"resume_failed,omitempty"`
	IDChanged         int `json:"id_changed,omitempty"`
	// Replayed is the messages received in recovered events, Live those
	// received as message events.
	Replayed uint64 `json:"replayed,omitempty"`
	Live     uint64 `json:"live,omitempty"`
	// Publishing: messages sent, error replies, turns skipped while a
	// publisher was cut, and its cuts and reconnections.
	Sent          uint64 `json:"sent,omitempty"`
	PubErrors     uint64 `json:"pub_errors,omitempty"`
	Skipped       uint64 `json:"skipped,omitempty"`
	PubCuts       int    `json:"pub_cuts,omitempty"`
	PubReconnects int    `json:"pub_reconnects,omitempty"`
	// Roll: members' connection ends with close 1012, and with a
	// reconnect hint.
	Restarts int `json:"restarts,omitempty"`
	Hinted   int `json:"hinted,omitempty"`
	// Roll, r-verified: when each member's resume started
	// (CLOCK_MONOTONIC ns), and the waits chosen within the hints.
	Starts []int64         `json:"starts,omitempty"`
	Waited *hist.Histogram `json:"waited,omitempty"`

	// r-dropped: when the first member dropped (CLOCK_MONOTONIC ns).
	DropAt int64 `json:"drop_at,omitempty"`
	// r-resumed: the first resume's start and the last one's end
	// (CLOCK_MONOTONIC ns), and per member the time from the start of its
	// resume to the welcome and to being done (its room's recovered
	// event, or the join ack of a new session).
	First   int64           `json:"first,omitempty"`
	Last    int64           `json:"last,omitempty"`
	Welcome *hist.Histogram `json:"welcome,omitempty"`
	Done    *hist.Histogram `json:"done,omitempty"`
	// Handshake is per member the time from the start of the handshake
	// that succeeded to the welcome (Welcome also counts the waits of
	// refused attempts); Limited the refusals with a Retry-After honoured.
	Handshake *hist.Histogram `json:"handshake,omitempty"`
	Limited   int             `json:"limited,omitempty"`
	// ResumeCPU is the CPU time this worker spent resuming its members.
	ResumeCPU time.Duration `json:"resume_cpu,omitempty"`
	// r-stopped: each hosted room's last sequence number sent, and the
	// sequence numbers the server may or may not have taken: sent
	// without an acknowledgement before the publisher was cut, or
	// refused with an error reply.
	Finals      map[int]int64   `json:"finals,omitempty"`
	Unconfirmed map[int][]int64 `json:"unconfirmed,omitempty"`
	// r-verified: the members' sequences checked.
	Check *ResumeCheck `json:"check,omitempty"`
}

// ResumeCheck is what a worker's members saw, checked against the
// publishers' sequence numbers.
type ResumeCheck struct {
	// Verified members had a connection at the end; Unverified did not
	// (their resume failed or they were lost).
	Verified   int `json:"verified"`
	Unverified int `json:"unverified,omitempty"`
	// Behind counts members that had not received their room's last
	// message when the drain ended (their missing tail is in Missing).
	Behind int `json:"behind,omitempty"`
	// Missing counts, per room and sequence number, the members that
	// never received it although they should have.
	Missing map[int]map[int64]int `json:"missing,omitempty"`
	// Duplicates: a message received twice. OutOfOrder: a message whose
	// offset is not above the previous one, or that arrived after a
	// later one. NoOffset: a room message without an offset.
	// NotReplayed: messages a member was told it would not get back (a
	// recovered:false room or session), which are not counted missing.
	Duplicates  uint64 `json:"duplicates,omitempty"`
	OutOfOrder  uint64 `json:"out_of_order,omitempty"`
	NoOffset    uint64 `json:"no_offset,omitempty"`
	NotReplayed uint64 `json:"not_replayed,omitempty"`
}

// qRange is a run of sequence numbers, both ends included.
type qRange struct{ lo, hi int64 }

// tracker checks one member's sequence of room messages. Its member's
// mutex guards it.
type tracker struct {
	lastOff uint64 // highest offset received: the resume offset
	lastQ   int64  // highest sequence number received
	// resync: the member was told messages are lost (recovered:false);
	// the next message starts a new run instead of making a gap.
	resync bool
	gaps   []qRange

	dups, outOfOrder, noOffset, notReplayed uint64
}

// add records a message with offset off (hasOff false: none) and
// sequence number q.
func (t *tracker) add(off uint64, hasOff bool, q int64) {
	if q <= t.lastQ {
		if t.fill(q) {
			t.outOfOrder++
		} else {
			t.dups++
		}
		return
	}
	switch {
	case t.resync:
		t.notReplayed += uint64(q - t.lastQ - 1)
		t.resync = false
	case q > t.lastQ+1:
		t.gaps = append(t.gaps, qRange{t.lastQ + 1, q - 1})
	}
	t.lastQ = q
	if !hasOff {
		t.noOffset++
		return
	}
	if off <= t.lastOff {
		t.outOfOrder++
		return
	}
	t.lastOff = off
}

// fill removes q from the gaps and reports whether it was in one.
func (t *tracker) fill(q int64) bool {
	for i, g := range t.gaps {
		if q < g.lo || q > g.hi {
			continue
		}
		switch {
		case g.lo == g.hi:
			t.gaps = append(t.gaps[:i], t.gaps[i+1:]...)
		case q == g.lo:
			t.gaps[i].lo++
		case q == g.hi:
			t.gaps[i].hi--
		default:
			t.gaps = append(t.gaps[:i+1], t.gaps[i:]...)
			t.gaps[i].hi = q - 1
			t.gaps[i+1].lo = q + 1
		}
		return true
	}
	return false
}

// lost starts a new run: the server said what came before is not kept,
// and a new log's offsets (another node's, a restarted one's) do not
// compare with the old ones.
func (t *tracker) lost() {
	t.resync = true
	t.lastOff = 0
}

// member is a client that drops and resumes.
type member struct {
	idx, room int
	rolls     int // roll: resumes so far; only the member's resume touches it

	mu    sync.Mutex // guards the fields below
	c     *client    // nil while dropped
	id    string     // connection id of the session
	token string     // session token to resume with
	t     tracker
	done  chan struct{} // closed when the reader of c has stopped
}

// publisher sends its room's numbered messages.
type publisher struct {
	idx, room int

	mu          sync.Mutex // guards the fields below
	c           *client    // nil while cut
	token       string
	q           int64 // last sequence number sent
	pending     map[uint64]int64
	unconfirmed []int64
	buf, frame  []byte
}

// resumeWorker is a worker's part of the resume scenario.
type resumeWorker struct {
	w   *Worker
	cmd ResumeCmd
	ctx context.Context

	members []*member // nil entries failed to connect
	pubs    []*publisher
	open    atomic.Int64 // members connected; set before any reader runs

	resuming atomic.Bool // drops from now on are losses
	closing  atomic.Bool // the run is over: ends are not drops

	pubs0, failed                                         atomic.Int64
	dropped, lost                                         atomic.Int64
	resumed, recovered, notRecovered, roomsNot, resumeErr atomic.Int64
	idChanged                                             atomic.Int64
	replayed, live, sent, pubErrors, skipped              atomic.Uint64
	pubCuts, pubReconnects                                atomic.Int64
	dropAt                                                atomic.Int64
	restarts, hinted                                      atomic.Int64

	pubMu   sync.Mutex
	pubStop context.CancelFunc
	pubDone chan struct{}

	histMu      sync.Mutex
	welcome     hist.Histogram
	done        hist.Histogram
	handshake   hist.Histogram // from the last attempt's start to the welcome
	first, last int64
	limited     atomic.Int64   // refusals with Retry-After honoured
	starts      []int64        // roll: each resume's start
	waited      hist.Histogram // roll: each wait within a hint
}

// progress returns the counters of a tick.
func (rs *resumeWorker) progress() *ResumeEvent {
	return &ResumeEvent{
		Members:           int(rs.open.Load()),
		Pubs:              int(rs.pubs0.Load()),
		Failed:            int(rs.failed.Load()),
		Dropped:           int(rs.dropped.Load()),
		Lost:              int(rs.lost.Load()),
		Resumed:           int(rs.resumed.Load()),
		Recovered:         int(rs.recovered.Load()),
		NotRecovered:      int(rs.notRecovered.Load()),
		RoomsNotRecovered: int(rs.roomsNot.Load()),
		ResumeFailed:      int(rs.resumeErr.Load()),
		Limited:           int(rs.limited.Load()),
		IDChanged:         int(rs.idChanged.Load()),
		Replayed:          rs.replayed.Load(),
		Live:              rs.live.Load(),
		Sent:              rs.sent.Load(),
		PubErrors:         rs.pubErrors.Load(),
		Skipped:           rs.skipped.Load(),
		PubCuts:           int(rs.pubCuts.Load()),
		PubReconnects:     int(rs.pubReconnects.Load()),
		Restarts:          int(rs.restarts.Load()),
		Hinted:            int(rs.hinted.Load()),
	}
}

func (rs *resumeWorker) emit(kind string, r *ResumeEvent) {
	ev := rs.w.counters(kind)
	ev.R = r
	rs.w.emit(ev)
}

// errNoSession is returned when the server's welcome has no session
// token: recovery is off (or the server is not chatgate).
var errNoSession = errors.New(`load: the welcome has no "session": is recovery on?`)

// welcomeMsg is the part of a native welcome the scenario reads.
type welcomeMsg struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Session   string `json:"session"`
	Recovered bool   `json:"recovered"`
}

// joinAck is the part of a native join acknowledgement the scenario reads.
type joinAck struct {
	Type   string          `json:"type"`
	ID     json.RawMessage `json:"id"`
	Code   string          `json:"code"`
	Offset uint64          `json:"offset"`
}

// readWelcome reads the first text frame, which must be a welcome.
func readWelcome(c *client) (welcomeMsg, error) {
	var wm welcomeMsg
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return wm, err
		}
		if err := c.control(op, b); err != nil {
			return wm, err
		}
		if op != opText {
			continue
		}
		if json.Unmarshal(b, &wm) != nil || wm.Type != "welcome" {
			return wm, errNoWelcome
		}
		return wm, nil
	}
}

// join sends the nick and join requests and waits for the join's
// acknowledgement; room messages read meanwhile go to seen (nil: they
// are dropped). It returns the ack's offset.
func join(c *client, nick string, room int, seen func([]byte)) (uint64, error) {
	if err := c.write(appendJoin(nil, Native, nick, room)); err != nil {
		return 0, err
	}
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return 0, err
		}
		if err := c.control(op, b); err != nil {
			return 0, err
		}
		if op != opText {
			continue
		}
		if isMessage(Native, b) {
			if seen != nil {
				seen(b)
			}
			continue
		}
		var a joinAck
		if json.Unmarshal(b, &a) != nil || string(a.ID) != "2" {
			continue
		}
		if a.Type == "error" {
			return 0, fmt.Errorf("%w: join: %s", errRejected, a.Code)
		}
		return a.Offset, nil
	}
}

// withQuery appends a query to path.
func withQuery(path, query string) string {
	if strings.Contains(path, "?") {
		return path + "&" + query
	}
	return path + "?" + query
}

// openAll connects the worker's members and publishers, Concurrency at a
// time, and reports r-opened.
func (rs *resumeWorker) openAll(ctx context.Context) {
	o := rs.cmd
	roomSize := max(o.RoomSize, 1)
	rs.members = make([]*member, o.Count)
	rs.pubs = make([]*publisher, len(o.PubRooms))
	var next atomic.Int64
	var wg sync.WaitGroup
	jobs := o.Count + len(o.PubRooms)
	for g := 0; g < max(o.Concurrency, 1); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= jobs {
					return
				}
				var err error
				for attempt := 0; attempt <= o.Retries; attempt++ {
					if attempt > 0 && !sleepCtx(ctx, time.Duration(attempt)*200*time.Millisecond) {
						break
					}
					if j < o.Count {
						idx := o.First + j
						rs.members[j], err = rs.openMember(ctx, idx, idx/roomSize)
					} else {
						room := o.PubRooms[j-o.Count]
						rs.pubs[j-o.Count], err = rs.openPublisher(ctx, o.PubBase+room, room)
					}
					if err == nil {
						break
					}
				}
				if err != nil {
					rs.w.noteError(err)
					if j < o.Count {
						rs.failed.Add(1)
						rs.w.failed.Add(1)
					}
					continue
				}
				if j < o.Count {
					rs.w.open.Add(1)
				} else {
					rs.pubs0.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Readers start once every member is known, so that "every member
	// dropped" is decided against the final count.
	open := 0
	for _, m := range rs.members {
		if m != nil {
			open++
		}
	}
	rs.open.Store(int64(open))
	for _, m := range rs.members {
		if m != nil {
			go rs.readMember(m, m.c, m.done)
		}
	}
	for _, p := range rs.pubs {
		if p != nil {
			go rs.readPublisher(p, p.c)
		}
	}
	rs.emit(evROpened, rs.progress())
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// openMember connects member idx and joins it to room. Its reader is
// started by openAll.
func (rs *resumeWorker) openMember(ctx context.Context, idx, room int) (*member, error) {
	c, err := connect(ctx, &rs.w.cfg, rs.w, idx, room, pickAddr(rs.cmd.Addr, idx), rs.w.cfg.path)
	if err != nil {
		return nil, err
	}
	wm, err := readWelcome(c)
	if err == nil && wm.Session == "" {
		err = errNoSession
	}
	var off uint64
	if err == nil {
		// Publishing starts after every member has joined: nothing
		// arrives before the ack.
		off, err = join(c, "u"+strconv.Itoa(idx), room, nil)
	}
	if err != nil {
		c.nc.Close()
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Time{})
	// Everything after the join's offset reaches the member live: it is
	// the position to resume from until a message arrives.
	return &member{idx: idx, room: room, c: c, id: wm.ID, token: wm.Session,
		t: tracker{lastOff: off}, done: make(chan struct{})}, nil
}

// openPublisher connects the publisher of room, with client index idx.
func (rs *resumeWorker) openPublisher(ctx context.Context, idx, room int) (*publisher, error) {
	p := &publisher{idx: idx, room: room, pending: make(map[uint64]int64)}
	c, tok, err := rs.dialPublisher(ctx, p, pickAddr(rs.cmd.Addr, idx), "")
	if err != nil {
		return nil, err
	}
	p.c, p.token = c, tok
	return p, nil
}

// dialPublisher connects p, resuming token if it is not empty, and makes
// sure it is in its room. It returns the connection and the session token
// to resume with next time.
func (rs *resumeWorker) dialPublisher(ctx context.Context, p *publisher, addr, token string) (*client, string, error) {
	path := rs.w.cfg.path
	if token != "" {
		// No offset: a publisher does not read its room.
		path = withQuery(path, "resume="+url.QueryEscape(token))
	}
	c, err := connect(ctx, &rs.w.cfg, rs.w, p.idx, p.room, addr, path)
	if err != nil {
		return nil, "", err
	}
	wm, err := readWelcome(c)
	if err == nil && wm.Session == "" {
		err = errNoSession
	}
	if err == nil && !wm.Recovered {
		_, err = join(c, "p"+strconv.Itoa(p.room), p.room, nil)
	}
	if err != nil {
		c.nc.Close()
		return nil, "", err
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, wm.Session, nil
}

// Prefixes of the native events the scenario tells apart.
var (
	recoveredPrefix = []byte(`{"type":"recovered"`)
	qKey            = []byte(`,"q":`)
	offsetKey       = []byte(`,"offset":`)
)

// parseQ returns the sequence number in a message's data.
func parseQ(msg []byte) (int64, bool) {
	i := bytes.Index(msg, dataStart)
	if i < 0 {
		return 0, false
	}
	j := bytes.Index(msg[i:], qKey)
	if j < 0 {
		return 0, false
	}
	q, n := parseInt(msg[i+j+len(qKey):])
	return q, n > 0
}

// parseOffset returns a native room message's offset. The offset is the
// last key but an optional "event", after the data object, whose keys
// the load tool chose and which holds no "offset".
func parseOffset(msg []byte) (uint64, bool) {
	i := bytes.LastIndex(msg, offsetKey)
	if i < 0 {
		return 0, false
	}
	off, n := parseInt(msg[i+len(offsetKey):])
	return uint64(off), n > 0
}

// appendResumeData appends the data object of message q, sent at t,
// padded to size bytes: {"t":…,"k":0,"q":…,"p":"xx…"}. "k" keeps the
// layout parseData reads.
func appendResumeData(dst []byte, t, q int64, size int) []byte {
	start := len(dst)
	dst = append(dst, dataStart...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"k":0,"q":`...)
	dst = strconv.AppendInt(dst, q, 10)
	dst = append(dst, `,"p":"`...)
	for pad := size - (len(dst) - start) - 2; pad > 0; pad-- {
		dst = append(dst, 'x')
	}
	return append(dst, '"', '}')
}

// memberMessage records a room message received by m.
func (rs *resumeWorker) memberMessage(m *member, b []byte) {
	q, ok := parseQ(b)
	if !ok {
		return
	}
	off, hasOff := parseOffset(b)
	m.mu.Lock()
	m.t.add(off, hasOff, q)
	m.mu.Unlock()
	rs.live.Add(1)
}

// recoveredEvent is a native {"type":"recovered",...} event.
type recoveredEvent struct {
	Room      string            `json:"room"`
	Recovered bool              `json:"recovered"`
	Messages  []json.RawMessage `json:"messages"`
}

// memberRecovered records a recovered event received by m.
func (rs *resumeWorker) memberRecovered(m *member, b []byte) {
	var ev recoveredEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		rs.w.noteError(fmt.Errorf("bad recovered event: %w", err))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ev.Recovered {
		rs.roomsNot.Add(1)
		m.t.lost()
		return
	}
	for _, raw := range ev.Messages {
		q, ok := parseQ(raw)
		if !ok {
			continue
		}
		off, hasOff := parseOffset(raw)
		m.t.add(off, hasOff, q)
	}
	rs.replayed.Add(uint64(len(ev.Messages)))
}

// memberFrame handles a text frame received by m after its handshake.
func (rs *resumeWorker) memberFrame(m *member, b []byte) {
	switch {
	case bytes.HasPrefix(b, recoveredPrefix):
		rs.memberRecovered(m, b)
	case isMessage(Native, b):
		rs.memberMessage(m, b)
	case isErrorReply(Native, b):
		rs.w.serverError(b)
	}
}

// readMember reads c, m's connection, until it ends, then counts the
// drop (or the loss, after the resume) and closes done.
func (rs *resumeWorker) readMember(m *member, c *client, done chan struct{}) {
	defer close(done)
	var err error
	var code int
	var hint time.Duration
	for {
		var op ws.OpCode
		var b []byte
		if op, b, err = c.fr.next(); err != nil {
			break
		}
		if op == ws.OpPing {
			_ = c.writeControl(ws.OpPong, b)
		} else if op == ws.OpClose {
			code, hint = closeInfo(b)
			err = errServerClosed
			break
		} else if op == opText {
			rs.memberFrame(m, b)
		}
	}
	_ = c.nc.Close()
	m.mu.Lock()
	if m.c == c {
		m.c = nil
	}
	m.mu.Unlock()
	if rs.closing.Load() || c.closing.Load() {
		return
	}
	if rs.cmd.Roll {
		rs.dropped.Add(1)
		if code == closeRestart {
			rs.restarts.Add(1)
		}
		if hint > 0 {
			rs.hinted.Add(1)
		}
		if rs.cmd.NoHint {
			hint = 0
		}
		go rs.roll(m, hint)
		return
	}
	if rs.resuming.Load() {
		rs.lost.Add(1)
		rs.w.noteError(fmt.Errorf("connection lost after resuming: %w", err))
		return
	}
	rs.dropAt.CompareAndSwap(0, Mono())
	if rs.dropped.Add(1) == rs.open.Load() {
		r := rs.progress()
		r.DropAt = rs.dropAt.Load()
		rs.emit(evRDropped, r)
	}
}

// roll resumes m after its connection ended in a rolling restart: after a
// random wait within hint, at the next server of ResumeAddr.
func (rs *resumeWorker) roll(m *member, hint time.Duration) {
	wait := jitter(hint)
	if hint > 0 {
		rs.histMu.Lock()
		rs.waited.Record(uint64(wait))
		rs.histMu.Unlock()
	}
	if !sleepCtx(rs.ctx, wait) || rs.closing.Load() {
		return
	}
	m.rolls++
	rs.histMu.Lock()
	rs.starts = append(rs.starts, Mono())
	rs.histMu.Unlock()
	rs.resumeOne(rs.ctx, m, rs.cmd.ResumeAddr)
}

// abort closes c's socket with a TCP reset (SO_LINGER 0), without a
// WebSocket close frame: to the server, a dropped connection.
func abort(c *client) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

// dropAll resets every member's connection at once. r-dropped follows
// from the readers, once every one has stopped.
func (rs *resumeWorker) dropAll() {
	if rs.open.Load() == 0 {
		rs.emit(evRDropped, rs.progress())
		return
	}
	rs.dropAt.CompareAndSwap(0, Mono())
	for _, m := range rs.members {
		if m == nil {
			continue
		}
		m.mu.Lock()
		c := m.c
		m.mu.Unlock()
		if c != nil {
			abort(c)
		}
	}
}

// resumeAll resumes every dropped member against addr, conc at a time
// (0: all at once), and reports r-resumed.
func (rs *resumeWorker) resumeAll(ctx context.Context, addr string, conc int) {
	rs.resuming.Store(true)
	cpu0 := selfCPU()
	var sem chan struct{}
	if conc > 0 {
		sem = make(chan struct{}, conc)
	}
	var wg sync.WaitGroup
	for _, m := range rs.members {
		if m == nil {
			continue
		}
		// The old reader has stopped (it counted the drop), so the
		// tracker holds everything the member will ever get from the
		// old connection.
		m.mu.Lock()
		done := m.done
		m.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sem != nil {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
			}
			rs.resumeOne(ctx, m, addr)
		}()
	}
	wg.Wait()
	r := rs.progress()
	r.ResumeCPU = selfCPU() - cpu0
	rs.histMu.Lock()
	r.First, r.Last = rs.first, rs.last
	r.Welcome, r.Done, r.Handshake = new(hist.Histogram), new(hist.Histogram), new(hist.Histogram)
	r.Handshake.Merge(&rs.handshake)
	r.Welcome.Merge(&rs.welcome)
	r.Done.Merge(&rs.done)
	rs.histMu.Unlock()
	rs.emit(evRResumed, r)
}

// maxLimited bounds the refusals with a Retry-After one resume honours.
const maxLimited = 100

// resumeOne reconnects m with its session token and last offset, and
// reads up to its room's recovered event (or, for a new session, joins
// its room again).
func (rs *resumeWorker) resumeOne(ctx context.Context, m *member, addr string) {
	m.mu.Lock()
	path := withQuery(rs.w.cfg.path, "resume="+url.QueryEscape(m.token)+"&offset="+strconv.FormatUint(m.t.lastOff, 10))
	m.mu.Unlock()
	start := Mono()
	var c *client
	var err error
	var dialAt int64 // the start of the handshake that succeeded
	limited := 0
	retries, pause := rs.cmd.Retries, func(a int) time.Duration { return time.Duration(a) * 200 * time.Millisecond }
	if rs.cmd.Roll {
		// A node going down refuses, then is gone for a while: try the
		// next one soon.
		retries, pause = max(retries, reconnectAttempts), backoff
	}
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 && !sleepCtx(ctx, pause(attempt)) {
			break
		}
		dialAt = Mono()
		// Each retry at the next server of the list.
		if c, err = connect(ctx, &rs.w.cfg, rs.w, m.idx, m.room, pickAddr(addr, m.idx+m.rolls+attempt), path); err == nil {
			break
		}
		// A gateway over its handshake rate says when to come back:
		// honour it, plus up to a second at random (as /client.js
		// does), without using up an attempt; at most maxLimited times.
		var re *RefusedError
		if errors.As(err, &re) && limited < maxLimited {
			limited++
			rs.limited.Add(1)
			if !sleepCtx(ctx, re.RetryAfter+time.Duration(rand.Int64N(int64(time.Second)))) {
				break
			}
			attempt--
		}
	}
	var wm welcomeMsg
	var welcomeAt int64
	if err == nil {
		wm, err = readWelcome(c)
		welcomeAt = Mono()
	}
	if err == nil && wm.Recovered {
		err = rs.awaitRecovered(c, m, wm)
	} else if err == nil {
		err = rs.rejoin(c, m, wm)
	}
	if err != nil {
		if c != nil {
			c.nc.Close()
		}
		rs.resumeErr.Add(1)
		rs.w.noteError(fmt.Errorf("resume: %w", err))
		return
	}
	doneAt := Mono()
	_ = c.nc.SetDeadline(time.Time{})
	rs.histMu.Lock()
	if rs.first == 0 || start < rs.first {
		rs.first = start
	}
	rs.last = max(rs.last, doneAt)
	rs.welcome.Record(uint64(welcomeAt - start))
	rs.handshake.Record(uint64(welcomeAt - dialAt))
	rs.done.Record(uint64(doneAt - start))
	rs.histMu.Unlock()
	done := make(chan struct{})
	m.mu.Lock()
	m.c, m.done = c, done
	m.mu.Unlock()
	rs.resumed.Add(1)
	go rs.readMember(m, c, done)
}

// awaitRecovered reads a recovered session's frames up to its room's
// recovered event.
func (rs *resumeWorker) awaitRecovered(c *client, m *member, wm welcomeMsg) error {
	rs.recovered.Add(1)
	if wm.ID != m.id {
		rs.idChanged.Add(1)
		rs.w.noteError(fmt.Errorf("recovered welcome with id %q, was %q", wm.ID, m.id))
	}
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return fmt.Errorf("waiting for the recovered event: %w", err)
		}
		if err := c.control(op, b); err != nil {
			return err
		}
		if op != opText {
			continue
		}
		rs.memberFrame(m, b)
		if bytes.HasPrefix(b, recoveredPrefix) {
			return nil
		}
	}
}

// rejoin joins the room again on a new session (the welcome said
// "recovered":false): the messages in between are lost by design.
func (rs *resumeWorker) rejoin(c *client, m *member, wm welcomeMsg) error {
	rs.notRecovered.Add(1)
	m.mu.Lock()
	m.id, m.token = wm.ID, wm.Session
	m.t.lost()
	m.mu.Unlock()
	_, err := join(c, "u"+strconv.Itoa(m.idx), m.room, func(b []byte) { rs.memberMessage(m, b) })
	return err
}

// readPublisher reads p's acknowledgements on c until c ends, then
// reconnects p (to ResumeAddr) unless the run is over, and reads on.
func (rs *resumeWorker) readPublisher(p *publisher, c *client) {
	for cuts := 1; ; cuts++ {
		hint, err := rs.readAcks(p, c)
		_ = c.nc.Close()
		p.mu.Lock()
		p.c = nil
		// Sent, not acknowledged: the server may or may not have it.
		for _, q := range p.pending {
			p.unconfirmed = append(p.unconfirmed, q)
		}
		clear(p.pending)
		token := p.token
		p.mu.Unlock()
		if rs.closing.Load() || c.closing.Load() || rs.ctx.Err() != nil {
			return
		}
		rs.pubCuts.Add(1)
		pause := 100 * time.Millisecond
		if rs.cmd.Roll {
			// Part of the run: the server's hint says how long to spread.
			if !rs.cmd.NoHint {
				pause = jitter(hint)
			}
		} else {
			rs.w.noteError(fmt.Errorf("a publisher was cut: %w", err))
		}
		c = nil
		for a := 0; c == nil; a++ {
			if a > 0 {
				pause = min(backoff(a), 100*time.Millisecond)
			}
			if !sleepCtx(rs.ctx, pause) || rs.closing.Load() {
				return
			}
			addr := pickAddr(rs.cmd.ResumeAddr, p.idx)
			if rs.cmd.Roll {
				addr = pickAddr(rs.cmd.ResumeAddr, p.idx+cuts+a)
			}
			nc, tok, err := rs.dialPublisher(rs.ctx, p, addr, token)
			if re := (*RefusedError)(nil); errors.As(err, &re) {
				rs.limited.Add(1)
				if !sleepCtx(rs.ctx, re.RetryAfter+time.Duration(rand.Int64N(int64(time.Second)))) {
					return
				}
			}
			if err != nil {
				continue
			}
			p.mu.Lock()
			p.c, p.token, c = nc, tok, nc
			p.mu.Unlock()
			rs.pubReconnects.Add(1)
		}
	}
}

// readAcks reads c, a publisher's connection, until it ends, and returns
// why, with the reconnect hint of the server's close frame.
func (rs *resumeWorker) readAcks(p *publisher, c *client) (time.Duration, error) {
	for {
		op, b, err := c.fr.next()
		if err != nil {
			return 0, err
		}
		switch op {
		case ws.OpPing:
			_ = c.writeControl(ws.OpPong, b)
			continue
		case ws.OpClose:
			_, hint := closeInfo(b)
			return hint, errServerClosed
		case opText:
		default:
			continue
		}
		var r reply
		if !bytes.Contains(b, []byte(`"id":`)) || json.Unmarshal(b, &r) != nil {
			continue
		}
		id, err := strconv.ParseUint(string(r.ID), 10, 64)
		if err != nil {
			continue
		}
		p.mu.Lock()
		q, ok := p.pending[id]
		delete(p.pending, id)
		if ok && r.Type == "error" {
			// Refused: the server does not have it.
			p.unconfirmed = append(p.unconfirmed, q)
		}
		p.mu.Unlock()
		if ok && r.Type == "error" {
			rs.pubErrors.Add(1)
			rs.w.serverError(b)
		}
	}
}

// send publishes p's next message, unless p is cut.
func (rs *resumeWorker) send(p *publisher, size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == nil {
		rs.skipped.Add(1)
		return
	}
	q := p.q + 1
	// Request ids above the nick (1) and join (2) ones, never reused.
	id := uint64(q) + 10
	b := append(p.buf[:0], `{"type":"send","id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"room":"`...)
	b = roomName(b, p.room)
	b = append(b, `","data":`...)
	b = appendResumeData(b, Mono(), q, size)
	b = append(b, '}')
	p.buf = b
	p.frame = appendFrame(p.frame[:0], opText, b)
	if err := p.c.write(p.frame); err != nil {
		// Not written: the number is used by the next message. The
		// reader sees the end and reconnects.
		rs.skipped.Add(1)
		return
	}
	p.q = q
	p.pending[id] = q
	rs.sent.Add(1)
}

// startPublishing makes every publisher send rate messages per second,
// in turn, until stopPublishing.
func (rs *resumeWorker) startPublishing(ctx context.Context, rate float64, size int) {
	var pubs []*publisher
	for _, p := range rs.pubs {
		if p != nil {
			pubs = append(pubs, p)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	rs.pubMu.Lock()
	rs.pubStop, rs.pubDone = cancel, done
	rs.pubMu.Unlock()
	go func() {
		defer close(done)
		if len(pubs) == 0 || rate <= 0 {
			return
		}
		interval := time.Duration(float64(time.Second) / (rate * float64(len(pubs))))
		start := time.Now()
		t := time.NewTimer(0)
		defer t.Stop()
		for i := 0; ; i++ {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			} else if ctx.Err() != nil {
				return
			}
			rs.send(pubs[i%len(pubs)], size)
		}
	}()
}

// stopPublishing stops the publishers, waits (5 s at most) for the
// acknowledgements of what they sent, and reports r-stopped.
func (rs *resumeWorker) stopPublishing(ctx context.Context) {
	rs.pubMu.Lock()
	stop, done := rs.pubStop, rs.pubDone
	rs.pubMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	settled := func() bool {
		for _, p := range rs.pubs {
			if p == nil {
				continue
			}
			p.mu.Lock()
			n := len(p.pending)
			p.mu.Unlock()
			if n > 0 {
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(5 * time.Second); !settled() && time.Now().Before(end); {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			break
		}
	}
	r := rs.progress()
	r.Finals = make(map[int]int64)
	r.Unconfirmed = make(map[int][]int64)
	for _, p := range rs.pubs {
		if p == nil {
			continue
		}
		p.mu.Lock()
		r.Finals[p.room] = p.q
		un := append([]int64(nil), p.unconfirmed...)
		for _, q := range p.pending {
			un = append(un, q)
		}
		p.mu.Unlock()
		if len(un) > 0 {
			r.Unconfirmed[p.room] = un
		}
	}
	rs.emit(evRStopped, r)
}

// verify waits until every connected member has its room's last message
// or drain passes, then checks every member and reports r-verified.
func (rs *resumeWorker) verify(ctx context.Context, finals map[int]int64, drain time.Duration) {
	caughtUp := func() bool {
		for _, m := range rs.members {
			if m == nil {
				continue
			}
			m.mu.Lock()
			behind := m.c != nil && m.t.lastQ < finals[m.room]
			m.mu.Unlock()
			if behind {
				return false
			}
		}
		return true
	}
	for end := time.Now().Add(drain); !caughtUp() && time.Now().Before(end); {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			break
		}
	}
	ck := &ResumeCheck{Missing: make(map[int]map[int64]int)}
	miss := func(room int, g qRange) {
		mm := ck.Missing[room]
		if mm == nil {
			mm = make(map[int64]int)
			ck.Missing[room] = mm
		}
		for q := g.lo; q <= g.hi; q++ {
			mm[q]++
		}
	}
	for _, m := range rs.members {
		if m == nil {
			continue
		}
		m.mu.Lock()
		t := &m.t
		if m.c == nil {
			ck.Unverified++
		} else {
			ck.Verified++
			for _, g := range t.gaps {
				miss(m.room, g)
			}
			if f := finals[m.room]; t.lastQ < f {
				if t.resync {
					// Told it lost messages and none came since.
					t.notReplayed += uint64(f - t.lastQ)
				} else {
					ck.Behind++
					miss(m.room, qRange{t.lastQ + 1, f})
				}
			}
		}
		ck.Duplicates += t.dups
		ck.OutOfOrder += t.outOfOrder
		ck.NoOffset += t.noOffset
		ck.NotReplayed += t.notReplayed
		m.mu.Unlock()
	}
	r := rs.progress()
	r.Check = ck
	if rs.cmd.Roll {
		rs.histMu.Lock()
		r.Starts = append([]int64(nil), rs.starts...)
		r.First, r.Last = rs.first, rs.last
		r.Welcome, r.Done, r.Waited, r.Handshake = new(hist.Histogram), new(hist.Histogram), new(hist.Histogram), new(hist.Histogram)
		r.Welcome.Merge(&rs.welcome)
		r.Done.Merge(&rs.done)
		r.Waited.Merge(&rs.waited)
		r.Handshake.Merge(&rs.handshake)
		rs.histMu.Unlock()
	}
	rs.emit(evRVerified, r)
}

// close ends every connection of the scenario; ends from now on are not
// drops.
func (rs *resumeWorker) close() {
	rs.closing.Store(true)
	rs.pubMu.Lock()
	if rs.pubStop != nil {
		rs.pubStop()
	}
	rs.pubMu.Unlock()
	for _, m := range rs.members {
		if m == nil {
			continue
		}
		m.mu.Lock()
		if m.c != nil {
			m.c.close()
		}
		m.mu.Unlock()
	}
	for _, p := range rs.pubs {
		if p == nil {
			continue
		}
		p.mu.Lock()
		if p.c != nil {
			p.c.close()
		}
		p.mu.Unlock()
	}
}

// serveResume acts on one of the resume scenario's commands other than
// r-open (see openResume); long ones run in goroutines counted by busy.
func (w *Worker) serveResume(ctx context.Context, c Command, busy *sync.WaitGroup) {
	rs := w.rs.Load()
	if c.R == nil || rs == nil {
		return
	}
	run := func(f func()) {
		busy.Add(1)
		go func() {
			defer busy.Done()
			f()
		}()
	}
	switch c.Op {
	case opRPublish:
		rs.startPublishing(ctx, c.R.Rate, c.R.Size)
	case opRDrop:
		rs.dropAll()
	case opRResume:
		run(func() { rs.resumeAll(ctx, rs.cmd.ResumeAddr, c.R.ResumeConcurrency) })
	case opRStop:
		run(func() { rs.stopPublishing(ctx) })
	case opRVerify:
		run(func() { rs.verify(ctx, c.R.Finals, c.R.Drain) })
	}
}

// openResume starts the resume scenario's r-open: it configures the
// worker and connects its members and publishers in a goroutine counted
// by busy.
func (w *Worker) openResume(ctx context.Context, o ResumeCmd, busy *sync.WaitGroup) {
	w.cfg = dialConfig{
		addr:    o.Addr,
		path:    o.Path,
		proto:   Native,
		local:   net.ParseIP(o.LocalIP),
		timeout: o.DialTimeout,
		readBuf: max(o.ReadBuf, 256),
	}
	if w.cfg.timeout <= 0 {
		w.cfg.timeout = 10 * time.Second
	}
	if w.cfg.path == "" {
		w.cfg.path = Native.DefaultPath()
	}
	if o.ResumeAddr == "" {
		o.ResumeAddr = o.Addr
	}
	rs := &resumeWorker{w: w, cmd: o, ctx: ctx}
	w.rs.Store(rs)
	busy.Add(1)
	go func() {
		defer busy.Done()
		rs.openAll(ctx)
	}()
}
