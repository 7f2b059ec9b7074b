package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// startServer runs an embedded NATS server on a loopback port (port 0: a
// random one).
func startServer(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// recorder is a Handler that records what it is told.
type recorder struct {
	mu       sync.Mutex
	rooms    map[string][]string // room → data, in arrival order
	directs  []string            // "to data"
	presence []string            // "join|leave room id count"
}

func newRecorder() *recorder { return &recorder{rooms: make(map[string][]string)} }

func (r *recorder) RoomMessage(m *Message) {
	r.mu.Lock()
	r.rooms[string(m.Room)] = append(r.rooms[string(m.Room)], string(m.Data))
	r.mu.Unlock()
}

func (r *recorder) Direct(m *Message) {
	r.mu.Lock()
	r.directs = append(r.directs, string(m.To)+" "+string(m.Data))
	r.mu.Unlock()
}

func (r *recorder) User(m *Message) {
	r.mu.Lock()
	r.directs = append(r.directs, "user:"+string(m.To)+" "+m.Event+" "+string(m.Data))
	r.mu.Unlock()
}

func (r *recorder) All(m *Message) {
	r.mu.Lock()
	r.directs = append(r.directs, "all: "+m.Event+" "+string(m.Data))
	r.mu.Unlock()
}

func (r *recorder) Presence(p *Presence) {
	ev := "leave"
	if p.Join {
		ev = "join"
	}
	r.mu.Lock()
	r.presence = append(r.presence, fmt.Sprintf("%s %s %s %d", ev, p.Room, p.ID, p.Count))
	r.mu.Unlock()
}

func (r *recorder) room(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rooms[name])
}

func (r *recorder) dms() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.directs)
}

func (r *recorder) pres() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.presence)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Test timing: fast heartbeats so node death is detected in well under a
// second.
const (
	testHB  = 100 * time.Millisecond
	testTTL = 500 * time.Millisecond
)

func newNode(t testing.TB, url, tag string) (*Cluster, *recorder) {
	t.Helper()
	r := newRecorder()
	c, err := New(Config{URL: url, Node: tag, Heartbeat: testHB, TTL: testTTL, ReconnectWait: 50 * time.Millisecond, Logger: quiet}, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, r
}

// eventually polls cond until it holds or d passes, and returns how long
// it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// meshed waits until every node knows every other one.
func meshed(t testing.TB, nodes ...*Cluster) {
	t.Helper()
	eventually(t, 2*time.Second, "nodes see each other", func() bool {
		for _, c := range nodes {
			if c.Stats().RemoteNodes != len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

// msg is a message of the server (no sender) to room; data must be JSON.
func msg(room, data string) *Message {
	return &Message{Room: []byte(room), Data: []byte(data), TS: 1}
}

func TestRoomFanoutExactlyOnceInOrder(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, rb := newNode(t, s.ClientURL(), "b")
	c, rc := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)

	// A sender with a local member too: NoEcho must keep its own
	// publishes from coming back.
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "lobby")
	b.LocalOpened("b000001", "bob", "")
	b.LocalJoined("b000001", "lobby")
	c.LocalOpened("c000001", "cy", "")
	c.LocalJoined("c000001", "lobby")
	eventually(t, time.Second, "a sees b and c in lobby", func() bool { return a.RemoteCount([]byte("lobby")) == 2 })

	const n = 1000
	for i := range n {
		if !a.PublishRoom(msg("lobby", fmt.Sprint(i))) {
			t.Fatalf("publish %d not queued", i)
		}
	}
	for name, r := range map[string]*recorder{"b": rb, "c": rc} {
		eventually(t, 5*time.Second, name+" receives all", func() bool { return len(r.room("lobby")) >= n })
		time.Sleep(50 * time.Millisecond) // anything extra would be a duplicate
		got := r.room("lobby")
		if len(got) != n {
			t.Fatalf("%s got %d messages, want %d", name, len(got), n)
		}
		for i, d := range got {
			if d != fmt.Sprint(i) {
				t.Fatalf("%s: message %d is %q: out of order", name, i, d)
			}
		}
	}
	if got := ra.room("lobby"); len(got) != 0 {
		t.Fatalf("sender received its own %d messages", len(got))
	}
	if st := a.Stats(); st.Published != n || st.Undelivered != 0 {
		t.Fatalf("sender stats %+v", st)
	}
}

func TestInterest(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	b, rb := newNode(t, s.ClientURL(), "b")
	c, rc := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)

	subj := a.roomPrefix + roomToken([]byte("only b"))
	subsFor := func() int {
		sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Test: subj})
		if err != nil {
			t.Fatal(err)
		}
		return len(sz.Subs)
	}
	if n := subsFor(); n != 0 {
		t.Fatalf("%d subscriptions before any member", n)
	}
	b.LocalOpened("b000001", "", "")
	b.LocalJoined("b000001", "only b")
	eventually(t, time.Second, "a sees the join", func() bool { return a.RemoteCount([]byte("only b")) == 1 })
	if n := subsFor(); n != 1 {
		t.Fatalf("%d subscriptions with one node interested, want 1", n)
	}
	for i := range 10 {
		a.PublishRoom(msg("only b", fmt.Sprint(i)))
	}
	eventually(t, 2*time.Second, "b receives", func() bool { return len(rb.room("only b")) == 10 })
	if got := rc.room("only b"); len(got) != 0 {
		t.Fatalf("c without members received %d messages", len(got))
	}
	if st := c.Stats(); st.Received != 0 || st.Subscriptions != 0 {
		t.Fatalf("c stats %+v", st)
	}

	// The last local member leaving withdraws the interest.
	b.LocalLeft("b000001", "only b")
	eventually(t, time.Second, "b unsubscribes", func() bool { return subsFor() == 0 })
	eventually(t, time.Second, "a sees the leave", func() bool { return a.RemoteCount([]byte("only b")) == 0 })
	before := b.Stats().Received
	a.PublishRoom(msg("only b", `"late"`))
	time.Sleep(100 * time.Millisecond)
	if b.Stats().Received != before {
		t.Fatal("b received a message after its last member left")
	}
}

func TestDirectRouting(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, rb := newNode(t, s.ClientURL(), "b")
	c, rc := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)

	b.LocalOpened("b000007", "bob", "")
	eventually(t, time.Second, "a knows b000007", func() bool {
		n, ok := a.NodeOf([]byte("b000007"))
		return ok && n == "b"
	})
	if _, ok := a.NodeOf([]byte("b000008")); ok {
		t.Fatal("unknown id resolved")
	}
	node, _ := a.NodeOf([]byte("b000007"))
	if !a.PublishDirect(node, &Message{To: []byte("b000007"), From: "a000001", Data: []byte(`"psst"`)}) {
		t.Fatal("direct not queued")
	}
	eventually(t, time.Second, "b gets the DM", func() bool { return len(rb.dms()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := rb.dms(); len(got) != 1 || got[0] != `b000007 "psst"` {
		t.Fatalf("b got %q", got)
	}
	if len(ra.dms())+len(rc.dms()) != 0 {
		t.Fatal("DM reached another node")
	}
	if a.PublishDirect("a", &Message{To: []byte("a000001")}) {
		t.Fatal("direct to self accepted")
	}
}

func TestReplicaConvergence(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	c, _ := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "r1")

	b.LocalOpened("b000001", "bob", "u-bob")
	b.LocalJoined("b000001", "r1")
	b.LocalJoined("b000001", "r2")
	c.LocalOpened("c000001", "cy", "")
	c.LocalJoined("c000001", "r1")
	c.LocalNick("c000001", "cyril")

	took := eventually(t, time.Second, "counts, members and rooms converge", func() bool {
		rooms := map[string]int{}
		a.RemoteRooms(rooms)
		ms := a.RemoteMembers([]byte("r1"), nil)
		slices.SortFunc(ms, func(x, y Member) int { return strings.Compare(x.ID, y.ID) })
		return a.RemoteCount([]byte("r1")) == 2 && rooms["r1"] == 2 && rooms["r2"] == 1 && len(rooms) == 2 &&
			len(ms) == 2 && ms[0] == Member{"b000001", "bob", "u-bob"} && ms[1] == Member{"c000001", "cyril", ""}
	})
	t.Logf("joins converged in %v", took)
	// b's and c's joins race: whichever a applies second counts 3.
	eventually(t, time.Second, "presence on a", func() bool {
		p := ra.pres()
		return len(p) == 2 &&
			(slices.Contains(p, "join r1 b000001 2") && slices.Contains(p, "join r1 c000001 3") ||
				slices.Contains(p, "join r1 c000001 2") && slices.Contains(p, "join r1 b000001 3"))
	})
	if n := b.RemoteCount([]byte("r1")); n != 2 {
		t.Fatalf("b sees %d remote members of r1, want 2 (a and c)", n)
	}

	b.LocalLeft("b000001", "r2")
	c.LocalClosed("c000001", false)
	took = eventually(t, time.Second, "leave and close converge", func() bool {
		rooms := map[string]int{}
		a.RemoteRooms(rooms)
		_, cKnown := a.NodeOf([]byte("c000001"))
		return rooms["r1"] == 1 && len(rooms) == 1 && !cKnown
	})
	t.Logf("leaves converged in %v", took)
	eventually(t, time.Second, "leave presence on a", func() bool {
		return slices.Contains(ra.pres(), "leave r1 c000001 2")
	})
	// Exactly once each.
	counts := map[string]int{}
	for _, p := range ra.pres() {
		counts[p]++
	}
	for p, n := range counts {
		if n != 1 {
			t.Fatalf("presence %q delivered %d times", p, n)
		}
	}
	// b is in r2 no more and had no local member there: nothing for c.
	if st := a.Stats(); st.RemoteSessions != 1 {
		t.Fatalf("a stats %+v", st)
	}
}

func TestLateJoinerSynchronises(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	for i := range 300 {
		id := fmt.Sprintf("a%06d", i)
		a.LocalOpened(id, "n", "")
		a.LocalJoined(id, fmt.Sprintf("room%d", i%7))
	}
	d, _ := newNode(t, s.ClientURL(), "d")
	took := eventually(t, time.Second+testHB, "d learns a's 300 sessions", func() bool {
		rooms := map[string]int{}
		d.RemoteRooms(rooms)
		return d.Stats().RemoteSessions == 300 && len(rooms) == 7 && rooms["room0"] == 43
	})
	t.Logf("late joiner synchronised in %v", took)
}

func TestNodeDeath(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	c, _ := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "r")
	c.LocalOpened("c000001", "cy", "")
	c.LocalJoined("c000001", "r")
	eventually(t, time.Second, "a sees c", func() bool { return a.RemoteCount([]byte("r")) == 1 })

	c.noBye = true // die without a goodbye
	c.Close()
	died := time.Now()
	eventually(t, testTTL+2*testHB+time.Second, "a and b drop c", func() bool {
		_, bKnows := b.NodeOf([]byte("c000001"))
		return a.RemoteCount([]byte("r")) == 0 && b.RemoteCount([]byte("r")) == 1 && !bKnows && a.Stats().RemoteNodes == 1
	})
	if took := time.Since(died); took > testTTL+3*testHB {
		t.Fatalf("dropped after %v, bound is TTL+heartbeat", took)
	}
	if !slices.Contains(ra.pres(), "leave r c000001 1") {
		t.Fatalf("a's handler not told: %q", ra.pres())
	}

	// A graceful close is seen at once.
	b.LocalOpened("b000001", "", "")
	b.LocalJoined("b000001", "r")
	eventually(t, time.Second, "a sees b", func() bool { return a.RemoteCount([]byte("r")) == 1 })
	b.Close()
	eventually(t, testTTL/2, "a drops b on its goodbye", func() bool { return a.RemoteCount([]byte("r")) == 0 })
}

func TestRestartedNodeResynchronised(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	meshed(t, a, b)
	a.LocalOpened("a000001", "", "")
	a.LocalJoined("a000001", "r")
	b.LocalOpened("b000001", "old", "")
	b.LocalJoined("b000001", "r")
	b.LocalJoined("b000001", "gone")
	eventually(t, time.Second, "a sees b", func() bool { return a.RemoteCount([]byte("r")) == 1 })

	// Same tag, new process (new epoch), started before the TTL expired.
	b.noBye = true
	b.Close()
	b2, _ := newNode(t, s.ClientURL(), "b")
	b2.LocalOpened("b000001", "new", "")
	b2.LocalJoined("b000001", "r")
	eventually(t, time.Second, "a mirrors the restarted node", func() bool {
		ms := a.RemoteMembers([]byte("r"), nil)
		rooms := map[string]int{}
		a.RemoteRooms(rooms)
		return len(ms) == 1 && ms[0].Nick == "new" && len(rooms) == 1
	})
	eventually(t, time.Second, "presence: old leave, new join", func() bool {
		p := ra.pres()
		return slices.Contains(p, "leave r b000001 1") && slices.Contains(p, "join r b000001 2")
	})
	if st := a.Stats(); st.RemoteNodes != 1 || st.RemoteSessions != 1 {
		t.Fatalf("a stats %+v", st)
	}
}

func TestGapTriggersResync(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	meshed(t, a, b)
	b.LocalOpened("b000001", "", "")
	eventually(t, time.Second, "a knows b000001", func() bool { _, ok := a.NodeOf([]byte("b000001")); return ok })

	// Lose one state event: b's sequence advances but nothing is sent.
	b.local.mu.Lock()
	b.local.seq++
	s2 := b.sessionLocked("b000002")
	s2.rooms = append(s2.rooms, "r")
	b.local.rooms["r"]++
	b.local.mu.Unlock()
	resyncs := a.Stats().Resyncs
	eventually(t, time.Second, "a repairs the gap from a snapshot", func() bool {
		_, ok := a.NodeOf([]byte("b000002"))
		return ok && a.RemoteCount([]byte("r")) == 1
	})
	if a.Stats().Resyncs == resyncs {
		t.Fatal("no resync counted")
	}
}

// clientGoroutines counts goroutines running NATS client or cluster code.
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nats-io/nats.go.") || strings.Contains(g, "chatgate/cluster.(*Cluster)") {
			count++
		}
	}
	return count
}

func TestBrokerOutage(t *testing.T) {
	s := startServer(t, 0)
	url := s.ClientURL()
	before := runtime.NumGoroutine()
	baseClients := clientGoroutines()

	a, _ := newNode(t, url, "a")
	b, rb := newNode(t, url, "b")
	meshed(t, a, b)
	a.LocalOpened("a000001", "", "")
	a.LocalJoined("a000001", "r")
	b.LocalOpened("b000001", "", "")
	b.LocalJoined("b000001", "r")
	eventually(t, time.Second, "a sees b", func() bool { return a.RemoteCount([]byte("r")) == 1 })
	connected := clientGoroutines()

	serverPort := s.Addr().(*net.TCPAddr).Port
	sent := 0
	for cycle := range 3 {
		stopServer(s)
		eventually(t, 2*time.Second, "a notices the outage", func() bool { return !a.Stats().Connected })
		und := a.Stats().Undelivered
		for i := range 5 {
			if !a.PublishRoom(msg("r", fmt.Sprintf(`"lost-%d-%d"`, cycle, i))) {
				t.Fatal("publish refused while NATS is down: it must be queued and counted")
			}
		}
		eventually(t, time.Second, "outage publishes counted", func() bool { return a.Stats().Undelivered == und+5 })
		// State changes during the outage reach peers after it, by resync.
		b.LocalOpened(fmt.Sprintf("b1%05d", cycle), "", "")

		s = startServer(t, serverPort)
		eventually(t, 3*time.Second, "both reconnect", func() bool { return a.Stats().Connected && b.Stats().Connected })
		eventually(t, 2*time.Second, "a resynchronises b", func() bool {
			_, ok := a.NodeOf([]byte(fmt.Sprintf("b1%05d", cycle)))
			return ok && a.RemoteCount([]byte("r")) == 1
		})
		eventually(t, 2*time.Second, "b resubscribed", func() bool {
			sz, _ := s.Subsz(&server.SubszOptions{Subscriptions: true, Test: a.roomPrefix + roomToken([]byte("r"))})
			return len(sz.Subs) == 2
		})
		a.PublishRoom(msg("r", fmt.Sprintf(`"after-%d"`, cycle)))
		sent++
		eventually(t, 2*time.Second, "delivery resumes", func() bool { return len(rb.room("r")) == sent })
		for _, d := range rb.room("r") {
			if strings.HasPrefix(d, `"lost`) {
				t.Fatalf("an outage publish was delivered late: %q", d)
			}
		}
		if n := clientGoroutines(); n > connected+2 {
			t.Fatalf("cycle %d: %d client goroutines, %d after first connect", cycle, n, connected)
		}
	}
	if st := a.Stats(); st.Reconnects < 3 || st.Undelivered != 15 {
		t.Fatalf("a stats %+v", st)
	}
	a.Close()
	b.Close()
	stopServer(s)
	eventually(t, 2*time.Second, "no goroutine left behind", func() bool {
		return clientGoroutines() <= baseClients && runtime.NumGoroutine() <= before+2
	})
}

func TestStartWithoutBroker(t *testing.T) {
	// Reserve a port, free it, and start the broker there only later.
	s := startServer(t, 0)
	port := s.Addr().(*net.TCPAddr).Port
	url := s.ClientURL()
	stopServer(s)

	a, _ := newNode(t, url, "a")
	if a.Stats().Connected {
		t.Fatal("connected to nothing")
	}
	a.LocalOpened("a000001", "", "")
	a.LocalJoined("a000001", "r")
	s = startServer(t, port)
	defer stopServer(s)
	b, _ := newNode(t, url, "b")
	eventually(t, 3*time.Second, "b learns a's state once a connects", func() bool { return b.RemoteCount([]byte("r")) == 1 })
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no url", Config{Node: "a"}, ErrNoURL},
		{"no node", Config{URL: "nats://127.0.0.1:1"}, ErrBadNode},
		{"dotted node", Config{URL: "nats://127.0.0.1:1", Node: "a.b"}, ErrBadNode},
		{"ttl", Config{URL: "nats://127.0.0.1:1", Node: "a", Heartbeat: time.Second, TTL: time.Second}, ErrBadTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, newRecorder()); err != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	reg := prometheus.NewRegistry()
	if err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 23 {
		t.Fatalf("%d families, %v", len(mfs), err)
	}
}

// TestFlushReachesTheServer: once Flush returns, the NATS server has
// received what was queued before it (a draining node relies on this to
// announce its closed sessions before telling their clients); a closed
// cluster refuses at once.
func TestFlushReachesTheServer(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	meshed(t, a, b)
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "r1")
	eventually(t, time.Second, "b sees the join", func() bool { return b.RemoteCount([]byte("r1")) == 1 })
	v, err := s.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	before := v.InMsgs
	for i := range 50 {
		a.LocalOpened(fmt.Sprintf("a1%05d", i), "", "")
		a.LocalClosed(fmt.Sprintf("a1%05d", i), true)
	}
	if err := a.Flush(time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if v, err = s.Varz(nil); err != nil {
		t.Fatal(err)
	}
	if got := v.InMsgs - before; got < 100 {
		t.Fatalf("the server had %d of the 100 queued messages when Flush returned", got)
	}
	a.Close()
	if err := a.Flush(time.Second); err == nil {
		t.Fatal("flush on a closed cluster succeeded")
	}
}
