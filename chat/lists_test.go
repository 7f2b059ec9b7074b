package chat_test

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/chat/socketio"
)

// Room and member lists in pages (limit, cursor), and which rooms a
// client's list shows (Config.RoomsList): see chat/lists.go and
// docs/protocol.md.

// reqRoomsPage and reqMembersPage are list requests as the codecs fill
// them (limit 0: the default).
func reqRoomsPage(limit int, cursor string) chat.Request {
	return chat.Request{Op: chat.OpRooms, Limit: limit, Cursor: []byte(cursor)}
}

func reqMembersPage(room string, limit int, cursor string) chat.Request {
	req := reqMembers(room)
	req.Limit, req.Cursor = limit, []byte(cursor)
	return req
}

// pageAll follows the cursors of a list from the first page to the last
// and returns the pages' sizes and every entry's key in order. It checks
// that the wire reply carries "cursor" exactly when the Reply does.
func pageAll(t *testing.T, f *fixture, c *client, first func(cursor string) chat.Request) (sizes []int, keys []string) {
	t.Helper()
	cursor := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("more than 100 pages: the cursor does not advance")
		}
		r := f.must(c, first(cursor))
		if got, _ := r.JSON["cursor"].(string); got != r.Cursor {
			t.Fatalf("wire cursor %q, Reply.Cursor %q: %s", got, r.Cursor, r.Raw)
		}
		n := 0
		for _, room := range r.Rooms {
			keys = append(keys, room.Room)
			n++
		}
		for _, m := range r.Members {
			keys = append(keys, m.ID)
			n++
		}
		sizes = append(sizes, n)
		if r.Cursor == "" {
			return sizes, keys
		}
		if n == 0 {
			t.Fatalf("page %d is empty but has a cursor: %s", page, r.Raw)
		}
		cursor = r.Cursor
	}
}

func roomName(i int) string { return fmt.Sprintf("room-%04d", i) }

// TestListRoomsPages: following the cursor from page to page lists every
// room exactly once, sorted by name, in pages of the default 100 or of
// the limit asked; local and remote rooms alike.
func TestListRoomsPages(t *testing.T) {
	f := newHub(t, chat.Config{})
	b := &fakeBroker{rooms: map[string]int{}}
	f.hub.SetBroker(b)
	var want []string
	joiners := []*client{f.open(0), f.open(1), f.open(2)}
	for i := range 250 {
		name := roomName(i)
		want = append(want, name)
		if i%5 == 4 {
			b.rooms[name] = 2 // only on another node
			continue
		}
		f.must(joiners[i%3], reqJoin(name))
	}
	b.rooms[roomName(3)] = 7 // on both: one entry, counts added
	c := f.open(0)

	sizes, keys := pageAll(t, f, c, func(cur string) chat.Request { return reqRoomsPage(0, cur) })
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("page sizes %v, want [100 100 50] (default limit 100)", sizes)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("paged rooms (%d) are not every room once, in order (%d)", len(keys), len(want))
	}

	sizes, keys = pageAll(t, f, c, func(cur string) chat.Request { return reqRoomsPage(7, cur) })
	if len(sizes) != 36 || sizes[0] != 7 || sizes[35] != 250-35*7 || !slices.Equal(keys, want) {
		t.Errorf("limit 7: %d pages %v, %d rooms", len(sizes), sizes, len(keys))
	}

	// Exactly 250 rooms in pages of 125 or 250: no empty last page.
	if sizes, _ = pageAll(t, f, c, func(cur string) chat.Request { return reqRoomsPage(125, cur) }); !slices.Equal(sizes, []int{125, 125}) {
		t.Errorf("limit 125: pages %v, want [125 125]", sizes)
	}
	r := f.must(c, reqRoomsPage(250, ""))
	if len(r.Rooms) != 250 || r.Cursor != "" {
		t.Errorf("limit 250: %d rooms, cursor %q", len(r.Rooms), r.Cursor)
	}
	if r.Rooms[3] != (chat.RoomInfo{Room: roomName(3), Count: 8}) || r.Rooms[4] != (chat.RoomInfo{Room: roomName(4), Count: 2}) {
		t.Errorf("counts %+v %+v, want local and remote added", r.Rooms[3], r.Rooms[4])
	}
}

// TestListRoomsStable: rooms that appear or vanish between pages do not
// make the others repeat or go missing.
func TestListRoomsStable(t *testing.T) {
	f := newHub(t, chat.Config{})
	j := f.open(1)
	for i := range 30 {
		f.must(j, reqJoin(roomName(i*10)))
	}
	c := f.open(0)
	first := f.must(c, reqRoomsPage(10, ""))
	if len(first.Rooms) != 10 || first.Cursor == "" {
		t.Fatalf("first page %s", first.Raw)
	}
	f.must(j, reqJoin(roomName(5)))   // before the cursor: not seen
	f.must(j, reqLeave(roomName(50))) // already listed
	f.must(j, reqJoin(roomName(155))) // after it: seen
	f.must(j, reqLeave(roomName(200)))
	_, rest := pageAll(t, f, c, func(cur string) chat.Request {
		if cur == "" {
			cur = first.Cursor
		}
		return reqRoomsPage(10, cur)
	})
	var got []string
	for _, r := range first.Rooms {
		got = append(got, r.Room)
	}
	got = append(got, rest...)
	var want []string
	for i := range 30 {
		if i != 20 {
			want = append(want, roomName(i*10))
		}
	}
	want = append(want, roomName(155))
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("rooms across changing pages:\n got %v\nwant %v", got, want)
	}
}

// TestListRoomsPermitted: by default a client with a rooms claim sees the
// rooms the claim lets it join (and the rooms it is in); an anonymous one
// or a "*" claim sees every room; pages count only what is shown.
func TestListRoomsPermitted(t *testing.T) {
	f := newHub(t, chat.Config{})
	b := &fakeBroker{rooms: map[string]int{"team-remote": 1, "secret-remote": 1}}
	f.hub.SetBroker(b)
	other := f.open(2)
	all := []string{"lobby", "lobby2", "secret-hr-layoffs", "secret-remote", "team-", "team-a", "team-b", "team-remote", "zoo"}
	for _, room := range all {
		if !strings.HasSuffix(room, "-remote") {
			f.must(other, reqJoin(room))
		}
	}
	names := func(r gotReply) []string {
		var out []string
		for _, x := range r.Rooms {
			out = append(out, x.Room)
		}
		return out
	}

	limited := f.openAs(0, kindNative, identity(t, "alice", []string{"lobby", "team-*"}))
	if got := names(f.must(limited, reqRooms())); !slices.Equal(got, []string{"lobby", "team-", "team-a", "team-b", "team-remote"}) {
		t.Errorf("limited token sees %v", got)
	}
	// Pages of 2: full pages, and no cursor after the last permitted room.
	sizes, keys := pageAll(t, f, limited, func(cur string) chat.Request { return reqRoomsPage(2, cur) })
	if !slices.Equal(sizes, []int{2, 2, 1}) || strings.Contains(strings.Join(keys, ","), "secret") {
		t.Errorf("limited token, pages of 2: %v %v", sizes, keys)
	}
	// The server may put a client in a room its token does not name: it
	// sees that room (it is in it), and still no other.
	done := make(chan *chat.Error, 1)
	f.hub.ServerJoin(limited.s, "zoo", func(e *chat.Error) { done <- e })
	if e := <-done; e != nil {
		t.Fatal(e)
	}
	f.external.Add(1) // the "joined" notice pushed to the client
	if got := names(f.must(limited, reqRooms())); !slices.Equal(got, []string{"lobby", "team-", "team-a", "team-b", "team-remote", "zoo"}) {
		t.Errorf("limited token in zoo sees %v", got)
	}

	nothing := f.openAs(1, kindSocketIO, identity(t, "nobody", []string{}))
	if r := f.must(nothing, withID(reqRooms(), "1")); len(r.Rooms) != 0 || r.Cursor != "" {
		t.Errorf("empty claim sees %s", r.Raw)
	}
	for name, c := range map[string]*client{
		"anonymous": f.open(1),
		"no claim":  f.openAs(0, kindNative, identity(t, "bob", nil)),
		"star":      f.openAs(0, kindNative, identity(t, "root", []string{"*"})),
	} {
		if got := names(f.must(c, reqRooms())); !slices.Equal(got, all) {
			t.Errorf("%s sees %v, want every room", name, got)
		}
	}
}

// TestListRoomsAllAndNone: -rooms-list all shows a limited token every
// room; none shows nobody any room, with an ack and no cursor.
func TestListRoomsAllAndNone(t *testing.T) {
	for _, mode := range []chat.RoomsList{chat.RoomsAll, chat.RoomsNone} {
		t.Run(mode.String(), func(t *testing.T) {
			f := newHub(t, chat.Config{RoomsList: mode})
			other := f.open(2)
			for _, room := range []string{"lobby", "secret-hr-layoffs"} {
				f.must(other, reqJoin(room))
			}
			limited := f.openAs(0, kindNative, identity(t, "alice", []string{"lobby", "team-*"}))
			f.must(limited, reqJoin("lobby"))
			for _, c := range []*client{limited, f.open(1), other} {
				r := f.must(c, withID(reqRoomsPage(1, ""), `"x"`))
				switch mode {
				case chat.RoomsAll:
					if len(r.Rooms) != 1 || r.Rooms[0].Room != "lobby" || r.Cursor != chat.EncodeCursor("lobby") {
						t.Errorf("all, page 1: %s", r.Raw)
					}
					r = f.must(c, reqRoomsPage(1, r.Cursor))
					if len(r.Rooms) != 1 || r.Rooms[0].Room != "secret-hr-layoffs" || r.Cursor != "" {
						t.Errorf("all, page 2: %s", r.Raw)
					}
				case chat.RoomsNone:
					if r.Raw != `{"type":"ack","id":"x","rooms":[]}` {
						t.Errorf("none: %s", r.Raw)
					}
				}
			}
		})
	}
}

// TestRoomsListFlag: the flag values of Config.RoomsList.
func TestRoomsListFlag(t *testing.T) {
	var m chat.RoomsList
	if m.String() != "permitted" {
		t.Errorf("zero value %q, want permitted", m)
	}
	for _, s := range []string{"all", "none", "permitted"} {
		if err := m.Set(s); err != nil || m.String() != s {
			t.Errorf("Set(%q): %v, %q", s, err, m)
		}
	}
	for _, s := range []string{"", "All", "some"} {
		if m.Set(s) == nil {
			t.Errorf("Set(%q) accepted", s)
		}
	}
}

// TestListMembersPages: a room's members, local and remote, page by id;
// a member who leaves between pages does not shift the others.
func TestListMembersPages(t *testing.T) {
	f := newHub(t, chat.Config{})
	b := &fakeBroker{members: map[string][]chat.MemberInfo{}}
	f.hub.SetBroker(b)
	var cls []*client
	var want []string
	for i := range 230 {
		c := f.open(i % testLoops)
		f.must(c, reqJoin("lobby"))
		cls = append(cls, c)
		want = append(want, c.id())
	}
	for i := range 20 {
		id := fmt.Sprintf("zz%03d", i) // another node's ids sort after this node's
		b.members["lobby"] = append(b.members["lobby"], chat.MemberInfo{ID: id, Nick: "r"})
		want = append(want, id)
	}
	sort.Strings(want)

	sizes, keys := pageAll(t, f, cls[0], func(cur string) chat.Request { return reqMembersPage("lobby", 0, cur) })
	if !slices.Equal(sizes, []int{100, 100, 50}) || !slices.Equal(keys, want) {
		t.Errorf("members: pages %v, %d ids; want [100 100 50], every member once in id order", sizes, len(keys))
	}
	r := f.must(cls[5], reqMembersPage("lobby", 3, ""))
	if len(r.Members) != 3 || string(r.Room) != "lobby" || r.JSON["room"] != "lobby" || r.Cursor != chat.EncodeCursor(want[2]) {
		t.Fatalf("limit 3: %s", r.Raw)
	}
	// want[3] leaves: the next page starts at want[4].
	var leaver *client
	for _, c := range cls {
		if c.id() == want[3] {
			leaver = c
		}
	}
	f.must(leaver, reqLeave("lobby"))
	asker := cls[0]
	if asker == leaver {
		asker = cls[1]
	}
	r = f.must(asker, reqMembersPage("lobby", 2, r.Cursor))
	if len(r.Members) != 2 || r.Members[0].ID != want[4] || r.Members[1].ID != want[5] {
		t.Errorf("after a leave: %s, want %s and %s", r.Raw, want[4], want[5])
	}
	// Still answered only to members, before any paging.
	f.do(leaver, reqMembersPage("lobby", 2, "")).wantErr(t, chat.CodeNotMember)
}

// TestListLimits: limit defaults to 100, is lowered to 1000, and must be
// a positive integer; a cursor must be one the gateway made.
func TestListLimits(t *testing.T) {
	f := newHub(t, chat.Config{})
	j := f.open(1)
	for i := range 1100 {
		f.must(j, reqJoin(roomName(i)))
	}
	c := f.open(0)
	for _, tc := range []struct{ limit, want int }{{0, 100}, {1, 1}, {999, 999}, {1000, 1000}, {1001, 1000}, {math.MaxInt, 1000}} {
		r := f.must(c, reqRoomsPage(tc.limit, ""))
		if len(r.Rooms) != tc.want || r.Cursor == "" {
			t.Errorf("limit %d: %d rooms (cursor %q), want %d", tc.limit, len(r.Rooms), r.Cursor, tc.want)
		}
	}
	for _, cur := range []string{"not base64!", "=", strings.Repeat("A", 2000)} {
		f.do(c, withID(reqRoomsPage(0, cur), "9")).wantErr(t, chat.CodeMissingField)
		f.do(j, reqMembersPage(roomName(0), 0, cur)).wantErr(t, chat.CodeMissingField)
	}
	// A cursor past every room is an empty last page.
	if r := f.must(c, reqRoomsPage(0, chat.EncodeCursor("zzz"))); len(r.Rooms) != 0 || r.Cursor != "" {
		t.Errorf("past the end: %s", r.Raw)
	}

	// What the codecs accept, through Request.SetList.
	for _, tc := range []struct {
		limit, cursor string // raw JSON, "" for absent
		wantLimit     int
		wantCursor    string
		err           *chat.Error
	}{
		{"", "", 0, "", nil},
		{"1", "", 1, "", nil},
		{"1000", "", 1000, "", nil},
		{"1001", "", 1000, "", nil},
		{"123456789012345678901234567890", "", 1000, "", nil},
		{"null", "null", 0, "", nil},
		{"", `"abc"`, 0, "abc", nil},
		{"", `""`, 0, "", nil},
		{"0", "", 0, "", chat.ErrBadLimit},
		{"-1", "", 0, "", chat.ErrBadLimit},
		{"1.5", "", 0, "", chat.ErrBadLimit},
		{"10.0", "", 0, "", chat.ErrBadLimit},
		{"1e2", "", 0, "", chat.ErrBadLimit},
		{`"10"`, "", 0, "", chat.ErrBadLimit},
		{"true", "", 0, "", chat.ErrBadLimit},
		{"[]", "", 0, "", chat.ErrBadLimit},
		{"", "5", 0, "", chat.ErrBadCursor},
		{"", "{}", 0, "", chat.ErrBadCursor},
	} {
		var req chat.Request
		raw := func(s string) []byte {
			if s == "" {
				return nil
			}
			return []byte(s)
		}
		err := req.SetList(raw(tc.limit), raw(tc.cursor))
		if err != tc.err || err == nil && (req.Limit != tc.wantLimit || string(req.Cursor) != tc.wantCursor) {
			t.Errorf("SetList(%s, %s) = %v, limit %d cursor %q; want %v, %d, %q", tc.limit, tc.cursor, err, req.Limit, req.Cursor, tc.err, tc.wantLimit, tc.wantCursor)
		}
		if err != nil && err.Code != chat.CodeMissingField {
			t.Errorf("SetList(%s, %s): code %s, want missing_field", tc.limit, tc.cursor, err.Code)
		}
	}
}

// TestListReplyBound: the size bound docs/protocol.md states. A rooms
// entry is at most 6×128 + 40 bytes (every byte of a 128-byte name
// escaped as \u00XX, the largest count), so a page of 1000 is under
// 810,000 bytes in either codec; with 128-byte names of letters an entry
// is at most 170 bytes.
func TestListReplyBound(t *testing.T) {
	const entryWorst, entryPlain, overhead = 6*chat.MaxRoomLen + 40, 170, 100
	for _, tc := range []struct {
		name  string
		room  string
		entry int
	}{
		{"control characters", strings.Repeat("\x01", chat.MaxRoomLen), entryWorst},
		{"letters", strings.Repeat("r", chat.MaxRoomLen), entryPlain},
	} {
		r := chat.Reply{ID: []byte("12345678901234567890"), Op: chat.OpRooms, Cursor: chat.EncodeCursor(tc.room)}
		for range chat.MaxListLimit {
			r.Rooms = append(r.Rooms, chat.RoomInfo{Room: tc.room, Count: math.MaxInt})
		}
		for name, codec := range map[string]chat.Codec{"native": native.Codec{}, "socketio": socketio.Codec{}} {
			n := len(codec.AppendReply(nil, &r))
			if limit := chat.MaxListLimit*tc.entry + overhead + len(r.Cursor); n > limit {
				t.Errorf("%s, %s: a page of %d rooms is %d bytes, over the bound %d", name, tc.name, chat.MaxListLimit, n, limit)
			}
		}
	}

	// A member entry: at most 1,800 bytes and the node tag (an id of the
	// tag and at most 13 characters, a 32-character nickname, a user id of
	// at most 256 bytes, every character escaped).
	id := "node" + strings.Repeat("z", 13)
	m := chat.Reply{ID: []byte("12345678901234567890"), Op: chat.OpMembers, Room: []byte(strings.Repeat("<", chat.MaxRoomLen)), Cursor: chat.EncodeCursor(id)}
	for range chat.MaxListLimit {
		m.Members = append(m.Members, chat.MemberInfo{ID: id, Nick: strings.Repeat("<", chat.MaxNickLen), User: strings.Repeat("<", 256)})
	}
	for name, codec := range map[string]chat.Codec{"native": native.Codec{}, "socketio": socketio.Codec{}} {
		n := len(codec.AppendReply(nil, &m))
		if limit := chat.MaxListLimit*(1800+len("node")) + entryWorst + overhead + len(m.Cursor); n > limit {
			t.Errorf("%s: a page of %d members is %d bytes, over the bound %d", name, chat.MaxListLimit, n, limit)
		}
	}

	// Through the hub: a request for 5000 rooms of 128 letters gets 1000.
	f := newHub(t, chat.Config{})
	j := f.open(1)
	for i := range 1200 {
		f.must(j, reqJoin(fmt.Sprintf("%0128d", i)))
	}
	r := f.must(j, reqRoomsPage(5000, ""))
	if len(r.Rooms) != chat.MaxListLimit || len(r.Raw) > chat.MaxListLimit*entryPlain+overhead+len(r.Cursor) {
		t.Errorf("%d rooms in %d bytes", len(r.Rooms), len(r.Raw))
	}
}

// TestListCodecs: limit and cursor as the native and Socket.IO codecs
// read them, and the cursor in their replies.
func TestListCodecs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		op     chat.Op
		room   string
		limit  int
		cursor string
		err    error
		sio    bool
	}{
		{in: `{"type":"rooms"}`, op: chat.OpRooms},
		{in: `{"type":"rooms","limit":5,"cursor":"cm9vbQ"}`, op: chat.OpRooms, limit: 5, cursor: "cm9vbQ"},
		{in: `{"type":"rooms","\u006cimit":5000}`, op: chat.OpRooms, limit: 1000},
		{in: `{"type":"rooms","limit":"5"}`, op: chat.OpRooms, err: chat.ErrBadLimit},
		{in: `{"type":"rooms","cursor":7}`, op: chat.OpRooms, err: chat.ErrBadCursor},
		{in: `{"type":"members","room":"lobby","limit":2,"cursor":"eA"}`, op: chat.OpMembers, room: "lobby", limit: 2, cursor: "eA"},
		{in: `{"type":"members","limit":2}`, op: chat.OpMembers, err: chat.ErrMissingRoom},
		{in: `{"type":"members","room":"lobby","limit":0}`, op: chat.OpMembers, err: chat.ErrBadLimit},
		{in: `{"type":"join","room":"lobby","limit":"x"}`, op: chat.OpJoin, room: "lobby"}, // not a list: ignored

		{sio: true, in: `27["rooms"]`, op: chat.OpRooms},
		{sio: true, in: `27["rooms",{"limit":5,"cursor":"cm9vbQ"}]`, op: chat.OpRooms, limit: 5, cursor: "cm9vbQ"},
		{sio: true, in: `27["rooms","junk",{"limit":5}]`, op: chat.OpRooms}, // not an object: ignored, as before
		{sio: true, in: `27["rooms",null]`, op: chat.OpRooms},
		{sio: true, in: `27["rooms",{"limit":1.5}]`, op: chat.OpRooms, err: chat.ErrBadLimit},
		{sio: true, in: `27["members","lobby"]`, op: chat.OpMembers, room: "lobby"},
		{sio: true, in: `27["members","lobby",{"limit":2,"cursor":"eA"}]`, op: chat.OpMembers, room: "lobby", limit: 2, cursor: "eA"},
		{sio: true, in: `27["members","lobby",{"cursor":false}]`, op: chat.OpMembers, err: chat.ErrBadCursor},
		{sio: true, in: `27["members",{"limit":2}]`, op: chat.OpMembers, err: chat.ErrMissingRoom},
	} {
		var req chat.Request
		var err error
		if tc.sio {
			var p socketio.Packet
			if err := socketio.ParsePacket([]byte(tc.in), &p); err != nil {
				t.Fatalf("ParsePacket(%s): %v", tc.in, err)
			}
			err = socketio.DecodeEvent(&p, nil, &req)
		} else {
			err = native.Decode([]byte(tc.in), &req)
		}
		if err != tc.err || req.Op != tc.op {
			t.Errorf("%s: op %v err %v, want %v %v", tc.in, req.Op, err, tc.op, tc.err)
			continue
		}
		if err == nil && (string(req.Room) != tc.room || req.Limit != tc.limit || string(req.Cursor) != tc.cursor) {
			t.Errorf("%s: room %q limit %d cursor %q, want %q %d %q", tc.in, req.Room, req.Limit, req.Cursor, tc.room, tc.limit, tc.cursor)
		}
	}

	r := chat.Reply{ID: []byte("3"), Op: chat.OpRooms, Rooms: []chat.RoomInfo{{Room: "a", Count: 1}}, Cursor: "YQ"}
	for _, tc := range []struct {
		codec chat.Codec
		want  string
	}{
		{native.Codec{}, `{"type":"ack","id":3,"rooms":[{"room":"a","count":1}],"cursor":"YQ"}`},
		{socketio.Codec{}, `433[{"rooms":[{"room":"a","count":1}],"cursor":"YQ"}]`},
	} {
		if got := string(tc.codec.AppendReply(nil, &r)); got != tc.want {
			t.Errorf("rooms reply %s, want %s", got, tc.want)
		}
	}
	m := chat.Reply{ID: []byte("4"), Op: chat.OpMembers, Room: []byte("r"), Members: []chat.MemberInfo{{ID: "x", Nick: "n"}}, Cursor: "eA"}
	for _, tc := range []struct {
		codec chat.Codec
		want  string
	}{
		{native.Codec{}, `{"type":"ack","id":4,"room":"r","members":[{"id":"x","nick":"n"}],"cursor":"eA"}`},
		{socketio.Codec{}, `434[{"room":"r","members":[{"id":"x","nick":"n"}],"cursor":"eA"}]`},
	} {
		if got := string(tc.codec.AppendReply(nil, &m)); got != tc.want {
			t.Errorf("members reply %s, want %s", got, tc.want)
		}
	}
}
