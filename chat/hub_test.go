package chat_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/payload"
)

// TestFailEchoesError: Hub.Fail answers a request the codec or a rate limit
// refused with that error and the request's id, and changes nothing.
func TestFailEchoesError(t *testing.T) {
	errs := []*chat.Error{
		chat.ErrBadJSON, chat.ErrUnknownType, chat.ErrMissingType, chat.ErrMissingName,
		chat.ErrMissingRoom, chat.ErrMissingData, chat.ErrMissingDest,
		chat.ErrUnsupported, chat.ErrRateLimited,
	}
	for _, e := range errs {
		for _, id := range []string{"", "7", `"req-1"`} {
			t.Run(e.Code+"/"+e.Message+"/id="+id, func(t *testing.T) {
				f := newHub(t, chat.Config{Presence: true})
				a, b := f.open(0), f.open(1)
				f.must(b, reqJoin("lobby"))
				f.tr.reset()

				req := reqJoin("lobby")
				req.Op = chat.OpJoin
				if id != "" {
					req.ID = []byte(id)
				}
				n := len(a.peer.replies)
				f.hub.Fail(a.s, &req, e)
				r := a.peer.only(t, n)
				r.wantErr(t, e.Code)
				if r.Err.Message != e.Message {
					t.Errorf("message %q, want %q", r.Err.Message, e.Message)
				}
				if string(r.ID) != id || string(r.IDRaw) != id {
					t.Errorf("reply id %q, wire id %q, want %q", r.ID, r.IDRaw, id)
				}
				if r.Op != chat.OpJoin {
					t.Errorf("reply op %v, want join", r.Op)
				}
				if got := f.tableMembers("lobby"); !equalStrings(got, ids(b)) {
					t.Errorf("Fail changed the room: members %v", got)
				}
				if ds := f.tr.allDeliveries(); len(ds) != 0 {
					t.Errorf("Fail sent %v", texts(ds))
				}
			})
		}
	}
}

// TestHandleUnknownType: a request whose Op names no operation (the codecs
// decode unknown types to OpInvalid) is answered unknown_type.
func TestHandleUnknownType(t *testing.T) {
	for _, op := range []chat.Op{chat.OpInvalid, chat.OpPing + 1, 200} {
		t.Run(op.String(), func(t *testing.T) {
			f := newHub(t, chat.Config{})
			a := f.open(0)
			r := f.do(a, chat.Request{Op: op, ID: []byte(`"u"`), Room: []byte("lobby"), HasRoom: true})
			r.wantErr(t, chat.CodeUnknownType)
			if string(r.IDRaw) != `"u"` {
				t.Errorf("wire id %s, want \"u\"", r.IDRaw)
			}
			if f.table.Len() != 0 {
				t.Errorf("an unknown request changed the table")
			}
		})
	}
}

// TestRequestIDEchoed: every operation's reply, ack or error, echoes the
// request id byte for byte, and carries none when the request had none.
func TestRequestIDEchoed(t *testing.T) {
	type tc struct {
		name string
		req  func(a, b *client) chat.Request
		err  string
	}
	cases := []tc{
		{"nick", func(a, b *client) chat.Request { return reqNick("al") }, ""},
		{"nick/error", func(a, b *client) chat.Request { return reqNick("") }, chat.CodeInvalidName},
		{"join", func(a, b *client) chat.Request { return reqJoin("other") }, ""},
		{"join/error", func(a, b *client) chat.Request { return reqJoin("") }, chat.CodeInvalidRoom},
		{"leave", func(a, b *client) chat.Request { return reqLeave("lobby") }, ""},
		{"leave/error", func(a, b *client) chat.Request { return reqLeave("nowhere") }, chat.CodeNotMember},
		{"send/room", func(a, b *client) chat.Request { return reqSendRoom(t, "lobby", `1`) }, ""},
		{"send/room/error", func(a, b *client) chat.Request { return reqSendRoom(t, "nowhere", `1`) }, chat.CodeNotMember},
		{"send/to", func(a, b *client) chat.Request { return reqSendTo(t, b.id(), `1`) }, ""},
		{"send/to/error", func(a, b *client) chat.Request { return reqSendTo(t, "nobody", `1`) }, chat.CodeNoSuchConnection},
		{"rooms", func(a, b *client) chat.Request { return reqRooms() }, ""},
		{"members", func(a, b *client) chat.Request { return reqMembers("lobby") }, ""},
		{"members/error", func(a, b *client) chat.Request { return reqMembers("nowhere") }, chat.CodeNotMember},
		{"ping", func(a, b *client) chat.Request { return reqPing() }, ""},
	}
	for _, c := range cases {
		for _, id := range []string{"", "0", "-12.5e3", `"abc"`, `"\u00e9\""`} {
			t.Run(c.name+"/id="+id, func(t *testing.T) {
				f := newHub(t, chat.Config{Presence: true})
				a, b := f.open(0), f.open(1)
				f.must(a, reqJoin("lobby"))
				f.must(b, reqJoin("lobby"))
				req := c.req(a, b)
				if id != "" {
					req.ID = []byte(id)
				}
				r := f.do(a, req)
				if c.err != "" {
					r.wantErr(t, c.err)
				} else {
					r.wantAck(t)
				}
				if string(r.ID) != id || string(r.IDRaw) != id {
					t.Errorf("reply id %q, wire id %q; want %q (wire: %s)", r.ID, r.IDRaw, id, r.Raw)
				}
				if id == "" && r.ID != nil {
					t.Errorf("reply id %q for a request without id", r.ID)
				}
				if r.Op != req.Op {
					t.Errorf("reply op %v, want %v", r.Op, req.Op)
				}
			})
		}
	}
}

// TestPing: ping is acknowledged and does nothing else.
func TestPing(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, b := f.open(0), f.open(1)
	f.must(a, reqJoin("lobby"))
	f.must(b, reqJoin("lobby"))
	f.tr.reset()
	r := f.must(a, withID(reqPing(), "9"))
	if r.Raw != `{"type":"ack","id":9}` {
		t.Errorf("ping reply %s, want {\"type\":\"ack\",\"id\":9}", r.Raw)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 || len(f.tr.fanoutCalls()) != 0 {
		t.Errorf("ping sent %v", texts(ds))
	}
}

// TestNick: valid nicknames are 1 to 32 runes of valid UTF-8; others are
// invalid_name and keep the previous nickname.
func TestNick(t *testing.T) {
	cases := []struct {
		name string
		nick string
		ok   bool
	}{
		{"ascii", "alice", true},
		{"one rune", "a", true},
		{"32 ascii", strings.Repeat("a", 32), true},
		{"32 two-byte runes", strings.Repeat("é", 32), true},
		{"32 four-byte runes", strings.Repeat("😀", 32), true},
		{"spaces and punctuation", `a "b" \ c`, true},
		{"empty", "", false},
		{"33 ascii", strings.Repeat("a", 33), false},
		{"33 two-byte runes", strings.Repeat("é", 33), false},
		{"invalid byte", "al\xffice", false},
		{"truncated rune", "ab\xc3", false},
		{"surrogate half", "\xed\xa0\x80", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newHub(t, chat.Config{})
			a := f.open(0)
			if a.s.Nick() != "" {
				t.Fatalf("new session has nick %q", a.s.Nick())
			}
			f.must(a, reqNick("before"))
			r := f.do(a, withID(reqNick(c.nick), "1"))
			if !c.ok {
				r.wantErr(t, chat.CodeInvalidName)
				if a.s.Nick() != "before" {
					t.Errorf("Nick() = %q after a refused nick, want %q", a.s.Nick(), "before")
				}
				return
			}
			r.wantAck(t)
			if r.Name != c.nick || r.JSON["name"] != c.nick {
				t.Errorf("reply name %q, wire %v; want %q", r.Name, r.JSON["name"], c.nick)
			}
			if a.s.Nick() != c.nick {
				t.Errorf("Nick() = %q, want %q", a.s.Nick(), c.nick)
			}
		})
	}
}

// TestNickVisible: the nickname shows in member lists, messages and
// presence, and a change shows from then on.
func TestNickVisible(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, b := f.open(0), f.open(1)
	f.must(b, reqJoin("lobby"))
	f.must(a, reqNick("alice"))
	f.must(a, reqJoin("lobby"))
	wantPresence(t, f.tr.onlyTo(t, b), "lobby", "join", a, 2)
	if f.tr.to(b)[0].str(t, "nick") != "alice" {
		t.Fatalf("presence nick is not alice")
	}

	r := f.must(b, reqMembers("lobby"))
	nicks := map[string]string{}
	for _, m := range r.Members {
		nicks[m.ID] = m.Nick
	}
	if nicks[a.id()] != "alice" || nicks[b.id()] != "" {
		t.Errorf("members %+v, want %s=alice and %s with no nick", r.Members, a.id(), b.id())
	}
	if !strings.Contains(r.Raw, `"nick":"alice"`) {
		t.Errorf("wire members %s lacks alice", r.Raw)
	}

	f.must(a, reqNick("alicia"))
	f.tr.reset()
	f.must(a, reqSendRoom(t, "lobby", `"hi"`))
	if got := f.tr.onlyTo(t, b).str(t, "nick"); got != "alicia" {
		t.Errorf("message nick %q, want alicia", got)
	}
	r = f.must(b, reqMembers("lobby"))
	for _, m := range r.Members {
		if m.ID == a.id() && m.Nick != "alicia" {
			t.Errorf("member list nick %q after the change, want alicia", m.Nick)
		}
	}
}

// TestJoin: counts, presence to the other members only, and joining twice.
func TestJoin(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, b, c := f.open(0), f.open(1), f.open(2)

	r := f.must(a, withID(reqJoin("lobby"), "1"))
	if string(r.Room) != "lobby" || r.Count != 1 || r.JSON["room"] != "lobby" || r.JSON["count"] != 1.0 {
		t.Fatalf("first join reply room %q count %d (wire %s), want lobby 1", r.Room, r.Count, r.Raw)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Fatalf("first join delivered %v; the joiner must not get its own presence", texts(ds))
	}

	r = f.must(b, reqJoin("lobby"))
	if r.Count != 2 {
		t.Fatalf("second join count %d, want 2", r.Count)
	}
	wantPresence(t, f.tr.onlyTo(t, a), "lobby", "join", b, 2)
	if len(f.tr.to(b)) != 0 {
		t.Fatalf("joiner got %v", texts(f.tr.to(b)))
	}
	f.tr.reset()

	r = f.must(c, reqJoin("lobby"))
	if r.Count != 3 {
		t.Fatalf("third join count %d, want 3", r.Count)
	}
	wantPresence(t, f.tr.onlyTo(t, a), "lobby", "join", c, 3)
	wantPresence(t, f.tr.onlyTo(t, b), "lobby", "join", c, 3)
	if len(f.tr.to(c)) != 0 {
		t.Fatalf("joiner got %v", texts(f.tr.to(c)))
	}
	for _, fc := range f.tr.fanoutCalls() {
		if fc.Skip != c.s {
			t.Errorf("presence fanout skips %v, want the joiner", fc.Skip)
		}
	}
	f.tr.reset()

	t.Run("twice", func(t *testing.T) {
		r := f.must(b, reqJoin("lobby"))
		if string(r.Room) != "lobby" || r.Count != 3 {
			t.Errorf("second join of the same room: room %q count %d, want lobby 3", r.Room, r.Count)
		}
		if ds := f.tr.allDeliveries(); len(ds) != 0 {
			t.Errorf("joining twice sent presence: %v", texts(ds))
		}
		if got := b.s.Rooms(); len(got) != 1 || got[0] != "lobby" {
			t.Errorf("Rooms() = %v after joining twice, want [lobby]", got)
		}
		if got := f.tableMembers("lobby"); !equalStrings(got, ids(a, b, c)) {
			t.Errorf("members %v, want %v", got, ids(a, b, c))
		}
	})

	t.Run("rooms in join order", func(t *testing.T) {
		f.must(b, reqJoin("zeta"))
		f.must(b, reqJoin("alpha"))
		if got := b.s.Rooms(); !equalStrings(got, []string{"lobby", "zeta", "alpha"}) {
			t.Errorf("Rooms() = %v, want [lobby zeta alpha]", got)
		}
	})
}

// TestLeaveKeepsJoinOrder: the first room is kept in the session itself
// and the others apart; leaving any of them, the first included, keeps
// the rest in join order, and the session is still a member of each (a
// message to it is sent, one to a room left is not_member).
func TestLeaveKeepsJoinOrder(t *testing.T) {
	f := newHub(t, chat.Config{})
	a := f.open(0)
	for _, r := range []string{"r1", "r2", "r3", "r4"} {
		f.must(a, reqJoin(r))
	}
	steps := []struct {
		leave string
		want  []string
	}{
		{"r2", []string{"r1", "r3", "r4"}},
		{"r1", []string{"r3", "r4"}},
		{"r4", []string{"r3"}},
		{"r3", nil},
	}
	for _, st := range steps {
		f.must(a, reqLeave(st.leave))
		if got := a.s.Rooms(); !equalStrings(got, st.want) {
			t.Fatalf("after leaving %s: Rooms() = %v, want %v", st.leave, got, st.want)
		}
		f.do(a, reqSendRoom(t, st.leave, `"x"`)).wantErr(t, chat.CodeNotMember)
		for _, r := range st.want {
			f.must(a, reqSendRoom(t, r, `"x"`))
		}
	}
	f.must(a, reqJoin("r5"))
	if got := a.s.Rooms(); !equalStrings(got, []string{"r5"}) {
		t.Fatalf("Rooms() = %v after joining again, want [r5]", got)
	}
}

// TestRoomNameLimits: room names are 1 to 128 bytes for every operation
// that names a room.
func TestRoomNameLimits(t *testing.T) {
	long := strings.Repeat("r", 128)
	longRunes := strings.Repeat("é", 64) // 64 runes, 128 bytes
	ops := []struct {
		name string
		req  func(t *testing.T, room string) chat.Request
	}{
		{"join", func(t *testing.T, room string) chat.Request { return reqJoin(room) }},
		{"leave", func(t *testing.T, room string) chat.Request { return reqLeave(room) }},
		{"members", func(t *testing.T, room string) chat.Request { return reqMembers(room) }},
		{"send", func(t *testing.T, room string) chat.Request { return reqSendRoom(t, room, `1`) }},
	}
	for _, op := range ops {
		invalid := []struct{ name, room string }{
			{"empty", ""},
			{"129 bytes", long + "r"},
			{"129 bytes, 65 runes", longRunes + "x"},
			{"130 bytes, 65 runes", strings.Repeat("é", 65)},
		}
		for _, inv := range invalid {
			room := inv.room
			t.Run(op.name+"/"+inv.name, func(t *testing.T) {
				f := newHub(t, chat.Config{Presence: true})
				a := f.open(0)
				f.do(a, op.req(t, room)).wantErr(t, chat.CodeInvalidRoom)
				if f.table.Len() != 0 {
					t.Errorf("table has %d rooms", f.table.Len())
				}
			})
		}
	}
	for _, room := range []string{"x", long, longRunes} {
		t.Run("join/valid/len="+itoa(len(room)), func(t *testing.T) {
			f := newHub(t, chat.Config{})
			a := f.open(0)
			r := f.must(a, reqJoin(room))
			if string(r.Room) != room || r.Count != 1 {
				t.Errorf("join %d-byte room: reply room %q count %d", len(room), r.Room, r.Count)
			}
			f.must(a, reqMembers(room))
			f.must(a, reqSendRoom(t, room, `1`))
			f.must(a, reqLeave(room))
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestJoinTooManyRooms: Config.MaxRooms bounds the rooms of one session;
// joining a room it is in already is still fine at the bound.
func TestJoinTooManyRooms(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true, MaxRooms: 2})
	a, x := f.open(0), f.open(1)
	f.must(x, reqJoin("r3"))
	f.must(a, reqJoin("r1"))
	f.must(a, reqJoin("r2"))
	f.tr.reset()

	f.do(a, reqJoin("r3")).wantErr(t, chat.CodeTooManyRooms)
	if got := f.tableMembers("r3"); !equalStrings(got, ids(x)) {
		t.Errorf("refused join changed r3: %v", got)
	}
	if got := a.s.Rooms(); !equalStrings(got, []string{"r1", "r2"}) {
		t.Errorf("Rooms() = %v, want [r1 r2]", got)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Errorf("refused join sent presence %v", texts(ds))
	}
	f.do(a, reqJoin("r4")).wantErr(t, chat.CodeTooManyRooms)
	if f.table.Count([]byte("r4")) != 0 {
		t.Errorf("refused join created r4")
	}

	r := f.must(a, reqJoin("r1"))
	if r.Count != 1 {
		t.Errorf("rejoin at the bound: count %d, want 1", r.Count)
	}
	f.must(a, reqLeave("r1"))
	if r := f.must(a, reqJoin("r3")); r.Count != 2 {
		t.Errorf("join after leaving: count %d, want 2", r.Count)
	}

	t.Run("unbounded", func(t *testing.T) {
		for _, max := range []int{0, -1} {
			f := newHub(t, chat.Config{MaxRooms: max})
			a := f.open(0)
			for i := range 20 {
				f.must(a, reqJoin("room"+itoa(i)))
			}
		}
	})
}

// TestJoinForbidden: an identity whose token's rooms claim excludes a room
// may not join it; anonymous sessions and tokens without the claim may
// join anything.
func TestJoinForbidden(t *testing.T) {
	cases := []struct {
		name    string
		claim   []string // nil: no rooms claim; anon: no identity
		anon    bool
		allowed []string
		denied  []string
	}{
		{"exact and prefix", []string{"lobby", "team-*"}, false,
			[]string{"lobby", "team-", "team-a", "team-a/b"}, []string{"secret", "team", "lobby2", "Lobby", "xteam-a"}},
		{"empty claim", []string{}, false, nil, []string{"lobby", "x"}},
		{"star", []string{"lobby", "*"}, false, []string{"lobby", "secret"}, nil},
		{"no claim", nil, false, []string{"lobby", "secret"}, nil},
		{"anonymous", nil, true, []string{"lobby", "secret"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newHub(t, chat.Config{Presence: true})
			var a *client
			if c.anon {
				a = f.openAs(0, kindNative, nil)
			} else {
				a = f.openAs(0, kindNative, identity(t, "alice", c.claim))
				if a.s.User() != "alice" {
					t.Fatalf("User() = %q, want alice", a.s.User())
				}
			}
			other := f.open(1)
			for _, room := range c.denied {
				f.must(other, reqJoin(room))
			}
			f.tr.reset()
			for _, room := range c.denied {
				f.do(a, reqJoin(room)).wantErr(t, chat.CodeForbidden)
				if f.table.Contains([]byte(room), a.s) {
					t.Errorf("forbidden join of %q added the session", room)
				}
			}
			if ds := f.tr.allDeliveries(); len(ds) != 0 {
				t.Errorf("forbidden joins sent %v", texts(ds))
			}
			if len(a.s.Rooms()) != 0 {
				t.Errorf("Rooms() = %v after forbidden joins", a.s.Rooms())
			}
			for _, room := range c.allowed {
				f.must(a, reqJoin(room))
			}
		})
	}
}

// TestLeave: not_member, counts, presence to the remaining members, and
// the room disappearing with its last member.
func TestLeave(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, b, c, x := f.open(0), f.open(1), f.open(2), f.open(0)
	f.do(a, reqLeave("lobby")).wantErr(t, chat.CodeNotMember)
	for _, cl := range []*client{a, b, c} {
		f.must(cl, reqJoin("lobby"))
	}
	f.must(x, reqJoin("other"))
	f.tr.reset()

	t.Run("not member", func(t *testing.T) {
		f.do(x, reqLeave("lobby")).wantErr(t, chat.CodeNotMember)
		if got := f.tableMembers("lobby"); !equalStrings(got, ids(a, b, c)) {
			t.Errorf("members %v", got)
		}
		if ds := f.tr.allDeliveries(); len(ds) != 0 {
			t.Errorf("refused leave sent %v", texts(ds))
		}
	})

	r := f.must(b, withID(reqLeave("lobby"), "3"))
	if string(r.Room) != "lobby" || r.Count != 2 || r.JSON["count"] != 2.0 || r.JSON["room"] != "lobby" {
		t.Fatalf("leave reply room %q count %d (wire %s), want lobby 2", r.Room, r.Count, r.Raw)
	}
	wantPresence(t, f.tr.onlyTo(t, a), "lobby", "leave", b, 2)
	wantPresence(t, f.tr.onlyTo(t, c), "lobby", "leave", b, 2)
	if len(f.tr.to(b)) != 0 || len(f.tr.to(x)) != 0 {
		t.Fatalf("leaver or outsider got %v", texts(f.tr.allDeliveries()))
	}
	if got := f.tableMembers("lobby"); !equalStrings(got, ids(a, c)) {
		t.Fatalf("members %v, want %v", got, ids(a, c))
	}
	if len(b.s.Rooms()) != 0 {
		t.Fatalf("Rooms() = %v after leaving", b.s.Rooms())
	}
	f.do(b, reqLeave("lobby")).wantErr(t, chat.CodeNotMember)
	f.do(b, reqSendRoom(t, "lobby", `1`)).wantErr(t, chat.CodeNotMember)
	f.tr.reset()

	if r := f.must(a, reqLeave("lobby")); r.Count != 1 {
		t.Fatalf("count %d, want 1", r.Count)
	}
	wantPresence(t, f.tr.onlyTo(t, c), "lobby", "leave", a, 1)
	f.tr.reset()
	if r := f.must(c, reqLeave("lobby")); r.Count != 0 {
		t.Fatalf("last leave count %d, want 0", r.Count)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Fatalf("last leave sent %v", texts(ds))
	}
	if f.table.Count([]byte("lobby")) != 0 || f.table.Len() != 1 {
		t.Fatalf("lobby still exists after its last member left")
	}
	if r := f.must(x, reqRooms()); len(r.Rooms) != 1 || r.Rooms[0].Room != "other" {
		t.Fatalf("rooms %+v, want only other", r.Rooms)
	}
}

// TestSendRoom: a room message reaches every other member, on every loop
// and in every encoding, never the sender; its fields are the sender's and
// the hub clock's, and data is passed on byte for byte.
func TestSendRoom(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a := f.openAs(0, kindNative, identity(t, "alice-sub", nil))
	b, c := f.open(0), f.open(1)
	d := f.openAs(2, kindSocketIO, nil)
	x := f.open(2)
	f.must(a, reqNick("alice"))
	for _, cl := range []*client{a, b, c, d} {
		f.must(cl, reqJoin("lobby"))
	}
	f.must(x, reqJoin("other"))
	f.tr.reset()

	t.Run("not member", func(t *testing.T) {
		f.do(x, reqSendRoom(t, "lobby", `"hi"`)).wantErr(t, chat.CodeNotMember)
		f.do(x, reqSendRoom(t, "nowhere", `"hi"`)).wantErr(t, chat.CodeNotMember)
		if ds := f.tr.allDeliveries(); len(ds) != 0 {
			t.Errorf("refused send delivered %v", texts(ds))
		}
	})

	data := "{ \"text\" : \"h\\u00e9llo\\n\" , \"n\":[1, 2.50 ,{\"k\":null}], \"é\":true }"
	r := f.must(a, withID(reqSendRoom(t, "lobby", data), "5"))
	if r.Raw != `{"type":"ack","id":5}` {
		t.Errorf("send ack %s, want {\"type\":\"ack\",\"id\":5}", r.Raw)
	}

	calls := f.tr.fanoutCalls()
	if len(calls) != 1 {
		t.Fatalf("%d Fanout calls, want 1", len(calls))
	}
	if calls[0].Skip != a.s {
		t.Errorf("Fanout skip = %v, want the sender", calls[0].Skip)
	}
	if calls[0].Snap.Count != 4 {
		t.Errorf("Fanout snapshot has %d members, want 4", calls[0].Snap.Count)
	}
	if got, want := f.tr.recipients(), ids(b, c, d); !equalStrings(got, want) {
		t.Fatalf("delivered to %v, want %v (everyone but the sender)", got, want)
	}
	for _, cl := range []*client{b, c, d} {
		m := f.tr.onlyTo(t, cl)
		if m.Type != "message" {
			t.Fatalf("%s got %s, want a message", cl.id(), m.Text)
		}
		if got := m.str(t, "room"); got != "lobby" {
			t.Errorf("room %q, want lobby", got)
		}
		if got := m.str(t, "from"); got != a.id() {
			t.Errorf("from %q, want %q", got, a.id())
		}
		if got := m.str(t, "nick"); got != "alice" {
			t.Errorf("nick %q, want alice", got)
		}
		if got := m.str(t, "user"); got != "alice-sub" {
			t.Errorf("user %q, want alice-sub", got)
		}
		if got := string(m.Fields["data"]); got != data {
			t.Errorf("data %s, want byte for byte %s", got, data)
		}
		if !strings.Contains(m.Text, data) {
			t.Errorf("payload %s does not carry data verbatim", m.Text)
		}
		if got := m.num(t, "ts"); got != testTS {
			t.Errorf("ts %d, want %d (Config.Now)", got, testTS)
		}
	}
	if txt := f.tr.onlyTo(t, d).Text; !strings.HasPrefix(txt, `42["message",`) {
		t.Errorf("Socket.IO member got %s, want a Socket.IO event", txt)
	}
	if txt := f.tr.onlyTo(t, b).Text; !strings.HasPrefix(txt, `{"type":"message"`) {
		t.Errorf("native member got %s, want a native message", txt)
	}

	t.Run("anonymous sender without nick", func(t *testing.T) {
		f.tr.reset()
		f.must(b, reqSendRoom(t, "lobby", `null`))
		m := f.tr.onlyTo(t, a)
		if m.str(t, "nick") != "" || m.has("user") || m.str(t, "from") != b.id() || string(m.Fields["data"]) != "null" {
			t.Errorf("message %s: want from %s, empty nick, no user, data null", m.Text, b.id())
		}
	})
}

// TestSendRoomAlone: a sender alone in its room gets an ack and nothing is
// encoded or fanned out.
func TestSendRoomAlone(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, x := f.open(0), f.open(1)
	f.must(a, reqJoin("lobby"))
	f.must(x, reqJoin("other"))
	f.tr.reset()
	enc := f.encoded.Load()
	f.must(a, reqSendRoom(t, "lobby", `"echo?"`))
	if n := len(f.tr.fanoutCalls()); n != 0 {
		t.Errorf("%d Fanout calls for a sender alone in the room, want 0", n)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Errorf("delivered %v", texts(ds))
	}
	if n := f.encoded.Load() - enc; n != 0 {
		t.Errorf("encoded %d payloads for nobody", n)
	}
}

// TestSendAttachmentsPerKind: one payload per encoding present; Socket.IO
// recipients get binary attachments after the text, native recipients get
// them inlined.
func TestSendAttachmentsPerKind(t *testing.T) {
	f := newHub(t, chat.Config{})
	a, b := f.open(0), f.open(1)
	c, d := f.openAs(1, kindSocketIO, nil), f.openAs(2, kindSocketIO, nil)
	for _, cl := range []*client{a, b, c, d} {
		f.must(cl, reqJoin("lobby"))
	}
	f.tr.reset()
	enc := f.encoded.Load()
	bin := "\x00\x01\xffbin"
	req := reqSendRoom(t, "lobby", `{"file":{"_placeholder":true,"num":0}}`)
	req.Attachments = [][]byte{[]byte(bin)}
	f.must(a, req)
	if n := f.encoded.Load() - enc; n != 2 {
		t.Errorf("encoded %d payloads for 3 recipients in 2 encodings, want 2", n)
	}
	calls := f.tr.fanoutCalls()
	if len(calls) != 1 || calls[0].Payloads[kindNative] == nil || calls[0].Payloads[kindSocketIO] == nil {
		t.Fatalf("want one Fanout with a payload per kind, got %d calls", len(calls))
	}
	for _, cl := range []*client{c, d} {
		m := f.tr.onlyTo(t, cl)
		if !strings.HasPrefix(m.Text, "451-") || len(m.Attachments) != 1 || m.Attachments[0] != bin {
			t.Errorf("Socket.IO recipient got %q with attachments %q, want a binary event with %q", m.Text, m.Attachments, bin)
		}
	}
	m := f.tr.onlyTo(t, b)
	want := `{"file":{"_binary":"` + base64.StdEncoding.EncodeToString([]byte(bin)) + `"}}`
	if string(m.Fields["data"]) != want || len(m.Attachments) != 0 {
		t.Errorf("native recipient data %s with %d attachments, want %s inline", m.Fields["data"], len(m.Attachments), want)
	}

	t.Run("native only", func(t *testing.T) {
		f.must(a, reqJoin("natives"))
		f.must(b, reqJoin("natives"))
		f.tr.reset()
		f.must(a, reqSendRoom(t, "natives", `1`))
		calls := f.tr.fanoutCalls()
		if len(calls) != 1 || calls[0].Payloads[kindSocketIO] != nil {
			t.Errorf("a room without Socket.IO members got a Socket.IO payload")
		}
	})
}

// TestSendDirect: a message to one connection goes through Transport.Push
// to that session only, in its encoding.
func TestSendDirect(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a := f.openAs(0, kindNative, identity(t, "alice-sub", nil))
	b, c := f.open(1), f.open(2)
	d := f.openAs(1, kindSocketIO, nil)
	f.must(a, reqNick("alice"))
	for _, cl := range []*client{a, b, c, d} {
		f.must(cl, reqJoin("lobby"))
	}
	f.tr.reset()

	data := `[1, "two" ,{"3":4}]`
	f.must(a, withID(reqSendTo(t, b.id(), data), `"d1"`))
	if n := len(f.tr.fanoutCalls()); n != 0 {
		t.Errorf("direct message made %d Fanout calls", n)
	}
	if n := len(f.tr.pushCalls()); n != 1 {
		t.Fatalf("%d Push calls, want 1", n)
	}
	if got := f.tr.recipients(); !equalStrings(got, ids(b)) {
		t.Fatalf("delivered to %v, want only %s", got, b.id())
	}
	m := f.tr.onlyTo(t, b)
	if m.Via != "push" || m.Type != "message" {
		t.Fatalf("got %s via %s, want a message via Push", m.Text, m.Via)
	}
	if m.has("room") {
		t.Errorf("direct message %s has a room", m.Text)
	}
	if m.str(t, "from") != a.id() || m.str(t, "nick") != "alice" || m.str(t, "user") != "alice-sub" ||
		string(m.Fields["data"]) != data || m.num(t, "ts") != testTS {
		t.Errorf("direct message %s: want from %s nick alice user alice-sub data %s ts %d", m.Text, a.id(), data, testTS)
	}

	t.Run("socketio target", func(t *testing.T) {
		f.tr.reset()
		f.must(a, reqSendTo(t, d.id(), `2`))
		m := f.tr.onlyTo(t, d)
		if !strings.HasPrefix(m.Text, `42["message",`) || string(m.Fields["data"]) != "2" {
			t.Errorf("Socket.IO target got %s", m.Text)
		}
	})

	t.Run("no such connection", func(t *testing.T) {
		f.hub.Close(c.s)
		for _, to := range []string{"nobody", "", testNode + "zzzzzz", c.id()} {
			f.tr.reset()
			f.do(a, reqSendTo(t, to, `1`)).wantErr(t, chat.CodeNoSuchConnection)
			if ds := f.tr.allDeliveries(); len(ds) != 0 {
				t.Errorf("send to %q delivered %v", to, texts(ds))
			}
		}
	})
}

// TestRoomsList: every room with its count, sorted by name; [] with none.
func TestRoomsList(t *testing.T) {
	f := newHub(t, chat.Config{})
	a := f.open(0)
	r := f.must(a, withID(reqRooms(), "1"))
	if len(r.Rooms) != 0 || r.Raw != `{"type":"ack","id":1,"rooms":[]}` {
		t.Fatalf("empty rooms list %s", r.Raw)
	}
	members := map[string]int{"lobby": 3, "alpha": 1, "zeta": 2, "Beta": 1, "é": 2, "a b": 1}
	var cls []*client
	for range 3 {
		cls = append(cls, f.open(len(cls)%testLoops))
	}
	for room, n := range members {
		for i := range n {
			f.must(cls[i], reqJoin(room))
		}
	}
	want := []chat.RoomInfo{{"Beta", 1}, {"a b", 1}, {"alpha", 1}, {"lobby", 3}, {"zeta", 2}, {"é", 2}}
	for range 3 {
		r = f.must(a, reqRooms())
		if !equalRooms(r.Rooms, want) {
			t.Fatalf("rooms %+v, want %+v", r.Rooms, want)
		}
		var wire struct {
			Rooms []struct {
				Room  string
				Count int
			}
		}
		if err := json.Unmarshal([]byte(r.Raw), &wire); err != nil || len(wire.Rooms) != len(want) {
			t.Fatalf("wire rooms %s", r.Raw)
		}
		for i, w := range wire.Rooms {
			if w.Room != want[i].Room || w.Count != want[i].Count {
				t.Fatalf("wire rooms %s, want %+v", r.Raw, want)
			}
		}
	}
}

func equalRooms(a, b []chat.RoomInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMembers: answered only to members, sorted by id, with nick and user.
func TestMembers(t *testing.T) {
	f := newHub(t, chat.Config{})
	var cls []*client
	for i := range 7 {
		var cl *client
		if i == 3 {
			cl = f.openAs(i%testLoops, kindSocketIO, identity(t, "carol", nil))
		} else {
			cl = f.open(i % testLoops)
		}
		f.must(cl, reqNick("n"+itoa(i)))
		cls = append(cls, cl)
	}
	x := f.open(0)
	f.must(x, reqJoin("other"))
	// Join in an order unrelated to the ids.
	for _, i := range []int{4, 0, 6, 2, 5, 1, 3} {
		f.must(cls[i], reqJoin("lobby"))
	}

	t.Run("not member", func(t *testing.T) {
		f.do(x, reqMembers("lobby")).wantErr(t, chat.CodeNotMember)
		f.do(x, reqMembers("nowhere")).wantErr(t, chat.CodeNotMember)
	})

	want := ids(cls...)
	for range 5 { // the table's member order is a map's
		r := f.must(cls[0], withID(reqMembers("lobby"), "2"))
		if string(r.Room) != "lobby" || r.JSON["room"] != "lobby" {
			t.Fatalf("members reply room %q, wire %s", r.Room, r.Raw)
		}
		var got []string
		for _, m := range r.Members {
			got = append(got, m.ID)
		}
		if !equalStrings(got, want) {
			t.Fatalf("members %v, want sorted by id %v", got, want)
		}
		for i, m := range r.Members {
			idx := -1
			for j, cl := range cls {
				if cl.id() == m.ID {
					idx = j
				}
			}
			if m.Nick != "n"+itoa(idx) {
				t.Errorf("member %d nick %q, want n%d", i, m.Nick, idx)
			}
			wantUser := ""
			if idx == 3 {
				wantUser = "carol"
			}
			if m.User != wantUser {
				t.Errorf("member %s user %q, want %q", m.ID, m.User, wantUser)
			}
		}
		var wire struct {
			Members []struct{ ID, Nick, User string }
		}
		if err := json.Unmarshal([]byte(r.Raw), &wire); err != nil || len(wire.Members) != len(want) {
			t.Fatalf("wire members %s", r.Raw)
		}
		for i, m := range wire.Members {
			if m.ID != want[i] {
				t.Fatalf("wire members %s not sorted by id", r.Raw)
			}
		}
	}
}

// TestClose: closing leaves every room with presence to the others, forgets
// the session, and is harmless the second time.
func TestClose(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a := f.openAs(0, kindNative, identity(t, "alice-sub", nil))
	b, c := f.open(1), f.openAs(2, kindSocketIO, nil)
	if f.hub.Sessions() != 3 {
		t.Fatalf("Sessions() = %d, want 3", f.hub.Sessions())
	}
	f.must(a, reqNick("alice"))
	f.must(a, reqJoin("r1"))
	f.must(a, reqJoin("r2"))
	f.must(a, reqJoin("alone"))
	f.must(b, reqJoin("r1"))
	f.must(c, reqJoin("r1"))
	f.must(c, reqJoin("r2"))
	f.tr.reset()

	if f.hub.Lookup([]byte(a.id())) != a.s {
		t.Fatalf("Lookup(%s) does not find the open session", a.id())
	}
	f.hub.Close(a.s)
	if f.hub.Sessions() != 2 {
		t.Errorf("Sessions() = %d after Close, want 2", f.hub.Sessions())
	}
	if f.hub.Lookup([]byte(a.id())) != nil {
		t.Errorf("Lookup finds a closed session")
	}
	wantPresence(t, f.tr.onlyTo(t, b), "r1", "leave", a, 2)
	got := f.tr.to(c)
	if len(got) != 2 {
		t.Fatalf("c got %v, want a leave for r1 and r2", texts(got))
	}
	if got[0].str(t, "room") == "r2" {
		got[0], got[1] = got[1], got[0]
	}
	wantPresence(t, got[0], "r1", "leave", a, 2)
	wantPresence(t, got[1], "r2", "leave", a, 1)
	if len(f.tr.to(a)) != 0 {
		t.Errorf("closed session got %v", texts(f.tr.to(a)))
	}
	if got := f.tableMembers("r1"); !equalStrings(got, ids(b, c)) {
		t.Errorf("r1 members %v", got)
	}
	if got := f.tableMembers("r2"); !equalStrings(got, ids(c)) {
		t.Errorf("r2 members %v", got)
	}
	if f.table.Count([]byte("alone")) != 0 || f.table.Len() != 2 {
		t.Errorf("the closed session's own room remains: %d rooms", f.table.Len())
	}

	t.Run("twice", func(t *testing.T) {
		f.tr.reset()
		f.hub.Close(a.s)
		if f.hub.Sessions() != 2 {
			t.Errorf("Sessions() = %d after a second Close, want 2", f.hub.Sessions())
		}
		if ds := f.tr.allDeliveries(); len(ds) != 0 {
			t.Errorf("second Close sent %v", texts(ds))
		}
	})

	f.hub.Close(b.s)
	f.hub.Close(c.s)
	if f.hub.Sessions() != 0 || f.table.Len() != 0 {
		t.Errorf("after closing everyone: %d sessions, %d rooms", f.hub.Sessions(), f.table.Len())
	}
}

// TestPresenceOff: with Config.Presence false, joins, leaves and closes
// fan nothing out.
func TestPresenceOff(t *testing.T) {
	f := newHub(t, chat.Config{Presence: false})
	a, b, c := f.open(0), f.open(1), f.open(2)
	for _, cl := range []*client{a, b, c} {
		f.must(cl, reqJoin("lobby"))
	}
	if r := f.must(c, reqLeave("lobby")); r.Count != 2 {
		t.Errorf("leave count %d, want 2", r.Count)
	}
	if r := f.must(c, reqJoin("lobby")); r.Count != 3 {
		t.Errorf("join count %d, want 3", r.Count)
	}
	f.hub.Close(c.s)
	f.hub.DeliverPresence(&chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "remote000001", Count: 3})
	if n := len(f.tr.fanoutCalls()); n != 0 {
		t.Errorf("%d Fanout calls with presence off: %v", n, texts(f.tr.allDeliveries()))
	}
	// Messages still flow.
	f.must(a, reqSendRoom(t, "lobby", `1`))
	if got := f.tr.recipients(); !equalStrings(got, ids(b)) {
		t.Errorf("message delivered to %v, want %v", got, ids(b))
	}
}

// TestHubPushAndDisconnect: Hub.Push and Hub.Disconnect pass through to
// the transport unchanged.
func TestHubPushAndDisconnect(t *testing.T) {
	f := newHub(t, chat.Config{})
	a, b := f.open(0), f.open(1)
	p := payload.New([]byte(`{"type":"custom","x":1}`))
	f.external.Add(1)
	f.hub.Push(b.s, p)
	pushes := f.tr.pushCalls()
	if len(pushes) != 1 || pushes[0] != p {
		t.Fatalf("Push calls %v, want the payload itself", pushes)
	}
	if m := f.tr.onlyTo(t, b); m.Type != "custom" || m.Via != "push" {
		t.Errorf("b got %s via %s", m.Text, m.Via)
	}
	if len(f.tr.to(a)) != 0 {
		t.Errorf("a got %v", texts(f.tr.to(a)))
	}

	for _, d := range []chat.Disconnect{chat.DisconnectServer, chat.DisconnectRateLimit, {Code: 4321, Reason: "bye"}} {
		f.tr.reset()
		f.hub.Disconnect(a.s, d)
		f.tr.mu.Lock()
		got := append([]disconnectCall(nil), f.tr.disconnects...)
		f.tr.mu.Unlock()
		if len(got) != 1 || got[0].To != a.s || got[0].D != d {
			t.Errorf("Disconnect calls %+v, want one to %s with %+v", got, a.id(), d)
		}
	}
}

// TestSessionIDs: ids are unique, carry the node tag, and Lookup finds
// them.
func TestSessionIDs(t *testing.T) {
	f := newHub(t, chat.Config{})
	seen := map[string]bool{}
	for i := range 100 {
		c := f.open(i % testLoops)
		if !strings.HasPrefix(c.id(), testNode) || len(c.id()) < len(testNode)+6 {
			t.Fatalf("id %q: want node tag %q and at least 6 more characters", c.id(), testNode)
		}
		if seen[c.id()] {
			t.Fatalf("duplicate id %q", c.id())
		}
		seen[c.id()] = true
		if f.hub.Lookup([]byte(c.id())) != c.s {
			t.Fatalf("Lookup(%q) does not find the session", c.id())
		}
	}
	if f.hub.Lookup([]byte("nope")) != nil {
		t.Fatalf("Lookup of an unknown id found a session")
	}
	if f.hub.Sessions() != 100 {
		t.Fatalf("Sessions() = %d, want 100", f.hub.Sessions())
	}
}

// TestConcurrentLoops: the hub is used by every event loop at once; each
// session stays on its own goroutine. Run with -race.
func TestConcurrentLoops(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true, MaxRooms: 3})
	const perLoop, rounds = 4, 30
	var wg sync.WaitGroup
	for loop := range testLoops {
		cls := make([]*client, perLoop)
		for i := range cls {
			cls[i] = f.openAs(loop, loop%2, nil)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for i, cl := range cls {
					room := "room" + itoa((r+i)%4)
					req := reqJoin(room)
					f.hub.Handle(cl.s, &req)
					req = reqNick("n" + itoa(r))
					f.hub.Handle(cl.s, &req)
					req = reqSendRoom(t, room, `{"r":1}`)
					f.hub.Handle(cl.s, &req)
					req = reqSendTo(t, cls[(i+1)%perLoop].id(), `2`)
					f.hub.Handle(cl.s, &req)
					req = reqMembers(room)
					f.hub.Handle(cl.s, &req)
					req = reqRooms()
					f.hub.Handle(cl.s, &req)
					if r%3 == 2 {
						req = reqLeave(room)
						f.hub.Handle(cl.s, &req)
					}
				}
			}
			for _, cl := range cls {
				for _, rep := range cl.peer.replies {
					if rep.Err != nil && rep.Err.Code != chat.CodeTooManyRooms && rep.Err.Code != chat.CodeNotMember {
						t.Errorf("unexpected error %s", rep.Err.Code)
					}
				}
				f.hub.Close(cl.s)
			}
		}()
	}
	wg.Wait()
	if f.hub.Sessions() != 0 || f.table.Len() != 0 {
		t.Errorf("after closing everyone: %d sessions, %d rooms", f.hub.Sessions(), f.table.Len())
	}
	if len(f.tr.allDeliveries()) == 0 {
		t.Errorf("nothing was delivered")
	}
}
