package chat_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chatgate/chatgate/auth"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
)

// newHistoryHub is a hub with a real in-memory history log of size
// messages per room, and recovery on with a window of one minute.
func newHistoryHub(t *testing.T, size int) (*fixture, *history.Memory) {
	t.Helper()
	log := history.NewMemory(history.Config{Size: size, Epoch: "test-epoch", Now: func() time.Time { return testNow }})
	f := newHub(t, chat.Config{History: log, RecoveryWindow: time.Minute, RecoveryKey: []byte("0123456789abcdef0123456789abcdef"), Presence: true})
	return f, log
}

func reqHistory(room string, since *chat.Position, limit int) chat.Request {
	r := chat.Request{Op: chat.OpHistory, Room: []byte(room), HasRoom: true, Limit: limit}
	if since != nil {
		r.Since, r.HasSince = *since, true
	}
	return r
}

// offsets returns the offsets of the messages in a reply.
func offsets(ms []chat.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i := range ms {
		out[i] = ms[i].Offset
	}
	return out
}

func TestJoinAckCarriesPositionAndMessagesOffsets(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	a, b := f.open(0), f.open(1)
	ja := f.must(a, reqJoin("lobby"))
	if ja.Position.Epoch == "" || ja.JSON["epoch"] == nil || ja.JSON["offset"] == nil {
		t.Fatalf("join ack %s: want offset and epoch", ja.Raw)
	}
	f.must(b, reqJoin("lobby"))
	f.tr.reset()
	for i := 0; i < 3; i++ {
		f.must(b, reqSendRoom(t, "lobby", `"m"`))
	}
	var got []int64
	for _, d := range f.tr.to(a) {
		got = append(got, d.num(t, "offset"))
	}
	if len(got) != 3 || got[0] <= int64(ja.Position.Offset) || got[1] != got[0]+1 || got[2] != got[1]+1 {
		t.Fatalf("offsets of the 3 messages A received: %v, want increasing from above the join offset %d", got, ja.Position.Offset)
	}
	// The sender is skipped, with history as without.
	if n := len(f.tr.to(b)); n != 0 {
		t.Fatalf("sender received %d of its own messages", n)
	}
}

func TestHistoryRequest(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	a, b := f.open(0), f.open(1)
	join := f.must(a, reqJoin("lobby")).Position
	f.must(b, reqJoin("lobby"))
	for i := 0; i < 5; i++ {
		f.must(b, reqSendRoom(t, "lobby", `{"n":`+string(rune('0'+i))+`}`))
	}
	all := f.must(a, reqHistory("lobby", &join, 0))
	if len(all.Messages) != 5 || string(all.Messages[0].Data) != `{"n":0}` || string(all.Messages[4].Data) != `{"n":4}` {
		t.Fatalf("history since the join: %s", all.Raw)
	}
	if all.Position.Offset != all.Messages[4].Offset {
		t.Fatalf("history position %d, want the last offset %d", all.Position.Offset, all.Messages[4].Offset)
	}
	page := f.must(a, reqHistory("lobby", &join, 2))
	if got := offsets(page.Messages); len(got) != 2 || got[0] != all.Messages[0].Offset {
		t.Fatalf("limit 2: offsets %v, want the oldest two after the join", got)
	}
	from := chat.Position{Offset: all.Messages[2].Offset, Epoch: join.Epoch}
	if got := offsets(f.must(a, reqHistory("lobby", &from, 0)).Messages); len(got) != 2 || got[0] != all.Messages[3].Offset {
		t.Fatalf("since the 3rd: offsets %v, want the last two", got)
	}
	if got := offsets(f.must(a, reqHistory("lobby", nil, 3)).Messages); len(got) != 3 || got[2] != all.Messages[4].Offset {
		t.Fatalf("newest 3: offsets %v", got)
	}
	var wire struct {
		Messages []map[string]any `json:"messages"`
		Offset   uint64           `json:"offset"`
		Epoch    string           `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(all.Raw), &wire); err != nil || len(wire.Messages) != 5 || wire.Messages[0]["type"] != "message" || wire.Epoch != join.Epoch {
		t.Fatalf("native history reply %s: %v", all.Raw, err)
	}
}

func TestHistoryRefusals(t *testing.T) {
	f, _ := newHistoryHub(t, 3)
	a, b := f.open(0), f.open(1)
	join := f.must(a, reqJoin("r1")).Position
	other := f.must(a, reqJoin("r2")).Position
	f.must(b, reqJoin("r1"))
	for i := 0; i < 5; i++ {
		f.must(b, reqSendRoom(t, "r1", `1`))
	}
	if other.Epoch == join.Epoch {
		t.Fatalf("rooms r1 and r2 share epoch %q", join.Epoch)
	}
	last := f.must(a, reqHistory("r1", nil, 1)).Position
	cases := []struct {
		name  string
		since chat.Position
		code  string
	}{
		{"evicted gap", join, chat.CodeUnrecoverable},
		{"another room's epoch", chat.Position{Offset: last.Offset, Epoch: other.Epoch}, chat.CodeUnrecoverable},
		{"future offset", chat.Position{Offset: last.Offset + 1, Epoch: last.Epoch}, chat.CodeBadOffset},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.do(a, reqHistory("r1", &tc.since, 0)).wantErr(t, tc.code)
		})
	}
	c := f.open(2)
	f.do(c, reqHistory("r1", nil, 0)).wantErr(t, chat.CodeNotMember)
	f.must(a, reqPing()) // the connection goes on

	off := newHub(t, chat.Config{})
	d := off.open(0)
	off.must(d, reqJoin("r"))
	off.do(d, reqHistory("r", nil, 0)).wantErr(t, chat.CodeNoHistory)
}

// welcomeToken returns a's session token.
func welcomeToken(t *testing.T, f *fixture, c *client) string {
	t.Helper()
	tok := f.hub.SessionToken(c.s)
	if !strings.HasPrefix(tok, c.id()+".") {
		t.Fatalf("session token %q does not name %s", tok, c.id())
	}
	return tok
}

// resume resumes a session as a transport does: the replay goes out (to
// the fake transport, which records and holds it) right after.
func resume(f *fixture, p *fakePeer, loop, kind int, ident *auth.Identity, rq chat.ResumeRequest) *chat.Session {
	s, replay := f.hub.Resume(p, loop, kind, ident, rq)
	if s == nil && len(replay) > 0 {
		f.t.Fatalf("a refused resume returned %d payloads", len(replay))
	}
	for _, pl := range replay {
		f.tr.Push(s, pl)
	}
	return s
}

// drop closes c's session as a dropped connection would.
func drop(f *fixture, c *client, reason string) {
	c.s.SetCloseReason(reason)
	f.hub.Close(c.s)
}

func TestResumeRecoversIDNickRoomsAndMissedMessages(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	a, b := f.open(0), f.open(1)
	f.must(a, reqNick("alice"))
	f.must(a, reqJoin("lobby"))
	f.must(a, reqJoin("ops"))
	f.must(b, reqJoin("lobby"))
	f.must(b, reqJoin("ops"))
	f.must(b, reqSendRoom(t, "lobby", `"seen"`))
	seen := uint64(f.tr.to(a)[len(f.tr.to(a))-1].num(t, "offset"))
	tok := welcomeToken(t, f, a)
	drop(f, a, "tcp")
	for _, d := range []string{`"x1"`, `"x2"`} {
		f.must(b, reqSendRoom(t, "lobby", d))
	}
	f.must(b, reqSendRoom(t, "ops", `"y1"`))
	f.tr.reset()

	p := &fakePeer{}
	s := resume(f, p, 2, kindNative, nil, chat.ResumeRequest{Token: tok, Offset: seen, HasOffset: true})
	if s == nil {
		t.Fatal("Resume = nil, want the session back")
	}
	if s.ID() != a.id() || s.Nick() != "alice" || strings.Join(s.Rooms(), ",") != "lobby,ops" {
		t.Fatalf("resumed id %s nick %q rooms %v, want %s alice [lobby ops]", s.ID(), s.Nick(), s.Rooms(), a.id())
	}
	if got := f.tableMembers("lobby"); len(got) != 2 {
		t.Fatalf("lobby members after resume: %v", got)
	}
	r := &client{s: s, peer: p}
	var rec []delivery
	for _, d := range f.tr.to(r) {
		if d.Type == "recovered" {
			rec = append(rec, d)
		}
	}
	if len(rec) != 2 {
		t.Fatalf("recovered events: %v", texts(f.tr.to(r)))
	}
	var lobby struct {
		Recovered bool `json:"recovered"`
		Messages  []struct {
			Data   string `json:"data"`
			Offset uint64 `json:"offset"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(rec[0].Text), &lobby); err != nil || !lobby.Recovered || len(lobby.Messages) != 2 ||
		lobby.Messages[0].Data != "x1" || lobby.Messages[1].Data != "x2" || lobby.Messages[0].Offset <= seen {
		t.Fatalf("lobby recovered %s: %v", rec[0].Text, err)
	}
	if !strings.Contains(rec[1].Text, `"y1"`) {
		t.Fatalf("ops recovered %s, want y1", rec[1].Text)
	}
	// B saw A come back.
	var back bool
	for _, d := range f.tr.to(b) {
		if d.Type == "presence" && d.str(t, "event") == "join" && d.str(t, "id") == a.id() {
			back = true
		}
	}
	if !back {
		t.Fatalf("B did not see A join again: %v", texts(f.tr.to(b)))
	}
	// The token works once per drop.
	if resume(f, &fakePeer{}, 0, kindNative, nil, chat.ResumeRequest{Token: tok}) != nil {
		t.Fatal("a token resumed a session that is open again")
	}
}

func TestResumeRefusals(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	alice := identity(t, "alice", nil)
	mallory := identity(t, "mallory", nil)
	open := func(reason string) (string, *client) {
		c := f.openAs(0, kindNative, alice)
		f.must(c, reqJoin("r"))
		tok := welcomeToken(t, f, c)
		drop(f, c, reason)
		return tok, c
	}
	tryResume := func(tok string, who *chat.Session) *chat.Session {
		_ = who
		return resume(f, &fakePeer{}, 0, kindNative, alice, chat.ResumeRequest{Token: tok})
	}
	tok, _ := open("tcp")
	forged := []byte(tok)
	forged[len(forged)-1] ^= 1
	if tryResume(string(forged), nil) != nil {
		t.Fatal("a forged token resumed")
	}
	if resume(f, &fakePeer{}, 0, kindNative, mallory, chat.ResumeRequest{Token: tok}) != nil {
		t.Fatal("another user resumed alice's session")
	}
	if tryResume(tok, nil) == nil {
		t.Fatal("the genuine token did not resume after refused attempts")
	}
	for _, reason := range []string{"1000", "server", "expired", "rate_limited", "bad_packet", "1008"} {
		tok, _ := open(reason)
		if tryResume(tok, nil) != nil {
			t.Errorf("a session closed with %q was resumed", reason)
		}
	}
	for _, reason := range []string{"tcp", "timeout", "1001", "1005", "slow_consumer"} {
		tok, _ := open(reason)
		if tryResume(tok, nil) == nil {
			t.Errorf("a session dropped with %q was not resumed", reason)
		}
	}
}

func TestResumeWindowExpires(t *testing.T) {
	now := testNow
	log := history.NewMemory(history.Config{Size: 10, Epoch: "e"})
	f := newHub(t, chat.Config{History: log, RecoveryWindow: time.Minute, Now: func() time.Time { return now }})
	c := f.open(0)
	tok := welcomeToken(t, f, c)
	drop(f, c, "tcp")
	now = now.Add(time.Minute)
	if resume(f, &fakePeer{}, 0, kindNative, nil, chat.ResumeRequest{Token: tok}) != nil {
		t.Fatal("resumed after the window")
	}
}

func TestResumeGapTooOld(t *testing.T) {
	f, _ := newHistoryHub(t, 2)
	a, b := f.open(0), f.open(1)
	f.must(a, reqJoin("r"))
	f.must(b, reqJoin("r"))
	tok := welcomeToken(t, f, a)
	drop(f, a, "tcp")
	for i := 0; i < 5; i++ {
		f.must(b, reqSendRoom(t, "r", `1`))
	}
	// Native: the session comes back, the room says recovered:false.
	p := &fakePeer{}
	s := resume(f, p, 0, kindNative, nil, chat.ResumeRequest{Token: tok})
	if s == nil {
		t.Fatal("native resume refused")
	}
	d := f.tr.to(&client{s: s, peer: p})
	if len(d) != 1 || d[0].Type != "recovered" || string(d[0].Fields["recovered"]) != "false" || d[0].has("messages") && string(d[0].Fields["messages"]) != "[]" || !d[0].has("epoch") {
		t.Fatalf("gap too old: %v", texts(d))
	}

	// Socket.IO: all or nothing.
	c := f.openAs(0, kindSocketIO, nil)
	f.must(c, reqJoin("r"))
	tok = welcomeToken(t, f, c)
	drop(f, c, "tcp")
	for i := 0; i < 5; i++ {
		f.must(b, reqSendRoom(t, "r", `1`))
	}
	if resume(f, &fakePeer{}, 0, kindSocketIO, nil, chat.ResumeRequest{Token: tok, AllOrNothing: true}) != nil {
		t.Fatal("Socket.IO resumed over a lost gap")
	}
}

func TestResumeSocketIOReplaysEachMessage(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	a, b := f.openAs(0, kindSocketIO, nil), f.open(1)
	f.must(a, reqJoin("r"))
	f.must(b, reqJoin("r"))
	tok := welcomeToken(t, f, a)
	drop(f, a, "timeout")
	f.must(b, reqSendRoom(t, "r", `"one"`))
	f.must(b, reqSendRoom(t, "r", `"two"`))
	f.tr.reset()
	p := &fakePeer{}
	s := resume(f, p, 0, kindSocketIO, nil, chat.ResumeRequest{Token: tok, AllOrNothing: true})
	if s == nil {
		t.Fatal("Socket.IO resume refused")
	}
	d := f.tr.to(&client{s: s, peer: p})
	if len(d) != 2 || d[0].Type != "message" || string(d[0].Fields["data"]) != `"one"` || string(d[1].Fields["data"]) != `"two"` {
		t.Fatalf("replayed: %v", texts(d))
	}
}

// connectBackend accepts connects with a user and data of its own, and
// records the bodies of event calls.
type connectBackend struct {
	events []string
}

func (b *connectBackend) Handles(k chat.CallKind) bool {
	return k == chat.CallConnect || k == chat.CallEvent
}

func (b *connectBackend) Call(k chat.CallKind, body []byte, done func(chat.BackendAnswer)) {
	if k == chat.CallConnect {
		done(chat.BackendAnswer{Result: []byte(`{"user":"u-1","data":{"plan":"gold"},"rooms":["r"]}`)})
		return
	}
	b.events = append(b.events, string(body))
	done(chat.BackendAnswer{Result: []byte(`{}`)})
}

func (b *connectBackend) Disconnected([]byte) {}

// TestResumeKeepsWhatTheBackendSet: a resumed session is not asked of the
// backend again, so it keeps the user and data the connect answer set; the
// token's holder (anonymous here) is who may resume it.
func TestResumeKeepsWhatTheBackendSet(t *testing.T) {
	f, _ := newHistoryHub(t, 10)
	be := &connectBackend{}
	f.hub.SetBackend(be)
	s := f.hub.OpenPending(&fakePeer{}, 0, kindNative, nil)
	f.hub.Connect(s, chat.ConnectInfo{}, func(err *chat.Error, d *chat.Disconnect) {
		if err != nil || d != nil {
			t.Fatalf("connect refused: %v %v", err, d)
		}
	})
	tok := f.hub.SessionToken(s)
	s.SetCloseReason("tcp")
	f.hub.Close(s)

	if resume(f, &fakePeer{}, 0, kindNative, identity(t, "u-1", nil), chat.ResumeRequest{Token: tok}) != nil {
		t.Fatal("a token of user u-1 resumed an anonymous connection's session")
	}
	p := &fakePeer{}
	r := resume(f, p, 0, kindNative, nil, chat.ResumeRequest{Token: tok})
	if r == nil {
		t.Fatal("the anonymous holder could not resume")
	}
	if r.User() != "u-1" || strings.Join(r.Rooms(), ",") != "r" {
		t.Fatalf("resumed user %q rooms %v, want the backend's u-1 and [r]", r.User(), r.Rooms())
	}
	f.hub.Handle(r, &chat.Request{Op: chat.OpRPC, ID: []byte("1"), Event: []byte("e"), Args: []byte("[]")})
	if len(be.events) != 1 || !strings.Contains(be.events[0], `"data":{"plan":"gold"}`) || !strings.Contains(be.events[0], `"user":"u-1"`) {
		t.Fatalf("the backend's event call after the resume: %v", be.events)
	}
}
