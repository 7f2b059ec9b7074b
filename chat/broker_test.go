package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

func newClusterHub(t *testing.T, cfg chat.Config) (*fixture, *fakeBroker) {
	t.Helper()
	f := newHub(t, cfg)
	b := &fakeBroker{
		count:   map[string]int{},
		members: map[string][]chat.MemberInfo{},
		rooms:   map[string]int{},
		nodes:   map[string]string{},
	}
	f.hub.SetBroker(b)
	return f, b
}

func wantCalls(t *testing.T, b *fakeBroker, what string, want ...string) {
	t.Helper()
	if got := b.takeCalls(); !equalStrings(got, want) {
		t.Errorf("%s: broker calls %q, want %q", what, got, want)
	}
}

// TestBrokerMembershipCalls: the broker hears of every change of a local
// session's membership, and of nothing that was refused.
func TestBrokerMembershipCalls(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{Presence: true, MaxRooms: 2})
	a := f.open(0)
	wantCalls(t, br, "open", fmt.Sprintf(`opened %s "" ""`, a.id()))
	bob := f.openAs(1, kindNative, identity(t, "bob", []string{"lobby", "r2"}))
	wantCalls(t, br, "open with identity", fmt.Sprintf(`opened %s "" "bob"`, bob.id()))

	f.must(a, reqNick("alice"))
	wantCalls(t, br, "nick", fmt.Sprintf(`nick %s "alice"`, a.id()))
	f.do(a, reqNick("")).wantErr(t, chat.CodeInvalidName)
	wantCalls(t, br, "refused nick")

	f.must(a, reqJoin("lobby"))
	wantCalls(t, br, "join", fmt.Sprintf(`joined %s "lobby"`, a.id()))
	f.must(a, reqJoin("lobby"))
	wantCalls(t, br, "join twice")
	f.do(a, reqJoin("")).wantErr(t, chat.CodeInvalidRoom)
	f.do(bob, reqJoin("secret")).wantErr(t, chat.CodeForbidden)
	f.must(a, reqJoin("r2"))
	br.takeCalls()
	f.do(a, reqJoin("r3")).wantErr(t, chat.CodeTooManyRooms)
	wantCalls(t, br, "refused joins")

	f.must(a, reqLeave("r2"))
	wantCalls(t, br, "leave", fmt.Sprintf(`left %s "r2"`, a.id()))
	f.do(a, reqLeave("r2")).wantErr(t, chat.CodeNotMember)
	wantCalls(t, br, "refused leave")

	f.must(a, reqSendRoom(t, "lobby", `1`))
	f.must(a, reqRooms())
	f.must(a, reqMembers("lobby"))
	f.must(a, reqPing())
	wantCalls(t, br, "send, rooms, members, ping")

	f.hub.Close(a.s)
	got := br.takeCalls()
	closed := fmt.Sprintf("closed %s", a.id())
	n := 0
	for _, c := range got {
		if c == closed {
			n++
		} else if !strings.HasPrefix(c, "left "+a.id()+" ") {
			t.Errorf("Close made the broker call %q", c)
		}
	}
	if n != 1 {
		t.Errorf("Close: broker calls %q, want %q once", got, closed)
	}
	f.hub.Close(a.s)
	wantCalls(t, br, "second Close")
}

// TestBrokerPublishRoom: a room message is handed to the broker once, with
// the same fields as local recipients get, even when the sender is alone
// on this node.
func TestBrokerPublishRoom(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{Presence: true})
	a := f.openAs(0, kindNative, identity(t, "alice-sub", nil))
	b, x := f.open(1), f.open(2)
	f.must(a, reqNick("alice"))
	f.must(a, reqJoin("lobby"))
	f.must(x, reqJoin("other"))
	f.tr.reset()

	data := `{"t": "x" }`
	f.must(a, reqSendRoom(t, "lobby", data))
	want := gotMessage{Room: "lobby", From: a.id(), Nick: "alice", User: "alice-sub", Data: data, TS: testTS}
	if len(br.room) != 1 || !equalMessage(br.room[0], want) {
		t.Fatalf("PublishRoom calls %+v, want one %+v", br.room, want)
	}
	if n := len(f.tr.fanoutCalls()); n != 0 {
		t.Errorf("alone locally: %d Fanout calls", n)
	}

	f.must(b, reqJoin("lobby"))
	br.room = nil
	f.tr.reset()
	f.must(a, reqSendRoom(t, "lobby", data))
	if len(br.room) != 1 || !equalMessage(br.room[0], want) {
		t.Fatalf("PublishRoom calls %+v, want one %+v", br.room, want)
	}
	if got := f.tr.recipients(); !equalStrings(got, ids(b)) {
		t.Errorf("local delivery to %v, want %v", got, ids(b))
	}

	br.room = nil
	f.do(x, reqSendRoom(t, "lobby", data)).wantErr(t, chat.CodeNotMember)
	f.must(a, reqSendTo(t, b.id(), data))
	if len(br.room) != 0 || len(br.direct) != 0 {
		t.Errorf("refused or local direct sends published: room %+v direct %+v", br.room, br.direct)
	}
}

func equalMessage(a, b gotMessage) bool {
	return a.Room == b.Room && a.From == b.From && a.Nick == b.Nick && a.User == b.User &&
		a.Data == b.Data && a.TS == b.TS && equalStrings(a.Attachments, b.Attachments)
}

// TestBrokerCounts: join and leave counts, and presence counts, include
// the room's members on other nodes.
func TestBrokerCounts(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{Presence: true})
	br.count["lobby"] = 5
	a, b, c := f.open(0), f.open(1), f.open(2)

	if r := f.must(a, reqJoin("lobby")); r.Count != 6 {
		t.Errorf("join count %d, want 1 local + 5 remote", r.Count)
	}
	if r := f.must(b, reqJoin("lobby")); r.Count != 7 {
		t.Errorf("join count %d, want 7", r.Count)
	}
	wantPresence(t, f.tr.onlyTo(t, a), "lobby", "join", b, 7)
	if r := f.must(b, reqJoin("lobby")); r.Count != 7 {
		t.Errorf("join twice count %d, want 7", r.Count)
	}
	f.must(c, reqJoin("lobby"))
	f.tr.reset()

	if r := f.must(b, reqLeave("lobby")); r.Count != 7 {
		t.Errorf("leave count %d, want 2 local + 5 remote", r.Count)
	}
	wantPresence(t, f.tr.onlyTo(t, a), "lobby", "leave", b, 7)
	f.tr.reset()

	f.hub.Close(a.s)
	wantPresence(t, f.tr.onlyTo(t, c), "lobby", "leave", a, 6)
	f.tr.reset()
	if r := f.must(c, reqLeave("lobby")); r.Count != 5 {
		t.Errorf("last local leave count %d, want 5 remote", r.Count)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Errorf("no local member left, yet delivered %v", texts(ds))
	}
}

// TestBrokerSendDirect: a direct message to an id that is not local goes
// to the node the broker names, or fails with no_such_connection.
func TestBrokerSendDirect(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{})
	a := f.openAs(0, kindNative, identity(t, "alice-sub", nil))
	b := f.open(1)
	f.must(a, reqNick("alice"))
	br.nodes["rmt0000001"] = "node-b"
	data := `{"x": [1,2]}`

	f.must(a, withID(reqSendTo(t, "rmt0000001", data), "4"))
	want := directPublish{Node: "node-b", To: "rmt0000001",
		Msg: gotMessage{From: a.id(), Nick: "alice", User: "alice-sub", Data: data, TS: testTS}}
	if len(br.direct) != 1 || br.direct[0].Node != want.Node || br.direct[0].To != want.To || !equalMessage(br.direct[0].Msg, want.Msg) {
		t.Fatalf("PublishDirect calls %+v, want %+v", br.direct, want)
	}
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Errorf("a remote direct message was delivered locally: %v", texts(ds))
	}

	br.direct = nil
	f.do(a, reqSendTo(t, "unknown0001", data)).wantErr(t, chat.CodeNoSuchConnection)
	if len(br.direct) != 0 {
		t.Errorf("unknown id published: %+v", br.direct)
	}

	f.must(a, reqSendTo(t, b.id(), data))
	if len(br.direct) != 0 {
		t.Errorf("local id published: %+v", br.direct)
	}
	if got := f.tr.recipients(); !equalStrings(got, ids(b)) {
		t.Errorf("local direct message delivered to %v", got)
	}
}

// TestBrokerRoomsList: remote rooms and counts are merged into the list,
// still sorted by name.
func TestBrokerRoomsList(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{})
	a, b := f.open(0), f.open(1)
	f.must(a, reqJoin("lobby"))
	f.must(b, reqJoin("lobby"))
	f.must(a, reqJoin("alpha"))
	br.rooms["lobby"] = 3
	br.rooms["zeta"] = 4
	br.rooms["beta"] = 1
	want := []chat.RoomInfo{{"alpha", 1}, {"beta", 1}, {"lobby", 5}, {"zeta", 4}}
	for range 3 { // the merge goes through a map
		r := f.must(a, reqRooms())
		if !equalRooms(r.Rooms, want) {
			t.Fatalf("rooms %+v, want %+v", r.Rooms, want)
		}
		if !strings.Contains(r.Raw, `"rooms":[{"room":"alpha","count":1},{"room":"beta","count":1},{"room":"lobby","count":5},{"room":"zeta","count":4}]`) {
			t.Fatalf("wire rooms %s", r.Raw)
		}
	}
}

// TestBrokerMembers: remote members are added to the list, which stays
// sorted by id; a room only other nodes have is still not_member.
func TestBrokerMembers(t *testing.T) {
	f, br := newClusterHub(t, chat.Config{})
	a, b := f.open(0), f.open(1)
	f.must(a, reqNick("alice"))
	f.must(a, reqJoin("lobby"))
	f.must(b, reqJoin("lobby"))
	br.members["lobby"] = []chat.MemberInfo{{ID: "zzzz000001", Nick: "zed"}, {ID: "0000000001", Nick: "zero", User: "carol"}}
	br.members["elsewhere"] = []chat.MemberInfo{{ID: "yyyy000001"}}

	r := f.must(a, reqMembers("lobby"))
	want := []chat.MemberInfo{{ID: "0000000001", Nick: "zero", User: "carol"}, {ID: a.id(), Nick: "alice"}, {ID: b.id()}, {ID: "zzzz000001", Nick: "zed"}}
	if len(r.Members) != len(want) {
		t.Fatalf("members %+v, want %+v", r.Members, want)
	}
	for i := range want {
		if r.Members[i] != want[i] {
			t.Fatalf("members %+v, want %+v", r.Members, want)
		}
	}
	if !strings.Contains(r.Raw, `{"id":"0000000001","nick":"zero","user":"carol"}`) {
		t.Errorf("wire members %s", r.Raw)
	}
	f.do(a, reqMembers("elsewhere")).wantErr(t, chat.CodeNotMember)
}

// TestDeliverRoom: a room message from another node reaches every local
// member (nobody is skipped) in its encoding, with the message's own ts.
func TestDeliverRoom(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	a, b := f.open(0), f.openAs(1, kindSocketIO, nil)
	x := f.open(2)
	f.must(a, reqJoin("lobby"))
	f.must(b, reqJoin("lobby"))
	f.must(x, reqJoin("other"))
	f.tr.reset()

	f.hub.DeliverRoom(&chat.Message{Room: []byte("lobby"), From: "rmt0000001", Nick: "r", User: "ru", Data: []byte(`[1, 2]`), TS: 42})
	calls := f.tr.fanoutCalls()
	if len(calls) != 1 || calls[0].Skip != nil {
		t.Fatalf("Fanout calls %+v, want one skipping nobody", calls)
	}
	if got := f.tr.recipients(); !equalStrings(got, ids(a, b)) {
		t.Fatalf("delivered to %v, want %v", got, ids(a, b))
	}
	for _, cl := range []*client{a, b} {
		m := f.tr.onlyTo(t, cl)
		if m.Type != "message" || m.str(t, "room") != "lobby" || m.str(t, "from") != "rmt0000001" || m.str(t, "nick") != "r" ||
			m.str(t, "user") != "ru" || string(m.Fields["data"]) != `[1, 2]` || m.num(t, "ts") != 42 {
			t.Errorf("%s got %s", cl.id(), m.Text)
		}
	}

	f.tr.reset()
	f.hub.DeliverRoom(&chat.Message{Room: []byte("nowhere"), From: "rmt0000001", Data: []byte(`1`), TS: 1})
	if n := len(f.tr.fanoutCalls()); n != 0 {
		t.Errorf("message for a room without local members: %d Fanout calls", n)
	}
}

// TestDeliverDirect: a direct message from another node reaches the local
// connection through Push, and nothing happens for an unknown one.
func TestDeliverDirect(t *testing.T) {
	f := newHub(t, chat.Config{})
	a, b := f.open(0), f.openAs(1, kindSocketIO, nil)
	for _, to := range []*client{a, b} {
		f.tr.reset()
		f.hub.DeliverDirect([]byte(to.id()), &chat.Message{From: "rmt0000001", Nick: "r", Data: []byte(`"hey"`), TS: 7})
		if got := f.tr.recipients(); !equalStrings(got, ids(to)) {
			t.Fatalf("delivered to %v, want %v", got, ids(to))
		}
		m := f.tr.onlyTo(t, to)
		if m.Via != "push" || m.Type != "message" || m.has("room") || m.str(t, "from") != "rmt0000001" ||
			string(m.Fields["data"]) != `"hey"` || m.num(t, "ts") != 7 {
			t.Errorf("%s got %s via %s", to.id(), m.Text, m.Via)
		}
	}
	f.tr.reset()
	f.hub.DeliverDirect([]byte("gone000001"), &chat.Message{From: "rmt0000001", Data: []byte(`1`)})
	if ds := f.tr.allDeliveries(); len(ds) != 0 {
		t.Errorf("unknown target: delivered %v", texts(ds))
	}
}

// TestDeliverPresence: presence from another node reaches every local
// member of the room, unless presence is off.
func TestDeliverPresence(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("presence=%v", on), func(t *testing.T) {
			f := newHub(t, chat.Config{Presence: on})
			a, b := f.open(0), f.openAs(1, kindSocketIO, nil)
			x := f.open(2)
			f.must(a, reqJoin("lobby"))
			f.must(b, reqJoin("lobby"))
			f.must(x, reqJoin("other"))
			f.tr.reset()
			f.hub.DeliverPresence(&chat.Presence{Room: []byte("lobby"), Event: chat.PresenceLeave, ID: "rmt0000001", Nick: "r", User: "ru", Count: 9})
			f.hub.DeliverPresence(&chat.Presence{Room: []byte("nowhere"), Event: chat.PresenceJoin, ID: "rmt0000001", Count: 1})
			if !on {
				if n := len(f.tr.fanoutCalls()); n != 0 {
					t.Fatalf("presence off: %d Fanout calls", n)
				}
				return
			}
			if got := f.tr.recipients(); !equalStrings(got, ids(a, b)) {
				t.Fatalf("delivered to %v, want %v", got, ids(a, b))
			}
			for _, cl := range []*client{a, b} {
				d := f.tr.onlyTo(t, cl)
				if d.Type != "presence" || d.str(t, "room") != "lobby" || d.str(t, "event") != "leave" ||
					d.str(t, "id") != "rmt0000001" || d.str(t, "nick") != "r" || d.str(t, "user") != "ru" || d.num(t, "count") != 9 {
					t.Errorf("%s got %s", cl.id(), d.Text)
				}
			}
			if calls := f.tr.fanoutCalls(); len(calls) != 1 || calls[0].Skip != nil {
				t.Errorf("Fanout calls %+v, want one skipping nobody", calls)
			}
		})
	}
}
