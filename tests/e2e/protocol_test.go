package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestChatFlow(t *testing.T) {
	g := startGateway(t)
	alice, bob, carol := dial(t, g), dial(t, g), dial(t, g)
	if alice.id == bob.id {
		t.Fatal("two connections share an id")
	}

	if r := alice.request(map[string]any{"type": "nick", "name": "alice"}); r["type"] != "ack" || r["name"] != "alice" {
		t.Fatalf("nick: %v", r)
	}
	bob.request(map[string]any{"type": "nick", "name": "bob"})

	if r := alice.request(map[string]any{"type": "join", "room": "lobby"}); r["room"] != "lobby" || r["count"] != 1.0 {
		t.Fatalf("join: %v", r)
	}
	if r := bob.request(map[string]any{"type": "join", "room": "lobby"}); r["count"] != 2.0 {
		t.Fatalf("second join: %v", r)
	}
	// Alice sees Bob arrive.
	p := alice.readType("presence")
	if p["event"] != "join" || p["id"] != bob.id || p["nick"] != "bob" || p["count"] != 2.0 || p["room"] != "lobby" {
		t.Fatalf("presence: %v", p)
	}

	// A room message reaches the others with data byte for byte, the sender gets an ack.
	data := `{"text":"héllo <b>","n":[1,2.50,{"x":null}],"e":"\u00e9"}`
	alice.sendRaw(`{"type":"send","room":"lobby","id":7,"data":` + data + `}`)
	ack := alice.read()
	if ack["type"] != "ack" || ack["id"] != 7.0 {
		t.Fatalf("send ack: %v", ack)
	}
	raw := bob.readRaw()
	// The message is exactly {type, room, from, nick, data, ts}: from is
	// the sender's connection id of its welcome, nick the one it set, data
	// its JSON byte for byte (checked on the raw frame, before decoding).
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("message %s: %v", raw, err)
	}
	if got := string(msg["data"]); got != data {
		t.Fatalf("data not passed byte for byte: got %s, want %s (message %s)", got, data, raw)
	}
	for key, want := range map[string]string{"type": "message", "room": "lobby", "from": alice.id, "nick": "alice"} {
		var got string
		if err := json.Unmarshal(msg[key], &got); err != nil || got != want {
			t.Fatalf("message %s: %s is %s, want %q", raw, key, msg[key], want)
		}
	}
	var ts int64
	if err := json.Unmarshal(msg["ts"], &ts); err != nil || ts < time.Now().Add(-time.Minute).UnixMilli() || ts > time.Now().Add(time.Minute).UnixMilli() {
		t.Fatalf("message %s: ts is %s, want the time of acceptance in Unix ms", raw, msg["ts"])
	}
	var offset uint64
	if err := json.Unmarshal(msg["offset"], &offset); err != nil || offset == 0 {
		t.Fatalf("message %s: offset is %s, want its positive history offset", raw, msg["offset"])
	}
	if len(msg) != 7 {
		t.Fatalf("message %s has keys beyond type, room, from, nick, data, ts and offset", raw)
	}

	// Direct message: only the target gets it, without "room".
	bob.sendRaw(`{"type":"send","to":"` + carol.id + `","data":"psst","id":"dm1"}`)
	if r := bob.read(); r["type"] != "ack" || r["id"] != "dm1" {
		t.Fatalf("dm ack: %v", r)
	}
	// carol is in no room: the first thing she gets is the direct message,
	// not alice's room message.
	dm := carol.read()
	if dm["type"] != "message" || dm["from"] != bob.id || dm["nick"] != "bob" || dm["data"] != "psst" {
		t.Fatalf("dm: %v", dm)
	}
	if _, ok := dm["room"]; ok {
		t.Fatalf("dm has a room: %v", dm)
	}

	// Room and member lists.
	carol.request(map[string]any{"type": "join", "room": "annex"})
	rl := carol.request(map[string]any{"type": "rooms"})
	rs, _ := rl["rooms"].([]any)
	if len(rs) != 2 {
		t.Fatalf("rooms: %v", rl)
	}
	first := rs[0].(map[string]any)
	if first["room"] != "annex" || first["count"] != 1.0 {
		t.Fatalf("rooms sorted by name with counts: %v", rs)
	}
	ml := bob.request(map[string]any{"type": "members", "room": "lobby"})
	ms, _ := ml["members"].([]any)
	if len(ms) != 2 {
		t.Fatalf("members: %v", ml)
	}
	nicks := map[string]string{}
	for _, m := range ms {
		mm := m.(map[string]any)
		nicks[mm["id"].(string)] = mm["nick"].(string)
	}
	if nicks[alice.id] != "alice" || nicks[bob.id] != "bob" {
		t.Fatalf("members: %v", nicks)
	}

	// Leave: ack with count, presence to the rest.
	if r := bob.request(map[string]any{"type": "leave", "room": "lobby"}); r["count"] != 1.0 {
		t.Fatalf("leave: %v", r)
	}
	if p := alice.readType("presence"); p["event"] != "leave" || p["id"] != bob.id || p["count"] != 1.0 {
		t.Fatalf("leave presence: %v", p)
	}
	// Bob is no longer a member.
	if r := bob.request(map[string]any{"type": "send", "room": "lobby", "data": 1}); r["code"] != "not_member" {
		t.Fatalf("send after leave: %v", r)
	}

	// Disconnect sends presence leave.
	bob.request(map[string]any{"type": "join", "room": "lobby"})
	alice.readType("presence")
	bob.ws.Close()
	if p := alice.readType("presence"); p["event"] != "leave" || p["id"] != bob.id {
		t.Fatalf("disconnect presence: %v", p)
	}

	// The sender never receives its own room message, and carol (not a
	// member of the lobby) does not either, while dave (a member) does.
	// Alice's replies come in order, so nothing but the ping's ack may come
	// between the send's ack and it; then alice and carol stay quiet.
	dave := dial(t, g)
	dave.request(map[string]any{"type": "join", "room": "lobby"})
	if p := alice.readType("presence"); p["event"] != "join" || p["id"] != dave.id {
		t.Fatalf("dave's presence: %v", p)
	}
	if r := alice.request(map[string]any{"type": "send", "room": "lobby", "data": "last"}); r["type"] != "ack" {
		t.Fatalf("send: %v", r)
	}
	if m := dave.read(); m["type"] != "message" || m["from"] != alice.id || m["nick"] != "alice" || m["data"] != "last" {
		t.Fatalf("dave got %v, want alice's message", m)
	}
	alice.sendRaw(`{"type":"ping","id":"last"}`)
	if r := alice.read(); r["type"] != "ack" || r["id"] != "last" {
		t.Fatalf("got %v, want only the ping's ack", r)
	}
	alice.expectNothing(300 * time.Millisecond)
	carol.expectNothing(300 * time.Millisecond)
}

func TestErrorsKeepConnectionOpen(t *testing.T) {
	g := startGateway(t)
	c := dial(t, g)
	other := dial(t, g)
	tests := []struct {
		name, frame, code string
	}{
		{"bad json", `{"type":`, "bad_json"},
		{"not an object", `[1,2]`, "bad_json"},
		{"unknown type", `{"type":"dance","id":1}`, "unknown_type"},
		{"missing type", `{"id":1}`, "missing_field"},
		{"nick missing name", `{"type":"nick","id":1}`, "missing_field"},
		{"nick empty", `{"type":"nick","name":"","id":1}`, "invalid_name"},
		{"nick too long", `{"type":"nick","name":"` + strings.Repeat("é", 33) + `","id":1}`, "invalid_name"},
		{"join missing room", `{"type":"join","id":1}`, "missing_field"},
		{"room empty", `{"type":"join","room":"","id":1}`, "invalid_room"},
		{"room too long", `{"type":"join","room":"` + strings.Repeat("r", 129) + `","id":1}`, "invalid_room"},
		{"send not member", `{"type":"send","room":"nowhere","data":1,"id":1}`, "not_member"},
		{"send no data", `{"type":"send","room":"nowhere","id":1}`, "missing_field"},
		{"send no target", `{"type":"send","data":1,"id":1}`, "missing_field"},
		{"dm unknown id", `{"type":"send","to":"nobody","data":1,"id":1}`, "no_such_connection"},
		{"leave not member", `{"type":"leave","room":"nowhere","id":1}`, "not_member"},
		{"members not member", `{"type":"members","room":"nowhere","id":1}`, "not_member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tt.frame)
			r := c.read()
			if r["type"] != "error" || r["code"] != tt.code {
				t.Fatalf("reply %v, want error %s", r, tt.code)
			}
			if msg, _ := r["message"].(string); msg == "" {
				t.Fatalf("error without message: %v", r)
			}
		})
	}
	c.t = t
	// Nick of exactly 32 characters and room of 128 bytes are fine.
	if r := c.request(map[string]any{"type": "nick", "name": strings.Repeat("é", 32)}); r["type"] != "ack" {
		t.Fatalf("32-char nick: %v", r)
	}
	if r := c.request(map[string]any{"type": "join", "room": strings.Repeat("r", 128)}); r["type"] != "ack" {
		t.Fatalf("128-byte room: %v", r)
	}
	// A binary frame gets "unsupported" and the connection lives on.
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if r := c.read(); r["code"] != "unsupported" {
		t.Fatalf("binary: %v", r)
	}
	// Still fully working, and the other client never saw any of it.
	other.request(map[string]any{"type": "join", "room": "x"})
	c.request(map[string]any{"type": "join", "room": "x"})
	other.readType("presence")
	c.request(map[string]any{"type": "send", "room": "x", "data": "still here"})
	if m := other.readType("message"); m["data"] != "still here" {
		t.Fatalf("after errors: %v", m)
	}
}

func TestPresenceOff(t *testing.T) {
	g := startGateway(t, "-presence=false")
	a, b := dial(t, g), dial(t, g)
	a.request(map[string]any{"type": "join", "room": "r"})
	b.request(map[string]any{"type": "join", "room": "r"})
	b.request(map[string]any{"type": "send", "room": "r", "data": 1})
	// With presence off the first thing a sees is the message.
	if m := a.read(); m["type"] != "message" {
		t.Fatalf("got %v, want the message and no presence", m)
	}
}

func TestManyMessagesInOrder(t *testing.T) {
	g := startGateway(t, "-presence=false")
	a := dial(t, g)
	var rs []*client
	for i := 0; i < 5; i++ {
		c := dial(t, g)
		c.request(map[string]any{"type": "join", "room": "burst"})
		rs = append(rs, c)
	}
	a.request(map[string]any{"type": "join", "room": "burst"})
	const n = 500
	for i := 0; i < n; i++ {
		a.send(map[string]any{"type": "send", "room": "burst", "data": i})
	}
	for _, c := range rs {
		for i := 0; i < n; i++ {
			m := c.readType("message")
			if m["data"] != float64(i) {
				t.Fatalf("message %d: got %v", i, m["data"])
			}
		}
	}
	_ = time.Second
}
