package chat_test

import (
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/socketio"
)

// Rooms per Socket.IO namespace (chat/namespace.go): a session's rooms are
// keyed by its namespace, so the same name in two namespaces is two rooms.

// TestRoomKeys: "/" rooms keep their plain name; others are qualified,
// and split back.
func TestRoomKeys(t *testing.T) {
	for _, tc := range []struct{ nsp, room, key string }{
		{"/", "lobby", "lobby"},
		{"", "lobby", "lobby"},
		{"/admin", "lobby", "/admin\x1flobby"},
		{"/a/b", "x/y", "/a/b\x1fx/y"},
	} {
		if got := string(chat.RoomKey(tc.nsp, []byte(tc.room))); got != tc.key {
			t.Errorf("RoomKey(%q, %q) = %q, want %q", tc.nsp, tc.room, got, tc.key)
		}
		if got := chat.RoomKeyString(tc.nsp, tc.room); got != tc.key {
			t.Errorf("RoomKeyString(%q, %q) = %q, want %q", tc.nsp, tc.room, got, tc.key)
		}
		wantNsp := tc.nsp
		if wantNsp == "" {
			wantNsp = "/"
		}
		nsp, room := chat.SplitRoom([]byte(tc.key))
		if string(nsp) != wantNsp || string(room) != tc.room {
			t.Errorf("SplitRoom(%q) = %q, %q; want %q, %q", tc.key, nsp, room, wantNsp, tc.room)
		}
		if !chat.InNamespace(tc.key, wantNsp) {
			t.Errorf("InNamespace(%q, %q) = false", tc.key, wantNsp)
		}
	}
	if chat.InNamespace("/admin\x1flobby", "/") || chat.InNamespace("lobby", "/admin") || chat.InNamespace("/adminx\x1flobby", "/admin") {
		t.Error("InNamespace accepts a key of another namespace")
	}
}

// TestCheckNamespace: names start with "/", are at most 256 bytes of text
// without commas (the wire ends a namespace at one).
func TestCheckNamespace(t *testing.T) {
	for _, ok := range []string{"/", "/admin", "/a/b-c_d.e", "/é", "/" + strings.Repeat("n", 255)} {
		if err := chat.CheckNamespace(ok); err != nil {
			t.Errorf("CheckNamespace(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "admin", "/a,b", "/a\x1fb", "/a\nb", "/\xff", "/" + strings.Repeat("n", 256)} {
		if err := chat.CheckNamespace(bad); err == nil {
			t.Errorf("CheckNamespace(%q) = nil, want an error", bad)
		}
	}
}

// TestNamespaceRooms: a session of "/admin" and one of "/" in rooms of
// the same name are in two rooms: joins count apart, messages and
// presence stay in their namespace, lists show each namespace its own
// rooms under their plain names, and the Socket.IO codec writes a
// namespace's room events on that namespace.
func TestNamespaceRooms(t *testing.T) {
	f := newHub(t, chat.Config{Presence: true})
	root := f.openAs(0, kindSocketIO, nil)
	native := f.open(1)
	admin := f.openAs(1, kindSocketIO, nil)
	admin.s.SetNamespace("/admin")
	admin2 := f.openAs(2, kindSocketIO, nil)
	admin2.s.SetNamespace("/admin")
	if admin.s.Namespace() != "/admin" || root.s.Namespace() != "/" || native.s.Namespace() != "/" {
		t.Fatalf("namespaces %q %q %q", admin.s.Namespace(), root.s.Namespace(), native.s.Namespace())
	}

	if r := f.must(root, reqJoin("lobby")); r.Count != 1 {
		t.Fatalf("/ join count %d, want 1", r.Count)
	}
	if r := f.must(native, reqJoin("lobby")); r.Count != 2 {
		t.Fatalf("/ join count %d, want 2", r.Count)
	}
	if r := f.must(admin, reqJoin("lobby")); r.Count != 1 || string(r.Room) != "/admin\x1flobby" {
		t.Fatalf("/admin join: count %d, room %q; want 1 in /admin's lobby", r.Count, r.Room)
	}
	f.tr.reset()
	f.must(admin2, reqJoin("lobby"))
	p := f.tr.onlyTo(t, admin)
	if !strings.HasPrefix(p.Text, `42/admin,["presence",{"room":"lobby",`) {
		t.Fatalf("presence %q, want it on /admin with the plain room name", p.Text)
	}
	if got := f.tr.recipients(); len(got) != 1 {
		t.Fatalf("presence reached %v, want only /admin's member", got)
	}

	f.tr.reset()
	f.must(admin, reqSendRoom(t, "lobby", `"secret"`))
	m := f.tr.onlyTo(t, admin2)
	if !strings.HasPrefix(m.Text, `42/admin,["message",{"room":"lobby","from":"`+admin.id()+`"`) {
		t.Fatalf("message %q, want it on /admin with the plain room name", m.Text)
	}
	if got := f.tr.recipients(); len(got) != 1 {
		t.Fatalf("/admin's message reached %v, want only /admin's other member", got)
	}
	f.tr.reset()
	f.must(native, reqSendRoom(t, "lobby", `"public"`))
	if m := f.tr.onlyTo(t, root); !strings.HasPrefix(m.Text, `42["message",{"room":"lobby"`) {
		t.Fatalf("message %q, want it on /", m.Text)
	}
	if got := f.tr.recipients(); len(got) != 1 {
		t.Fatalf("/'s message reached %v, want only /'s other member", got)
	}

	// Members and rooms lists.
	if r := f.must(admin, reqMembers("lobby")); len(r.Members) != 2 {
		t.Fatalf("/admin members %v, want 2", r.Members)
	}
	f.must(admin, reqJoin("ops"))
	r := f.must(admin2, reqRooms())
	if len(r.Rooms) != 2 || r.Rooms[0].Count != 2 || r.Rooms[1].Count != 1 {
		t.Fatalf("/admin rooms %v, want lobby (2) and ops (1)", r.Rooms)
	}
	wire := string(socketio.Codec{}.AppendReply(nil, &chat.Reply{ID: []byte("1"), Op: chat.OpRooms, Rooms: r.Rooms}))
	if wire != `431[{"rooms":[{"room":"lobby","count":2},{"room":"ops","count":1}]}]` {
		t.Fatalf("/admin rooms on the wire %s", wire)
	}
	if r := f.must(native, reqRooms()); len(r.Rooms) != 1 || r.Rooms[0].Room != "lobby" || r.Rooms[0].Count != 2 {
		t.Fatalf("/ rooms %v, want only lobby (2)", r.Rooms)
	}

	// A name with the separator is no room, in any namespace.
	f.do(native, reqJoin("/admin\x1flobby")).wantErr(t, chat.CodeInvalidRoom)
	f.do(admin, reqJoin("x\x1flobby")).wantErr(t, chat.CodeInvalidRoom)
	// The room part of a key obeys the room rules.
	f.do(admin, reqJoin(strings.Repeat("r", chat.MaxRoomLen+1))).wantErr(t, chat.CodeInvalidRoom)
	f.must(admin, reqJoin(strings.Repeat("r", chat.MaxRoomLen)))
}

// TestWithNamespace: what was encoded for "/" is rewritten on a
// namespace after the packet type and attachment count; a packet already
// on a namespace, and "/" itself, are left as they are.
func TestWithNamespace(t *testing.T) {
	for _, tc := range []struct{ in, nsp, want string }{
		{`431[{"ok":true}]`, "/admin", `43/admin,1[{"ok":true}]`},
		{`42["message",1]`, "/admin", `42/admin,["message",1]`},
		{`451-["message",{"_placeholder":true,"num":0}]`, "/a", `451-/a,["message",{"_placeholder":true,"num":0}]`},
		{`42/b,["x"]`, "/admin", `42/b,["x"]`},
		{`42["x"]`, "/", `42["x"]`},
		{`2`, "/admin", `2`},
	} {
		if got := string(socketio.WithNamespace([]byte("pre"), []byte(tc.in), []byte(tc.nsp))); got != "pre"+tc.want {
			t.Errorf("WithNamespace(%q, %q) = %q, want %q", tc.in, tc.nsp, got, "pre"+tc.want)
		}
	}
}

// recordingBackend answers every call of kind with answer and keeps the
// bodies it got.
type recordingBackend struct {
	syncBackend
	bodies []string
}

func (b *recordingBackend) Call(k chat.CallKind, body []byte, done func(chat.BackendAnswer)) {
	b.bodies = append(b.bodies, string(body))
	b.syncBackend.Call(k, body, done)
}

// TestNamespaceBackendCommands: a backend's commands for a session of
// "/admin" join its namespace's rooms, an emit to a room goes to the
// caller's namespace or to the one it names, and the event call tells the
// backend the namespace and the rooms by their plain names.
func TestNamespaceBackendCommands(t *testing.T) {
	f := newHub(t, chat.Config{})
	be := &recordingBackend{syncBackend: syncBackend{kind: chat.CallEvent, answer: chat.BackendAnswer{
		Result: []byte(`{"commands":[{"join":"lobby"},{"emit":{"event":"e","args":[{"n":1}],"to":{"room":"lobby"}}},` +
			`{"emit":{"event":"r","args":[{"n":2}],"to":{"room":"lobby","namespace":"/"}}}]}`)}}}
	f.hub.SetBackend(be)
	admin := f.openAs(0, kindSocketIO, nil)
	admin.s.SetNamespace("/admin")
	other := f.openAs(1, kindSocketIO, nil)
	other.s.SetNamespace("/admin")
	f.must(other, reqJoin("lobby"))
	root := f.openAs(2, kindSocketIO, nil)
	f.must(root, reqJoin("lobby"))
	f.tr.reset()

	rpc := chat.Request{Op: chat.OpRPC, ID: []byte("1"), Event: []byte("go"), Args: []byte("[]")}
	f.must(admin, rpc)
	if rooms := admin.s.Rooms(); len(rooms) != 1 || rooms[0] != "/admin\x1flobby" {
		t.Fatalf("rooms %q, want /admin's lobby", rooms)
	}
	var atOther, atRoot []string
	for _, d := range f.tr.allDeliveries() {
		switch d.To {
		case other.s:
			atOther = append(atOther, d.Text)
		case root.s:
			atRoot = append(atRoot, d.Text)
		}
	}
	if len(atOther) != 1 || !strings.HasPrefix(atOther[0], `42/admin,["e",{"n":1}`) {
		t.Fatalf("/admin's member got %q, want the emit on /admin", atOther)
	}
	if len(atRoot) != 1 || !strings.HasPrefix(atRoot[0], `42["r",{"n":2}`) {
		t.Fatalf("/'s member got %q, want the emit to / only", atRoot)
	}
	// The next call names the namespace and the room without it.
	f.must(admin, rpc)
	if body := be.bodies[1]; !strings.Contains(body, `"rooms":["lobby"]`) || !strings.Contains(body, `"namespace":"/admin"`) {
		t.Fatalf("event call %s, want the namespace and the plain room", body)
	}
}
