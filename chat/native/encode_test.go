package native

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

func TestAppendWelcome(t *testing.T) {
	tests := []struct{ name, id, want string }{
		{name: "plain", id: "c1", want: `{"type":"welcome","id":"c1"}`},
		{name: "empty", id: "", want: `{"type":"welcome","id":""}`},
		{name: "escaped", id: "a\"<b>", want: `{"type":"welcome","id":"a\"\u003cb\u003e"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Codec{}.AppendWelcome(nil, &chat.Welcome{ID: tc.id})); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name string
		r    chat.Reply
		want string
	}{
		{name: "nick", r: chat.Reply{ID: []byte(`1`), Op: chat.OpNick, Name: "alice"},
			want: `{"type":"ack","id":1,"name":"alice"}`},
		{name: "join", r: chat.Reply{ID: []byte(`"j"`), Op: chat.OpJoin, Room: []byte("lobby"), Count: 3},
			want: `{"type":"ack","id":"j","room":"lobby","count":3}`},
		{name: "leave", r: chat.Reply{ID: []byte(`2`), Op: chat.OpLeave, Room: []byte("lobby"), Count: 2},
			want: `{"type":"ack","id":2,"room":"lobby","count":2}`},
		{name: "leave without id", r: chat.Reply{Op: chat.OpLeave, Room: []byte("lobby"), Count: 0},
			want: `{"type":"ack","room":"lobby","count":0}`},
		{name: "send", r: chat.Reply{ID: []byte(`3`), Op: chat.OpSend},
			want: `{"type":"ack","id":3}`},
		{name: "ping", r: chat.Reply{ID: []byte(`-1.5e2`), Op: chat.OpPing},
			want: `{"type":"ack","id":-1.5e2}`},
		{name: "ping without id", r: chat.Reply{Op: chat.OpPing},
			want: `{"type":"ack"}`},
		{name: "invalid op", r: chat.Reply{ID: []byte(`4`)},
			want: `{"type":"ack","id":4}`},
		{name: "rooms", r: chat.Reply{ID: []byte(`5`), Op: chat.OpRooms, Rooms: []chat.RoomInfo{{Room: "lobby", Count: 3}, {Room: "b&b", Count: 1}}},
			want: `{"type":"ack","id":5,"rooms":[{"room":"lobby","count":3},{"room":"b\u0026b","count":1}]}`},
		{name: "rooms empty", r: chat.Reply{ID: []byte(`6`), Op: chat.OpRooms},
			want: `{"type":"ack","id":6,"rooms":[]}`},
		{name: "members", r: chat.Reply{ID: []byte(`7`), Op: chat.OpMembers, Room: []byte("lobby"),
			Members: []chat.MemberInfo{{ID: "c1", Nick: "alice"}, {ID: "c2"}}},
			want: `{"type":"ack","id":7,"room":"lobby","members":[{"id":"c1","nick":"alice"},{"id":"c2","nick":""}]}`},
		{name: "members empty", r: chat.Reply{ID: []byte(`8`), Op: chat.OpMembers, Room: []byte("r"), Members: []chat.MemberInfo{}},
			want: `{"type":"ack","id":8,"room":"r","members":[]}`},
		{name: "error", r: chat.Reply{ID: []byte(`9`), Op: chat.OpSend, Err: chat.ErrNotMember, Room: []byte("ignored")},
			want: `{"type":"error","id":9,"code":"not_member","message":"not a member of this room"}`},
		{name: "error without id", r: chat.Reply{Err: chat.ErrBadJSON},
			want: `{"type":"error","code":"bad_json","message":"frame is not a JSON object"}`},
		{name: "error escaped message", r: chat.Reply{ID: []byte(`"x"`), Err: chat.ErrMissingRoom},
			want: `{"type":"error","id":"x","code":"missing_field","message":"missing \"room\""}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Codec{}.AppendReply([]byte("prefix"), &tc.r)
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("dst prefix lost: %s", got)
			}
			if got := string(got[len("prefix"):]); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAppendMessage(t *testing.T) {
	tests := []struct {
		name string
		m    chat.Message
		want string
	}{
		{name: "room", m: chat.Message{Room: []byte("lobby"), From: "c1", Nick: "alice", Data: []byte(`{"text":"hi"}`), TS: 1700000000000},
			want: `{"type":"message","room":"lobby","from":"c1","nick":"alice","data":{"text":"hi"},"ts":1700000000000}`},
		{name: "direct", m: chat.Message{From: "c1", Data: []byte(`"hi"`), TS: 1},
			want: `{"type":"message","from":"c1","nick":"","data":"hi","ts":1}`},
		{name: "empty data", m: chat.Message{Room: []byte("r"), From: "c1", TS: -5},
			want: `{"type":"message","room":"r","from":"c1","nick":"","data":null,"ts":-5}`},
		{name: "raw data kept", m: chat.Message{Room: []byte("r"), From: "c", Data: []byte(`[1, "<b>" , {"u":"\u2028"}]`)},
			want: `{"type":"message","room":"r","from":"c","nick":"","data":[1, "<b>" , {"u":"\u2028"}],"ts":0}`},
		{name: "escaped strings", m: chat.Message{Room: []byte("caf\xe9"), From: "c", Nick: "a\u2028b", Data: []byte(`0`), TS: math.MaxInt64},
			want: `{"type":"message","room":"caf\ufffd","from":"c","nick":"a\u2028b","data":0,"ts":9223372036854775807}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Codec{}.AppendMessage(nil, &tc.m)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAppendPresence(t *testing.T) {
	tests := []struct {
		name string
		p    chat.Presence
		want string
	}{
		{name: "join", p: chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "c1", Nick: "alice", Count: 3},
			want: `{"type":"presence","room":"lobby","event":"join","id":"c1","nick":"alice","count":3}`},
		{name: "leave without nick", p: chat.Presence{Room: []byte("lobby"), Event: chat.PresenceLeave, ID: "c1", Count: 0},
			want: `{"type":"presence","room":"lobby","event":"leave","id":"c1","nick":"","count":0}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Codec{}.AppendPresence(nil, &tc.p)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func randString(r *rand.Rand, valid bool) string {
	pieces := []string{"a", "Z", "0", " ", `"`, `\`, "/", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
		"é", "😀", "\u2028", "\u2029", "\uFFFD", "lobby", "\u00e9t\u00e9"}
	if !valid {
		pieces = append(pieces, "\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80")
	}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// validText is what encoding/json decodes s as: each invalid byte U+FFFD.
func validText(s string) string { return string([]rune(s)) }

var rawValues = []string{`null`, `true`, `false`, `0`, `-1.5e-7`, `""`, `"x\"y\\"`, `"\u00e9\ud83d\ude00"`,
	`{}`, `[]`, `{"a":[1,{"b":null}],"c":"}]"}`, `[1, 2 , "three"]`, `"<script>\u2028"`}

// unmarshal decodes payload, which must be valid JSON, into a generic map.
func unmarshal(t *testing.T, payload []byte) map[string]any {
	t.Helper()
	if !json.Valid(payload) {
		t.Fatalf("invalid JSON: %q", payload)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("unmarshal %q: %v", payload, err)
	}
	return m
}

func mustUnmarshalAny(t *testing.T, raw string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("unmarshal %q: %v", raw, err)
	}
	return v
}

func checkMap(t *testing.T, payload []byte, want map[string]any) {
	t.Helper()
	if got := unmarshal(t, payload); !reflect.DeepEqual(got, want) {
		t.Errorf("payload %s\ndecodes to %#v\nwant       %#v", payload, got, want)
	}
}

// TestRoundTrip encodes random replies and events, checks that each payload
// is valid JSON and decodes with encoding/json to the expected map, and that
// message data comes out byte for byte.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var c Codec
	var dst []byte
	for i := range 3000 {
		valid := i%2 == 0
		id, nick, room := randString(r, valid), randString(r, valid), randString(r, valid)
		count := r.IntN(1 << 20)
		var reqID []byte
		var wantID any
		switch r.IntN(3) {
		case 1:
			reqID, wantID = []byte(`17`), float64(17)
		case 2:
			reqID = jsontext.AppendString(nil, id)
			wantID = validText(id)
		}
		withID := func(m map[string]any) map[string]any {
			if reqID != nil {
				m["id"] = wantID
			}
			return m
		}

		dst = c.AppendWelcome(dst[:0], &chat.Welcome{ID: id})
		checkMap(t, dst, map[string]any{"type": "welcome", "id": validText(id)})

		op := chat.Op(r.IntN(int(chat.OpPing) + 2))
		reply := chat.Reply{ID: reqID, Op: op, Name: nick, Room: []byte(room), Count: count}
		want := withID(map[string]any{"type": "ack"})
		switch op {
		case chat.OpNick:
			want["name"] = validText(nick)
		case chat.OpJoin, chat.OpLeave:
			want["room"], want["count"] = validText(room), float64(count)
		case chat.OpRPC:
			want["args"] = []any{} // no acknowledgement arguments
		case chat.OpRooms:
			list := []any{}
			for range r.IntN(4) {
				name, n := randString(r, valid), r.IntN(100)
				reply.Rooms = append(reply.Rooms, chat.RoomInfo{Room: name, Count: n})
				list = append(list, map[string]any{"room": validText(name), "count": float64(n)})
			}
			want["rooms"] = list
		case chat.OpMembers:
			list := []any{}
			for range r.IntN(4) {
				mid, mnick := randString(r, valid), randString(r, valid)
				reply.Members = append(reply.Members, chat.MemberInfo{ID: mid, Nick: mnick})
				list = append(list, map[string]any{"id": validText(mid), "nick": validText(mnick)})
			}
			want["room"], want["members"] = validText(room), list
		}
		if r.IntN(4) == 0 {
			reply.Err = &chat.Error{Code: randString(r, valid), Message: randString(r, valid)}
			want = withID(map[string]any{"type": "error", "code": validText(reply.Err.Code), "message": validText(reply.Err.Message)})
		}
		dst = c.AppendReply(dst[:0], &reply)
		checkMap(t, dst, want)

		data := rawValues[r.IntN(len(rawValues))]
		msg := chat.Message{Room: []byte(room), From: id, Nick: nick, Data: []byte(data), TS: r.Int64()}
		want = map[string]any{"type": "message", "from": validText(id), "nick": validText(nick),
			"data": mustUnmarshalAny(t, data), "ts": float64(msg.TS)}
		if room != "" {
			want["room"] = validText(room)
		}
		dst = c.AppendMessage(dst[:0], &msg)
		checkMap(t, dst, want)
		var raw struct{ Data json.RawMessage }
		if err := json.Unmarshal(dst, &raw); err != nil || !bytes.Equal(raw.Data, msg.Data) {
			t.Fatalf("data of %s is %q, want %q (%v)", dst, raw.Data, msg.Data, err)
		}

		ev := chat.Presence{Room: []byte(room), Event: chat.PresenceJoin, ID: id, Nick: nick, Count: count}
		if r.IntN(2) == 0 {
			ev.Event = chat.PresenceLeave
		}
		dst = c.AppendPresence(dst[:0], &ev)
		checkMap(t, dst, map[string]any{"type": "presence", "room": validText(room), "event": string(ev.Event),
			"id": validText(id), "nick": validText(nick), "count": float64(count)})
	}
}

// TestDecodeEncodeRoundTrip decodes a send and encodes the resulting
// message: the data must reach the recipient byte for byte, and the reply
// must echo the id byte for byte.
func TestDecodeEncodeRoundTrip(t *testing.T) {
	for _, data := range rawValues {
		for _, id := range []string{`1`, `"req-1"`, `"a\"\u00e9"`} {
			t.Run(id+" "+data, func(t *testing.T) {
				in := `{"type":"send","id":` + id + `,"room":"caf\u00e9","data":` + data + `}`
				var req chat.Request
				if err := Decode([]byte(in), &req); err != nil {
					t.Fatal(err)
				}
				msg := chat.Message{Room: req.Room, From: "c1", Data: req.Data, TS: 5}
				out := Codec{}.AppendMessage(nil, &msg)
				if want := `{"type":"message","room":"café","from":"c1","nick":"","data":` + data + `,"ts":5}`; string(out) != want {
					t.Errorf("message %s\nwant    %s", out, want)
				}
				reply := Codec{}.AppendReply(nil, &chat.Reply{ID: req.ID, Op: req.Op})
				if want := `{"type":"ack","id":` + id + `}`; string(reply) != want {
					t.Errorf("reply %s, want %s", reply, want)
				}
			})
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	msg := chat.Message{Room: []byte("lobby"), From: "c123", Nick: "alice <3", Data: []byte(`{"text":"hi"}`), TS: 1700000000000}
	p := chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "c123", Nick: "bob\xff", Count: 3}
	reply := chat.Reply{ID: []byte(`1`), Op: chat.OpMembers, Room: []byte("lobby"), Members: []chat.MemberInfo{{ID: "c1", Nick: "a"}}}
	dst := make([]byte, 0, 512)
	tests := []struct {
		name string
		f    func()
	}{
		{name: "message", f: func() { dst = Codec{}.AppendMessage(dst[:0], &msg) }},
		{name: "presence", f: func() { dst = Codec{}.AppendPresence(dst[:0], &p) }},
		{name: "reply", f: func() { dst = Codec{}.AppendReply(dst[:0], &reply) }},
		{name: "welcome", f: func() { dst = Codec{}.AppendWelcome(dst[:0], &chat.Welcome{ID: "c\u2028"}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.f); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}
