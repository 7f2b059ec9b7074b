package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startJetStream runs an embedded NATS server with JetStream, its store
// in a temporary directory.
func startJetStream(t testing.TB) *server.Server {
	t.Helper()
	return startServerOpts(t, &server.Options{JetStream: true, StoreDir: t.TempDir()})
}

// seqMsg is what a histRecorder was told by Sequenced.
type seqMsg struct {
	room, data string
	offset     uint64
	local      bool
}

// kept is a KeepRemote call.
type kept struct {
	id, user, nick string
	rooms          []string
}

// histRecorder is a HistoryHandler that records what it is told and keeps
// the log the way the hub does (Sequenced appends under the lock).
type histRecorder struct {
	*recorder
	mu      sync.Mutex
	log     chat.History
	seq     []seqMsg
	kept    []kept
	forgot  []string
	useHist int
}

func newHistRecorder() *histRecorder { return &histRecorder{recorder: newRecorder()} }

func (r *histRecorder) UseHistory(log chat.History) {
	r.mu.Lock()
	r.log = log
	r.useHist++
	r.mu.Unlock()
}

func (r *histRecorder) Sequenced(m *Message, local bool) {
	r.mu.Lock()
	log := r.log
	r.seq = append(r.seq, seqMsg{string(m.Room), string(m.Data), m.Offset, local})
	r.mu.Unlock()
	if log != nil && m.Offset != 0 {
		cm := chat.Message{Room: m.Room, From: m.From, Data: m.Data, TS: m.TS, Offset: m.Offset}
		log.Lock()
		log.Append(&cm)
		log.Unlock()
	}
}

func (r *histRecorder) KeepRemote(id, user, nick string, rooms []string) {
	r.mu.Lock()
	r.kept = append(r.kept, kept{id, user, nick, rooms})
	r.mu.Unlock()
}

func (r *histRecorder) ForgetRemote(id string) {
	r.mu.Lock()
	r.forgot = append(r.forgot, id)
	r.mu.Unlock()
}

func (r *histRecorder) sequenced() []seqMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seq)
}

func (r *histRecorder) keeps() []kept {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.kept)
}

// forgotten counts the ForgetRemote calls for id.
func (r *histRecorder) forgotten(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.forgot {
		if f == id {
			n++
		}
	}
	return n
}

func (r *histRecorder) history() chat.History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log
}

var testHistory = history.Config{Size: 100, TTL: time.Minute, Memory: 1 << 20}

// newHistNode starts a node with a shared history (hc) on url.
func newHistNode(t testing.TB, url, tag string, hc history.Config) (*Cluster, *histRecorder) {
	t.Helper()
	return newHistNodeCfg(t, Config{URL: url, Node: tag, History: hc})
}

// newHistNodeCfg is newHistNode with more of cfg.
func newHistNodeCfg(t testing.TB, cfg Config) (*Cluster, *histRecorder) {
	t.Helper()
	cfg.Heartbeat, cfg.TTL, cfg.ReconnectWait, cfg.Logger, cfg.AckTimeout = testHB, testTTL, 50*time.Millisecond, quiet, time.Second
	r := newHistRecorder()
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, r
}

// streamOf returns the history stream of the server at url.
func streamOf(t testing.TB, url, name string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

// since reads a page of room from log (since.Epoch "" is the newest).
func since(log chat.History, room string, pos chat.Position) ([]chat.Message, chat.Position, *chat.Error) {
	log.Lock()
	defer log.Unlock()
	return log.SinceLocked([]byte(room), pos, 0, nil)
}

func datas(msgs []chat.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Data))
	}
	return out
}

func TestHistoryStreamLimits(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", history.Config{Size: 5, TTL: time.Minute, Memory: 1 << 20})
	if !a.Sequencing() || !a.Stats().Sequencing || ra.useHist != 1 || ra.history() == nil {
		t.Fatalf("a does not use the stream: sequencing %v, UseHistory called %d times", a.Sequencing(), ra.useHist)
	}
	_, st := streamOf(t, s.ClientURL(), "chatgate_history")
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	if cfg.MaxMsgsPerSubject != 5+DefaultStreamSlack || cfg.MaxAge != time.Minute || cfg.MaxBytes != 1<<20 || cfg.Storage != jetstream.FileStorage ||
		cfg.Discard != jetstream.DiscardOld || cfg.Retention != jetstream.LimitsPolicy || !slices.Equal(cfg.Subjects, []string{"chatgate.hist.>"}) {
		t.Fatalf("stream config %+v", cfg)
	}
	epoch := ra.history().Epoch()
	a.Close()

	// New limits at the next start update the stream; the epoch stays.
	_, rb := newHistNode(t, s.ClientURL(), "b", history.Config{Size: 7, TTL: 0, Memory: 0})
	info, err = st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg := info.Config; cfg.MaxMsgsPerSubject != 7+DefaultStreamSlack || cfg.MaxAge != 0 || cfg.MaxBytes != -1 {
		t.Fatalf("updated stream config %+v", cfg)
	}
	if rb.history().Epoch() != epoch {
		t.Fatalf("the epoch changed with the limits: %q, was %q", rb.history().Epoch(), epoch)
	}
}

// Every node delivers every room message from the stream, in the
// stream's order, with the stream sequence as its offset; the sender's
// node is told the message is its own.
func TestSequencedOffsetsAreStreamSequences(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	b, rb := newHistNode(t, s.ClientURL(), "b", testHistory)
	meshed(t, a, b)
	const n = 200
	for i := range n {
		room := []string{"lobby", "other"}[i%2]
		src := a
		if i%3 == 0 {
			src = b
		}
		if !src.SequenceRoom(msg(room, fmt.Sprint(i))) {
			t.Fatalf("message %d not queued", i)
		}
	}
	for name, r := range map[string]*histRecorder{"a": ra, "b": rb} {
		eventually(t, 5*time.Second, name+" delivers all", func() bool { return len(r.sequenced()) >= n })
	}
	_, st := streamOf(t, s.ClientURL(), "chatgate_history")
	got := ra.sequenced()
	if !slices.EqualFunc(got, rb.sequenced(), func(x, y seqMsg) bool { return x.room == y.room && x.data == y.data && x.offset == y.offset }) {
		t.Fatalf("a and b delivered differently:\n%v\n%v", got, rb.sequenced())
	}
	perSender := map[bool]int{}
	for i, m := range got {
		if m.offset != uint64(i+1) {
			t.Fatalf("message %d has offset %d, want %d", i, m.offset, i+1)
		}
		sm, err := st.GetMsg(context.Background(), m.offset)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(sm.Subject, "."+roomToken([]byte(m.room))) || !strings.Contains(string(sm.Data), m.data) {
			t.Fatalf("stream message %d is %s %q, delivered as %s %q", m.offset, sm.Subject, sm.Data, m.room, m.data)
		}
		var k int
		fmt.Sscan(m.data, &k)
		fromB := k%3 == 0
		if m.local == fromB {
			t.Fatalf("a: message %q local=%v", m.data, m.local)
		}
		// Each sender's messages keep their order.
		if k < perSender[fromB] {
			t.Fatalf("message %d after %d from the same node", k, perSender[fromB])
		}
		perSender[fromB] = k
	}
	msgs, pos, err := since(ra.history(), "lobby", chat.Position{})
	if err != nil || len(msgs) != n/2 || pos.Offset != n {
		t.Fatalf("a's log: %d messages, position %+v, %v", len(msgs), pos, err)
	}
	if st := a.Stats(); st.HistoryPublished == 0 || st.HistoryFailed != 0 || st.HistoryOffset != n || st.HistoryMissing != 0 {
		t.Fatalf("a stats %+v", st)
	}
}

// A node that starts loads what the stream holds into its log, under the
// same offsets and epoch, without delivering it; what comes after is
// delivered.
func TestReplayAtStartLoadsRetainedMessages(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", history.Config{Size: 3, TTL: time.Minute})
	for i := range 5 {
		a.SequenceRoom(msg("lobby", fmt.Sprint(i)))
		a.SequenceRoom(msg("quiet", fmt.Sprint(100+i)))
	}
	eventually(t, 5*time.Second, "a delivers its own", func() bool { return len(ra.sequenced()) == 10 })

	c, rc := newHistNode(t, s.ClientURL(), "c", history.Config{Size: 3, TTL: time.Minute})
	if len(rc.sequenced()) != 0 {
		t.Fatalf("the replay was delivered: %v", rc.sequenced())
	}
	if rc.history().Epoch() != ra.history().Epoch() {
		t.Fatal("the nodes' epochs differ")
	}
	for _, room := range []string{"lobby", "quiet"} {
		want, wpos, _ := since(ra.history(), room, chat.Position{})
		got, gpos, err := since(rc.history(), room, chat.Position{})
		if err != nil || !slices.Equal(datas(got), datas(want)) || gpos != wpos || len(got) != 3 {
			t.Fatalf("%s: c holds %q at %+v (%v), a %q at %+v", room, datas(got), gpos, err, datas(want), wpos)
		}
		for i := range got {
			if got[i].Offset != want[i].Offset {
				t.Fatalf("%s: offsets %d and %d", room, got[i].Offset, want[i].Offset)
			}
		}
	}
	if st := c.Stats(); st.HistoryReceived != 10 || st.HistoryOffset != 10 || st.HistoryMissing != 0 {
		t.Fatalf("c stats %+v", st)
	}

	// Later messages are delivered live, on both.
	a.SequenceRoom(msg("lobby", `"live"`))
	eventually(t, 5*time.Second, "c delivers the live message", func() bool { return len(rc.sequenced()) == 1 })
	if got := rc.sequenced()[0]; got.data != `"live"` || got.offset != 11 || got.local {
		t.Fatalf("c delivered %+v", got)
	}
}

// A position is refused where the node cannot know that it holds the
// whole gap after it: a room's messages deleted before the node started.
func TestReplayFloors(t *testing.T) {
	s := startJetStream(t)
	hc := history.Config{Size: 2}
	a, ra := newHistNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", History: hc, StreamSlack: -1})
	// Sequences: 1 "r" (kept), 2 3 4 "busy" (2 trimmed). One at a time,
	// so that a reads each before the stream trims it.
	a.SequenceRoom(msg("r", "1"))
	for i := 2; i <= 4; i++ {
		eventually(t, 5*time.Second, "a delivers its own", func() bool { return len(ra.sequenced()) == i-1 })
		a.SequenceRoom(msg("busy", fmt.Sprint(i)))
	}
	eventually(t, 5*time.Second, "a delivers its own", func() bool { return len(ra.sequenced()) == 4 })
	_, rc := newHistNodeCfg(t, Config{URL: s.ClientURL(), Node: "c", History: hc, StreamSlack: -1})
	ep := func(room string) string {
		_, pos, _ := since(rc.history(), room, chat.Position{})
		return pos.Epoch
	}
	for _, tc := range []struct {
		room  string
		after uint64
		want  []string // nil: unrecoverable
	}{
		{"r", 0, []string{"1"}},
		{"r", 1, []string{}},
		{"busy", 1, nil}, // 2 was trimmed
		{"busy", 2, []string{"3", "4"}},
		{"never", 1, nil}, // 2 could have been this room's
		{"never", 2, []string{}},
	} {
		t.Run(fmt.Sprintf("%s after %d", tc.room, tc.after), func(t *testing.T) {
			for name, log := range map[string]chat.History{"replayed": rc.history(), "live": ra.history()} {
				got, _, err := since(log, tc.room, chat.Position{Offset: tc.after, Epoch: ep(tc.room)})
				switch {
				case tc.want == nil && err != chat.ErrUnrecoverable:
					if name == "live" && tc.room == "never" {
						continue // a live log saw every message: the room had none
					}
					t.Fatalf("%s: got %q, %v; want unrecoverable", name, datas(got), err)
				case tc.want != nil && (err != nil || !slices.Equal(append([]string{}, datas(got)...), tc.want)):
					t.Fatalf("%s: got %q, %v; want %q", name, datas(got), err, tc.want)
				}
			}
		})
	}
}

// Without JetStream on the server, a node keeps no shared history: the
// handler gets no log, and its own messages go over core NATS as before.
func TestNoJetStreamNoSequencing(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	b, rb := newHistNode(t, s.ClientURL(), "b", testHistory)
	meshed(t, a, b)
	if a.Sequencing() || ra.useHist != 0 || a.SequenceRoom(msg("lobby", "1")) {
		t.Fatalf("sequencing %v, UseHistory called %d times", a.Sequencing(), ra.useHist)
	}
	// Remote drops are not kept: offsets of per-node logs mean nothing
	// on another node.
	b.LocalOpened("b000001", "bob", "u1")
	b.LocalJoined("b000001", "lobby")
	eventually(t, time.Second, "a sees bob", func() bool { return a.RemoteCount([]byte("lobby")) == 1 })
	b.LocalClosed("b000001", true)
	eventually(t, time.Second, "a sees bob leave", func() bool { return a.RemoteCount([]byte("lobby")) == 0 })
	if len(ra.keeps()) != 0 || a.Stats().RemoteKept != 0 {
		t.Fatalf("a kept %v", ra.keeps())
	}
	_ = rb
}

// A node that keeps its history per node (it found no JetStream) still
// receives the room messages of nodes that use the stream.
func TestMixedModesStillDeliver(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	// b without a history handler: like a node that kept its own log.
	b, rb := newNode(t, s.ClientURL(), "b")
	meshed(t, a, b)
	a.LocalOpened("a000001", "ann", "")
	a.LocalJoined("a000001", "lobby") // a listens on lobby's core subject
	b.LocalOpened("b000001", "bob", "")
	b.LocalJoined("b000001", "lobby")
	a.SequenceRoom(msg("lobby", `"from a"`))
	eventually(t, 5*time.Second, "b receives a's sequenced message", func() bool { return len(rb.room("lobby")) == 1 })
	b.PublishRoom(msg("lobby", `"from b"`))
	eventually(t, 5*time.Second, "a delivers b's message without an offset", func() bool { return len(ra.sequenced()) == 2 })
	if got := ra.sequenced()[1]; got.data != `"from b"` || got.offset != 0 || got.local {
		t.Fatalf("a delivered %+v", got)
	}
}

// When JetStream stops taking messages (here: the stream is deleted), a
// room message is still delivered, on every node, without an offset, and
// the logs refuse positions from before it.
func TestFailedPublishDeliveredWithoutOffset(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	b, rb := newHistNode(t, s.ClientURL(), "b", testHistory)
	meshed(t, a, b)
	b.LocalOpened("b000001", "bob", "")
	b.LocalJoined("b000001", "lobby") // b listens on lobby's core subject
	eventually(t, time.Second, "a sees bob", func() bool { return a.RemoteCount([]byte("lobby")) == 1 })
	a.SequenceRoom(msg("lobby", `"kept"`))
	eventually(t, 5*time.Second, "b delivers the first", func() bool { return len(rb.sequenced()) == 1 })
	_, pos, _ := since(rb.history(), "lobby", chat.Position{})

	js, _ := streamOf(t, s.ClientURL(), "chatgate_history")
	if err := js.DeleteStream(context.Background(), "chatgate_history"); err != nil {
		t.Fatal(err)
	}
	a.SequenceRoom(msg("lobby", `"lost stream"`))
	for name, r := range map[string]*histRecorder{"a": ra, "b": rb} {
		eventually(t, 5*time.Second, name+" delivers without an offset", func() bool { return len(r.sequenced()) == 2 })
		got := r.sequenced()[1]
		if got.data != `"lost stream"` || got.offset != 0 || got.local != (name == "a") {
			t.Fatalf("%s delivered %+v", name, got)
		}
		// A client that read up to the first message may have missed
		// the second, which no log holds.
		if _, _, err := since(r.history(), "lobby", pos); !errors.Is(err, chat.ErrUnrecoverable) {
			t.Fatalf("%s: resuming at %+v: %v, want unrecoverable", name, pos, err)
		}
	}
	if st := a.Stats(); st.HistoryFailed != 1 || st.Unsequenced != 1 {
		t.Fatalf("a stats %+v", st)
	}
	if st := b.Stats(); st.Unsequenced != 1 {
		t.Fatalf("b stats %+v", st)
	}
}

// Sessions of other nodes are kept for recovery when they drop: a
// recoverable close, the node's death, its goodbye; not a close that is
// not recoverable, and a session that opens again is forgotten.
func TestRemoteDropsKept(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	b, _ := newHistNode(t, s.ClientURL(), "b", testHistory)
	c, _ := newHistNode(t, s.ClientURL(), "c", testHistory)
	meshed(t, a, b, c)
	b.LocalOpened("b000001", "", "u1")
	b.LocalNick("b000001", "bob")
	b.LocalJoined("b000001", "lobby")
	b.LocalJoined("b000001", "x")
	b.LocalOpened("b000002", "", "u2")
	b.LocalJoined("b000002", "lobby")
	c.LocalOpened("c000001", "cy", "u3")
	c.LocalJoined("c000001", "lobby")
	eventually(t, time.Second, "a sees them", func() bool { return a.RemoteCount([]byte("lobby")) == 3 })

	forgot1, forgot2 := ra.forgotten("b000001"), ra.forgotten("b000002")
	b.LocalClosed("b000001", true)
	b.LocalClosed("b000002", false)
	eventually(t, time.Second, "a sees b's sessions close", func() bool { return a.RemoteCount([]byte("lobby")) == 1 })
	if got := ra.keeps(); len(got) != 1 || got[0].id != "b000001" || got[0].user != "u1" || got[0].nick != "bob" || !slices.Equal(got[0].rooms, []string{"lobby", "x"}) {
		t.Fatalf("a kept %+v", got)
	}
	if ra.forgotten("b000002") != forgot2+1 || ra.forgotten("b000001") != forgot1 {
		t.Fatal("a did not forget the record of a session closed for good, or forgot a dropped one")
	}
	// The session resumes on c: a forgets its record.
	c.LocalOpened("b000001", "bob", "u1")
	eventually(t, time.Second, "a sees b000001 on c", func() bool { node, _ := a.NodeOf([]byte("b000001")); return node == "c" })
	if ra.forgotten("b000001") != forgot1+1 {
		t.Fatal("a did not forget b000001 when it opened again")
	}
	c.LocalClosed("b000001", false)
	eventually(t, time.Second, "a sees b000001 close on c", func() bool { _, ok := a.NodeOf([]byte("b000001")); return !ok })

	// c dies without a goodbye: its session is kept once the TTL passes.
	c.noBye = true
	c.Close()
	eventually(t, 5*time.Second, "a keeps c's session", func() bool { return len(ra.keeps()) >= 2 })
	if len(ra.keeps()) != 2 {
		t.Fatalf("a kept %+v", ra.keeps())
	}
	if got := ra.keeps()[1]; got.id != "c000001" || got.nick != "cy" || !slices.Equal(got.rooms, []string{"lobby"}) {
		t.Fatalf("a kept %+v", got)
	}
	// b says goodbye: kept at once.
	b.LocalOpened("b000003", "", "")
	eventually(t, time.Second, "a sees b000003", func() bool { _, ok := a.NodeOf([]byte("b000003")); return ok })
	b.Close()
	eventually(t, testTTL/2, "a keeps b's session on goodbye", func() bool { return len(ra.keeps()) == 3 })
	if st := a.Stats(); st.RemoteKept != 3 {
		t.Fatalf("a stats %+v", st)
	}
}

// A burst into one room far beyond its history size reaches every node
// whole: the stream keeps more per room (StreamSlack) than a log shows, so
// it does not drop messages a node has not read yet.
func TestBurstBeyondHistorySizeDelivered(t *testing.T) {
	s := startJetStream(t)
	hc := history.Config{Size: 3}
	a, ra := newHistNode(t, s.ClientURL(), "a", hc)
	b, rb := newHistNode(t, s.ClientURL(), "b", hc)
	meshed(t, a, b)
	const n = 500
	for i := range n {
		a.SequenceRoom(msg("lobby", fmt.Sprint(i)))
	}
	for name, r := range map[string]*histRecorder{"a": ra, "b": rb} {
		eventually(t, 5*time.Second, name+" delivers the burst", func() bool { return len(r.sequenced()) == n })
		for i, m := range r.sequenced() {
			if m.data != fmt.Sprint(i) || m.offset != uint64(i+1) {
				t.Fatalf("%s: message %d is %+v", name, i, m)
			}
		}
		if got, _, _ := since(r.history(), "lobby", chat.Position{}); len(got) != 3 {
			t.Fatalf("%s's log holds %d messages of lobby, want 3", name, len(got))
		}
	}
	if st := b.Stats(); st.HistoryMissing != 0 {
		t.Fatalf("b stats %+v", st)
	}
}

// Recreating the stream starts a new epoch: positions of the old one are
// not resumed against the new sequence numbers.
func TestRecreatedStreamNewEpoch(t *testing.T) {
	s := startJetStream(t)
	a, ra := newHistNode(t, s.ClientURL(), "a", testHistory)
	epoch := ra.history().Epoch()
	a.Close()
	js, _ := streamOf(t, s.ClientURL(), "chatgate_history")
	if err := js.DeleteStream(context.Background(), "chatgate_history"); err != nil {
		t.Fatal(err)
	}
	_, rb := newHistNode(t, s.ClientURL(), "b", testHistory)
	if rb.history().Epoch() == epoch {
		t.Fatal("a recreated stream kept its epoch")
	}
}

// A sequence missing while the node reads live (deleted before it read
// it) may have been in any room: the log-wide floor rises past it. An
// invalid payload counts as missing too.
func TestLiveGapRaisesFloor(t *testing.T) {
	r := newHistRecorder()
	c := &Cluster{cfg: Config{Node: "a", MaxMessage: DefaultMaxMessage, TTL: testTTL}, sign: newSigner(nil), hh: r, log: quiet}
	c.hlog = &sharedLog{Memory: history.NewMemory(history.Config{Size: 10}), first: map[string]uint64{}}
	r.UseHistory(c.hlog)
	payload := func(room, data string) []byte {
		return appendMessage(nil, kindRoom, "b", []byte(room), msg(room, data))
	}
	c.fromStream(streamMsg{data: payload("r", "1"), seq: 1})
	c.fromStream(streamMsg{data: payload("r", "2"), seq: 2})
	c.fromStream(streamMsg{data: payload("r", "5"), seq: 5}) // 3 and 4 missing
	ep := c.hlog.PositionLocked([]byte("r")).Epoch
	if _, _, err := since(c.hlog, "r", chat.Position{Offset: 2, Epoch: ep}); err != chat.ErrUnrecoverable {
		t.Fatalf("after 2: %v, want unrecoverable", err)
	}
	if got, _, err := since(c.hlog, "r", chat.Position{Offset: 4, Epoch: ep}); err != nil || !slices.Equal(datas(got), []string{"5"}) {
		t.Fatalf("after 4: %q, %v", datas(got), err)
	}
	c.fromStream(streamMsg{data: []byte("garbage"), seq: 6})
	c.fromStream(streamMsg{data: payload("r", "7"), seq: 7})
	if _, _, err := since(c.hlog, "r", chat.Position{Offset: 5, Epoch: ep}); err != chat.ErrUnrecoverable {
		t.Fatalf("after 5: %v, want unrecoverable", err)
	}
	if got, _, err := since(c.hlog, "r", chat.Position{Offset: 6, Epoch: ep}); err != nil || !slices.Equal(datas(got), []string{"7"}) {
		t.Fatalf("after 6: %q, %v", datas(got), err)
	}
	if missing, off := c.stats.histMissing.Load(), c.stats.histOffset.Load(); missing != 3 || off != 7 {
		t.Fatalf("missing %d, offset %d", missing, off)
	}
}
