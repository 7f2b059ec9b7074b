package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// eventCase is one packet (without the Engine.IO '4') for DecodeEvent.
// Byte fields of want are compared with bytes.Equal, so nil and empty are
// alike there; the Has flags tell them apart.
type eventCase struct {
	name        string
	in          string
	attachments [][]byte
	want        chat.Request
	err         error
}

var eventCases = []eventCase{
	{name: "nick", in: `21["nick","alice"]`,
		want: chat.Request{Op: chat.OpNick, ID: []byte("1"), Name: []byte("alice"), HasName: true}},
	{name: "join", in: `212["join","lobby"]`,
		want: chat.Request{Op: chat.OpJoin, ID: []byte("12"), Room: []byte("lobby"), HasRoom: true}},
	{name: "leave", in: `23["leave","lobby"]`,
		want: chat.Request{Op: chat.OpLeave, ID: []byte("3"), Room: []byte("lobby"), HasRoom: true}},
	{name: "members", in: `24["members","lobby"]`,
		want: chat.Request{Op: chat.OpMembers, ID: []byte("4"), Room: []byte("lobby"), HasRoom: true}},
	{name: "message to room", in: `25["message",{"room":"lobby","data":{"text":"hi"}}]`,
		want: chat.Request{Op: chat.OpSend, ID: []byte("5"), Room: []byte("lobby"), HasRoom: true, Data: []byte(`{"text":"hi"}`)}},
	{name: "message to connection", in: `26["message",{"to":"c42","data":"hi"}]`,
		want: chat.Request{Op: chat.OpSend, ID: []byte("6"), To: []byte("c42"), HasTo: true, Data: []byte(`"hi"`)}},
	{name: "message with room and to", in: `2["message",{"room":"r","to":"c","data":1}]`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, To: []byte("c"), HasTo: true, Data: []byte(`1`)}},
	{name: "message data null", in: `2["message",{"room":"r","data":null}]`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`null`)}},
	{name: "rooms", in: `27["rooms"]`, want: chat.Request{Op: chat.OpRooms, ID: []byte("7")}},
	{name: "ping", in: `28["ping"]`, want: chat.Request{Op: chat.OpPing, ID: []byte("8")}},
	{name: "no ack id", in: `2["ping"]`, want: chat.Request{Op: chat.OpPing}},
	{name: "ack id leading zeros trimmed", in: `2007["ping"]`, want: chat.Request{Op: chat.OpPing, ID: []byte("7")}},
	{name: "ack id zero", in: `20["ping"]`, want: chat.Request{Op: chat.OpPing, ID: []byte("0")}},
	{name: "ack id zeros", in: `2000["ping"]`, want: chat.Request{Op: chat.OpPing, ID: []byte("0")}},
	{name: "explicit root namespace", in: `2/,9["ping"]`, want: chat.Request{Op: chat.OpPing, ID: []byte("9")}},
	{name: "extra args ignored", in: `2["join","a","b",{}]`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("a"), HasRoom: true}},
	{name: "args to rooms ignored", in: `2["rooms",5]`, want: chat.Request{Op: chat.OpRooms}},
	{name: "whitespace", in: `21[ "join" , "a" ]`,
		want: chat.Request{Op: chat.OpJoin, ID: []byte("1"), Room: []byte("a"), HasRoom: true}},
	{name: "escaped event name", in: `2["\u006aoin","a"]`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("a"), HasRoom: true}},
	{name: "escaped room", in: `2["join","a\nb\u00e9"]`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("a\nbé"), HasRoom: true}},
	{name: "empty room is present", in: `2["join",""]`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte{}, HasRoom: true}},
	{name: "escaped message keys", in: `2["message",{"r\u006fom":"x","d\u0061ta":[1]}]`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("x"), HasRoom: true, Data: []byte(`[1]`)}},
	{name: "message duplicate room", in: `2["message",{"room":"a","room":"b","data":0}]`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("b"), HasRoom: true, Data: []byte(`0`)}},
	{name: "message unknown keys ignored", in: `2["message",{"x":{"room":5},"room":"r","y":"}","data":{}}]`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`{}`)}},
	{name: "binary message", in: `51-3["message",{"room":"r","data":{"img":{"_placeholder":true,"num":0}}}]`,
		attachments: [][]byte{{1, 2, 3}},
		want: chat.Request{Op: chat.OpSend, ID: []byte("3"), Room: []byte("r"), HasRoom: true,
			Data: []byte(`{"img":{"_placeholder":true,"num":0}}`), Attachments: [][]byte{{1, 2, 3}}}},
	{name: "binary ping keeps no attachments", in: `51-["ping",{"_placeholder":true,"num":0}]`,
		attachments: [][]byte{{1}}, want: chat.Request{Op: chat.OpPing}},

	// Request errors: an error ack, the connection stays open.
	{name: "application event", in: `29["shout","x",{"a":1}]`, want: chat.Request{Op: chat.OpRPC, ID: []byte("9"), Event: []byte("shout"), Args: []byte(`["x",{"a":1}]`)}},
	{name: "application event without arguments", in: `2["shout"]`, want: chat.Request{Op: chat.OpRPC, Event: []byte("shout"), Args: []byte(`[]`)}},
	{name: "event name case matters", in: `2["Join","x"]`, want: chat.Request{Op: chat.OpRPC, Event: []byte("Join"), Args: []byte(`["x"]`)}},
	{name: "send is not an event name", in: `2["send",{"room":"r","data":1}]`, want: chat.Request{Op: chat.OpRPC, Event: []byte("send"), Args: []byte(`[{"room":"r","data":1}]`)}},
	{name: "escaped name too long is an application event", in: `2["` + repeatString(`\u006a`, 20) + `"]`, want: chat.Request{Op: chat.OpRPC, Event: []byte(repeatString("j", 20)), Args: []byte(`[]`)}},
	{name: "nick without name", in: `21["nick"]`, want: chat.Request{Op: chat.OpNick, ID: []byte("1")}, err: chat.ErrMissingName},
	{name: "nick with number", in: `2["nick",5]`, want: chat.Request{Op: chat.OpNick}, err: chat.ErrMissingName},
	{name: "join without room", in: `2["join"]`, want: chat.Request{Op: chat.OpJoin}, err: chat.ErrMissingRoom},
	{name: "join with object", in: `2["join",{"room":"a"}]`, want: chat.Request{Op: chat.OpJoin}, err: chat.ErrMissingRoom},
	{name: "leave with null", in: `2["leave",null]`, want: chat.Request{Op: chat.OpLeave}, err: chat.ErrMissingRoom},
	{name: "members without room", in: `2["members"]`, want: chat.Request{Op: chat.OpMembers}, err: chat.ErrMissingRoom},
	{name: "message without args", in: `2["message"]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "message with string", in: `2["message","hi"]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "message with array", in: `2["message",[]]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "message without destination", in: `2["message",{"data":1}]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "message room not a string", in: `2["message",{"room":1,"data":1}]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingRoom},
	{name: "message to not a string", in: `2["message",{"to":null,"data":1}]`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "message without data", in: `24["message",{"room":"r"}]`, want: chat.Request{Op: chat.OpSend, ID: []byte("4")}, err: chat.ErrMissingData},

	// Protocol errors: the transport closes the connection.
	{name: "not an event", in: `31["ping"]`, err: ErrNotEvent},
	{name: "connect", in: `0`, err: ErrNotEvent},
	{name: "other namespace", in: `2/admin,["ping"]`, err: ErrOtherNamespace},
	{name: "attachments for a text event", in: `2["ping"]`, attachments: [][]byte{{1}}, err: ErrAttachments},
	{name: "too few attachments", in: `51-["ping",{"_placeholder":true,"num":0}]`, err: ErrAttachments},
	{name: "placeholder count mismatch", in: `51-["message",{"room":"r","data":"` + repeatString("x", 40) + `"}]`,
		attachments: [][]byte{{1}}, err: ErrPlaceholder},
	{name: "placeholder misnumbered", in: `51-["message",{"room":"r","data":{"_placeholder":true,"num":1}}]`,
		attachments: [][]byte{{1}}, err: ErrPlaceholder},
}

func repeatString(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

func TestDecodeEvent(t *testing.T) {
	for _, tc := range eventCases {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := ParsePacket([]byte(tc.in), &p); err != nil {
				t.Fatalf("ParsePacket(%q): %v", tc.in, err)
			}
			var req chat.Request
			req.Name = []byte("stale") // DecodeEvent must reset req
			err := DecodeEvent(&p, tc.attachments, &req)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil {
				checkRequest(t, &req, &tc.want)
				return
			}
			// On a request error, only the id (for the error ack) and the
			// op are specified.
			var ce *chat.Error
			if errors.As(err, &ce) && (req.Op != tc.want.Op || !bytes.Equal(req.ID, tc.want.ID) || (req.ID == nil) != (tc.want.ID == nil)) {
				t.Fatalf("got op %v id %q, want op %v id %q", req.Op, req.ID, tc.want.Op, tc.want.ID)
			}
		})
	}
}

func checkRequest(t *testing.T, got, want *chat.Request) {
	t.Helper()
	if got.Op != want.Op || !bytes.Equal(got.ID, want.ID) || (got.ID == nil) != (want.ID == nil) ||
		!bytes.Equal(got.Name, want.Name) || got.HasName != want.HasName ||
		!bytes.Equal(got.Room, want.Room) || got.HasRoom != want.HasRoom ||
		!bytes.Equal(got.To, want.To) || got.HasTo != want.HasTo ||
		!bytes.Equal(got.Data, want.Data) || len(got.Attachments) != len(want.Attachments) ||
		!bytes.Equal(got.Event, want.Event) || !bytes.Equal(got.Args, want.Args) {
		t.Fatalf("got  %+v\nwant %+v", *got, *want)
	}
	for i := range got.Attachments {
		if !bytes.Equal(got.Attachments[i], want.Attachments[i]) {
			t.Fatalf("attachment %d = %q, want %q", i, got.Attachments[i], want.Attachments[i])
		}
	}
}

func TestDecodeEventHandBuiltPacket(t *testing.T) {
	p := Packet{Type: Event, ID: 42, HasID: true, Data: []byte(`["ping"]`)}
	var req chat.Request
	if err := DecodeEvent(&p, nil, &req); err != nil {
		t.Fatal(err)
	}
	if string(req.ID) != "42" || req.Op != chat.OpPing {
		t.Fatalf("got %+v", req)
	}
	p.Data = []byte(`{"not":"an array"}`)
	if err := DecodeEvent(&p, nil, &req); !errors.Is(err, ErrPayload) {
		t.Fatalf("err = %v, want ErrPayload", err)
	}
}

func TestCodecReply(t *testing.T) {
	tests := []struct {
		name  string
		reply chat.Reply
		want  string
	}{
		{"no ack wanted", chat.Reply{Op: chat.OpJoin, Room: []byte("lobby"), Count: 2}, ``},
		{"no ack wanted error", chat.Reply{Err: chat.ErrNotMember}, ``},
		{"nick", chat.Reply{ID: []byte("1"), Op: chat.OpNick, Name: "alice"}, `431[{"ok":true,"name":"alice"}]`},
		{"join", chat.Reply{ID: []byte("12"), Op: chat.OpJoin, Room: []byte("lobby"), Count: 2}, `4312[{"room":"lobby","count":2}]`},
		{"leave", chat.Reply{ID: []byte("3"), Op: chat.OpLeave, Room: []byte("lobby"), Count: 0}, `433[{"room":"lobby","count":0}]`},
		{"send", chat.Reply{ID: []byte("4"), Op: chat.OpSend}, `434[{"ok":true}]`},
		{"ping", chat.Reply{ID: []byte("5"), Op: chat.OpPing}, `435[{"ok":true}]`},
		{"rooms empty", chat.Reply{ID: []byte("6"), Op: chat.OpRooms}, `436[{"rooms":[]}]`},
		{"rooms", chat.Reply{ID: []byte("6"), Op: chat.OpRooms, Rooms: []chat.RoomInfo{{Room: "a", Count: 1}, {Room: "b<", Count: 20}}},
			`436[{"rooms":[{"room":"a","count":1},{"room":"b\u003c","count":20}]}]`},
		{"members", chat.Reply{ID: []byte("7"), Op: chat.OpMembers, Room: []byte("r"), Members: []chat.MemberInfo{{ID: "k1", Nick: "alice"}, {ID: "k2", Nick: ""}}},
			`437[{"room":"r","members":[{"id":"k1","nick":"alice"},{"id":"k2","nick":""}]}]`},
		{"members empty", chat.Reply{ID: []byte("7"), Op: chat.OpMembers, Room: []byte("r")}, `437[{"room":"r","members":[]}]`},
		{"error", chat.Reply{ID: []byte("8"), Op: chat.OpSend, Err: chat.ErrNotMember},
			`438[{"error":{"code":"not_member","message":"not a member of this room"}}]`},
		{"error escapes", chat.Reply{ID: []byte("9"), Err: chat.ErrMissingRoom},
			`439[{"error":{"code":"missing_field","message":"missing \"room\""}}]`},
		{"invalid op", chat.Reply{ID: []byte("10")}, `4310[{"ok":true}]`},
		{"escapes name", chat.Reply{ID: []byte("1"), Op: chat.OpNick, Name: "a\u2028\xff"}, `431[{"ok":true,"name":"a\u2028\ufffd"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Codec{}.AppendReply([]byte("x"), &tt.reply)
			if string(got) != "x"+tt.want {
				t.Fatalf("got  %s\nwant x%s", got, tt.want)
			}
			if tt.want == "" {
				return
			}
			checkAck(t, got[1:])
		})
	}
}

// checkAck checks that b parses as a Socket.IO ACK whose payload is a
// one-element array holding an object.
func checkAck(t *testing.T, b []byte) {
	t.Helper()
	var p Packet
	if err := ParsePacket(b[1:], &p); err != nil || p.Type != Ack || !p.HasID {
		t.Fatalf("%s: %v, %v", b, err, p.Type)
	}
	var arr []map[string]any
	if err := json.Unmarshal(p.Data, &arr); err != nil || len(arr) != 1 {
		t.Fatalf("%s: payload is not [object]: %v", b, err)
	}
}

func TestCodecMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  chat.Message
		want string
	}{
		{"room", chat.Message{Room: []byte("lobby"), From: "k1", Nick: "alice", Data: []byte(`{"text":"hi"}`), TS: 1700000000000},
			`42["message",{"room":"lobby","from":"k1","nick":"alice","data":{"text":"hi"},"ts":1700000000000}]`},
		{"direct", chat.Message{From: "k1", Data: []byte(`"hi"`), TS: 1},
			`42["message",{"from":"k1","nick":"","data":"hi","ts":1}]`},
		{"no data", chat.Message{Room: []byte("r"), From: "k1", TS: 1},
			`42["message",{"room":"r","from":"k1","nick":"","data":null,"ts":1}]`},
		{"escapes", chat.Message{Room: []byte("<r>"), From: "k1", Nick: "a&b\x01", Data: []byte(`1`), TS: 1},
			`42["message",{"room":"\u003cr\u003e","from":"k1","nick":"a\u0026b\u0001","data":1,"ts":1}]`},
		{"binary", chat.Message{Room: []byte("r"), From: "k1", Nick: "n", TS: 2,
			Data:        []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
			Attachments: [][]byte{{1}, {2}}},
			`452-["message",{"room":"r","from":"k1","nick":"n","data":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}],"ts":2}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Codec{}.AppendMessage([]byte("x"), &tt.msg)
			if string(got) != "x"+tt.want {
				t.Fatalf("got  %s\nwant x%s", got, tt.want)
			}
			var p Packet
			if err := ParsePacket(got[2:], &p); err != nil {
				t.Fatalf("%s does not parse: %v", got[1:], err)
			}
			if n, err := CountPlaceholders(p.Data); err != nil || n != len(tt.msg.Attachments) || p.Attachments != n {
				t.Fatalf("placeholders %d, %v; header %d; attachments %d", n, err, p.Attachments, len(tt.msg.Attachments))
			}
		})
	}
}

func TestCodecPresence(t *testing.T) {
	tests := []struct {
		name string
		p    chat.Presence
		want string
	}{
		{"join", chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "k1", Nick: "alice", Count: 3},
			`42["presence",{"room":"lobby","event":"join","id":"k1","nick":"alice","count":3}]`},
		{"leave", chat.Presence{Room: []byte("lobby"), Event: chat.PresenceLeave, ID: "k1", Count: 0},
			`42["presence",{"room":"lobby","event":"leave","id":"k1","nick":"","count":0}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Codec{}.AppendPresence(nil, &tt.p)
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCodecWelcomeAndBinary(t *testing.T) {
	var c chat.Codec = Codec{}
	if got := c.AppendWelcome([]byte("x"), &chat.Welcome{ID: "k1"}); string(got) != "x" {
		t.Fatalf("AppendWelcome = %q, want dst unchanged", got)
	}
	if !c.BinaryAttachments() {
		t.Fatal("BinaryAttachments = false")
	}
}

// The whole request path: a client's emit, decoded, handled, acknowledged.
func TestRequestReplyRoundTrip(t *testing.T) {
	var p Packet
	if err := ParsePacket([]byte(`2017["join","lobby"]`), &p); err != nil {
		t.Fatal(err)
	}
	var req chat.Request
	if err := DecodeEvent(&p, nil, &req); err != nil {
		t.Fatal(err)
	}
	r := chat.Reply{ID: req.ID, Op: req.Op, Room: req.Room, Count: 1}
	got := Codec{}.AppendReply(nil, &r)
	if want := `4317[{"room":"lobby","count":1}]`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestChatAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	in := []byte(`51-12["message",{"room":"lobby","data":{"img":{"_placeholder":true,"num":0}}}]`)
	att := [][]byte{{1, 2, 3}}
	buf := make([]byte, 0, 512)
	reply := chat.Reply{ID: []byte("12"), Op: chat.OpRooms, Rooms: []chat.RoomInfo{{Room: "a", Count: 1}}}
	pres := chat.Presence{Room: []byte("r"), Event: chat.PresenceJoin, ID: "k", Count: 1}
	var c Codec
	n := testing.AllocsPerRun(100, func() {
		var p Packet
		var req chat.Request
		if err := ParsePacket(in, &p); err != nil {
			t.Fatal(err)
		}
		if err := DecodeEvent(&p, att, &req); err != nil {
			t.Fatal(err)
		}
		m := chat.Message{Room: req.Room, From: "k1", Nick: "alice", Data: req.Data, Attachments: req.Attachments, TS: 1}
		buf = c.AppendMessage(buf[:0], &m)
		buf = c.AppendReply(buf[:0], &reply)
		buf = c.AppendPresence(buf[:0], &pres)
	})
	if n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
