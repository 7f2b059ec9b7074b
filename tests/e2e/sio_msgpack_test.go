package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Socket.IO clients with the msgpack parser (socket.io-msgpack-parser),
// driven by hand: each Socket.IO packet is one msgpack map sent as one
// binary Engine.IO message. The Node.js test (tests/node/msgpack.test.mjs)
// drives the same endpoint with the real parser.

// mpPack encodes one packet of the msgpack parser, map keys sorted (Go
// maps have no order) so that what the others receive can be compared.
func mpPack(t *testing.T, pkt map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(pkt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mpUnpack decodes one packet the gateway sent; numbers come out as
// float64 and binary values as []byte, for comparisons.
func mpUnpack(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatalf("not a msgpack packet: %v (% x)", err, b)
	}
	return mpNormal(v).(map[string]any)
}

func mpNormal(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = mpNormal(e)
		}
	case []any:
		for i, e := range x {
			x[i] = mpNormal(e)
		}
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32:
		b, _ := json.Marshal(x)
		var f float64
		_ = json.Unmarshal(b, &f)
		return f
	}
	return v
}

// mpNext returns the next packet from a msgpack client's connection, which
// must be binary.
func (c *sioClient) mpNext() map[string]any {
	c.t.Helper()
	return mpUnpack(c.t, c.nextBinary())
}

// mpEvent skips packets until an event named name and returns its
// arguments.
func (c *sioClient) mpEvent(name string) []any {
	c.t.Helper()
	for i := 0; i < 20; i++ {
		p := c.mpNext()
		if d, ok := p["data"].([]any); ok && p["type"] == 2.0 && len(d) > 0 && d[0] == name {
			return d[1:]
		}
	}
	c.t.Fatalf("no %q event", name)
	return nil
}

// mpAck emits event with args and an ack id and returns the ack's one
// argument, skipping other packets.
func (c *sioClient) mpAck(id int, args ...any) map[string]any {
	c.t.Helper()
	c.sendBinary(mpPack(c.t, map[string]any{"type": 2, "nsp": "/", "id": id, "data": args, "options": map[string]any{"compress": true}}))
	for i := 0; i < 20; i++ {
		p := c.mpNext()
		if p["type"] == 3.0 && p["id"] == float64(id) {
			d := p["data"].([]any)
			if len(d) != 1 {
				c.t.Fatalf("ack %v, want one argument", p)
			}
			return d[0].(map[string]any)
		}
	}
	c.t.Fatalf("no ack %d", id)
	return nil
}

// mpConnect connects "/" with the msgpack parser and returns the sid.
func (c *sioClient) mpConnect() string {
	c.t.Helper()
	c.sendBinary(mpPack(c.t, map[string]any{"type": 0, "nsp": "/"}))
	p := c.mpNext()
	d, _ := p["data"].(map[string]any)
	sid, _ := d["sid"].(string)
	if p["type"] != 0.0 || p["nsp"] != "/" || sid == "" {
		c.t.Fatalf("CONNECT answer %v, want type 0 with a sid", p)
	}
	return sid
}

// A msgpack client, a JSON client and a native client chat in one room,
// each way, binary values included; each client keeps its own parser on
// the same gateway.
func TestSioMsgpackChatWithJSONAndNative(t *testing.T) {
	g := startGateway(t)
	mp := sioDial(t, g, true)
	mpID := mp.mpConnect()
	js := sioDial(t, g, true)
	jsID := js.connect("40", "/")
	nat := dial(t, g)

	if ack := mp.mpAck(1, "join", "lobby"); ack["room"] != "lobby" || ack["count"] != 1.0 {
		t.Fatalf("join ack %v", ack)
	}
	js.send(`421["join","lobby"]`)
	js.expect(`431[{"room":"lobby","count":2}]`)
	if p := mp.mpEvent("presence"); p[0].(map[string]any)["id"] != jsID {
		t.Fatalf("presence %v", p)
	}
	if r := nat.request(map[string]any{"type": "join", "room": "lobby"}); r["type"] != "ack" {
		t.Fatalf("native join %v", r)
	}
	mp.mpEvent("presence")
	js.nextText() // presence of the native client

	// msgpack -> JSON and native, with a Buffer.
	if ack := mp.mpAck(2, "message", map[string]any{"room": "lobby", "data": map[string]any{"text": "hé", "bin": []byte{1, 2, 3}}}); ack["ok"] != true {
		t.Fatalf("message ack %v", ack)
	}
	got := js.nextText()
	if !strings.HasPrefix(got, `451-["message",{"room":"lobby","from":"`+mpID+`"`) || !strings.Contains(got, `"data":{"bin":{"_placeholder":true,"num":0},"text":"hé"}`) {
		t.Fatalf("JSON client got %q", got)
	}
	if b := js.nextBinary(); !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("attachment %v", b)
	}
	m := nat.readType("message")
	if d, _ := json.Marshal(m["data"]); m["from"] != mpID || string(d) != `{"bin":{"_binary":"AQID"},"text":"hé"}` {
		t.Fatalf("native client got %v", m)
	}

	// JSON -> msgpack, with an attachment: a bin value.
	js.send(`451-["message",{"room":"lobby","data":{"n":[1,2.5],"b":{"_placeholder":true,"num":0}}}]`)
	js.sendBinary([]byte{7, 8})
	ev := mp.mpEvent("message")[0].(map[string]any)
	data := ev["data"].(map[string]any)
	if ev["from"] != jsID || !bytes.Equal(data["b"].([]byte), []byte{7, 8}) || data["n"].([]any)[1] != 2.5 {
		t.Fatalf("msgpack client got %v", ev)
	}
	nat.readType("message")

	// native -> msgpack.
	nat.send(map[string]any{"type": "send", "room": "lobby", "data": map[string]any{"x": []any{"y", nil, true}}})
	ev = mp.mpEvent("message")[0].(map[string]any)
	if d, _ := json.Marshal(ev["data"]); ev["from"] != nat.id || string(d) != `{"x":["y",null,true]}` {
		t.Fatalf("msgpack client got %v from the native client", ev)
	}

	// An error is an ack too, in msgpack.
	if ack := mp.mpAck(3, "leave", "nowhere"); ack["error"].(map[string]any)["code"] != "not_member" {
		t.Fatalf("error ack %v", ack)
	}
}

// Malformed msgpack closes that connection with 1008, and only it; a
// msgpack client that then sends a text packet is malformed too.
func TestSioMsgpackMalformedClosesOnlyThatClient(t *testing.T) {
	g := startGateway(t)
	mp := sioDial(t, g, true)
	mp.mpConnect()
	mp.mpAck(1, "join", "lobby")
	js := sioDial(t, g, true)
	js.connect("40", "/")
	js.send(`421["join","lobby"]`)
	js.expect(`431[{"room":"lobby","count":2}]`)
	mp.mpEvent("presence")

	for _, bad := range [][]byte{
		{0xc1}, // a reserved code
		mpPack(t, map[string]any{"type": 9, "nsp": "/"}),     // an unknown type
		mpPack(t, map[string]any{"type": 0, "nsp": "/"})[:5], // truncated
	} {
		c := sioDial(t, g, true)
		c.sendBinary(bad)
		if _, code := c.expectClosed(sioSlack * 3); code != 1008 {
			t.Fatalf("% x: close code %d, want 1008", bad, code)
		}
	}
	c := sioDial(t, g, true)
	c.mpConnect()
	c.send(`42["ping"]`)
	if _, code := c.expectClosed(sioSlack * 3); code != 1008 {
		t.Fatalf("text packet from a msgpack client: close code %d, want 1008", code)
	}

	// The others go on.
	if ack := mp.mpAck(2, "message", map[string]any{"room": "lobby", "data": "still here"}); ack["ok"] != true {
		t.Fatalf("message ack %v", ack)
	}
	if got := js.nextText(); !strings.Contains(got, `"data":"still here"`) {
		t.Fatalf("JSON client got %q", got)
	}
}

// Over long-polling a msgpack packet is a "b" record, both ways.
func TestSioMsgpackPolling(t *testing.T) {
	g := pollGateway(t)
	p := pollOpen(t, g.addr, "/socket.io/")
	b64 := func(pkt map[string]any) string { return "b" + base64.StdEncoding.EncodeToString(mpPack(t, pkt)) }
	unb64 := func(rec string) map[string]any {
		t.Helper()
		if !strings.HasPrefix(rec, "b") {
			t.Fatalf("record %q, want a binary one", rec)
		}
		b, err := base64.StdEncoding.DecodeString(rec[1:])
		if err != nil {
			t.Fatal(err)
		}
		return mpUnpack(t, b)
	}
	p.send(b64(map[string]any{"type": 0, "nsp": "/"}))
	if c := unb64(p.next()); c["type"] != 0.0 {
		t.Fatalf("CONNECT answer %v", c)
	}
	p.send(b64(map[string]any{"type": 2, "nsp": "/", "id": 4, "data": []any{"join", "lobby"}}))
	if a := unb64(p.next()); a["type"] != 3.0 || a["id"] != 4.0 || a["data"].([]any)[0].(map[string]any)["count"] != 1.0 {
		t.Fatalf("join ack %v", a)
	}
	nat := dial(t, g)
	nat.request(map[string]any{"type": "join", "room": "lobby"})
	nat.send(map[string]any{"type": "send", "room": "lobby", "data": 42})
	for {
		ev := unb64(p.next())
		if d := ev["data"].([]any); d[0] == "message" {
			if d[1].(map[string]any)["data"] != 42.0 {
				t.Fatalf("message %v", ev)
			}
			break
		}
	}
}

// mpRoomMsg skips packets until a room message event and returns its k
// and its offset, the event's last argument (connection state recovery).
func (c *sioClient) mpRoomMsg() (k int, offset string) {
	c.t.Helper()
	args := c.mpEvent("message")
	if len(args) != 2 {
		c.t.Fatalf("message event %v, want [object, offset]", args)
	}
	m := args[0].(map[string]any)
	off, _ := args[1].(string)
	if off == "" || jsonNumber(m["offset"]) != off {
		c.t.Fatalf("message %v: offset argument %v, want the message's offset", m, args[1])
	}
	return int(m["data"].(map[string]any)["k"].(float64)), off
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A msgpack client recovers its session as a JSON one does: the CONNECT
// with its pid and last offset (in msgpack) gets the same sid and pid,
// then exactly the room events it missed, in msgpack, then live ones.
func TestSioMsgpackRecovery(t *testing.T) {
	g := startGateway(t)
	nat := dial(t, g)
	nat.request(map[string]any{"type": "join", "room": "lobby"})

	mp := sioDial(t, g, true)
	mp.sendBinary(mpPack(t, map[string]any{"type": 0, "nsp": "/"}))
	ack := mp.mpNext()["data"].(map[string]any)
	sid, pid := ack["sid"].(string), ack["pid"].(string)
	if sid == "" || !strings.HasPrefix(pid, sid+".") {
		t.Fatalf("CONNECT answer %v, want a sid and a pid", ack)
	}
	if a := mp.mpAck(1, "join", "lobby"); a["count"] != 2.0 || a["offset"] == nil {
		t.Fatalf("join ack %v", a)
	}
	presenceOf(nat, "join", sid)
	sendK(nat, "lobby", 1, 1)
	k, last := mp.mpRoomMsg()
	if k != 1 {
		t.Fatalf("k=%d, want 1", k)
	}

	mp.ws.Close() // a drop, without a close packet: recoverable
	presenceOf(nat, "leave", sid)
	sendK(nat, "lobby", 2, 3)

	mp2 := sioDial(t, g, true)
	mp2.sendBinary(mpPack(t, map[string]any{"type": 0, "nsp": "/", "data": map[string]any{"pid": pid, "offset": last}}))
	if a := mp2.mpNext()["data"].(map[string]any); a["sid"] != sid || a["pid"] != pid {
		t.Fatalf("CONNECT with pid and offset: %v, want sid %s and pid %s (recovered)", a, sid, pid)
	}
	for want := 2; want <= 3; want++ {
		if k, _ := mp2.mpRoomMsg(); k != want {
			t.Fatalf("recovered message k=%d, want %d", k, want)
		}
	}
	sendK(nat, "lobby", 4, 4)
	if k, _ := mp2.mpRoomMsg(); k != 4 {
		t.Fatalf("live message k=%d, want 4", k)
	}
}

// Conformance mode speaks the default parser only, as the official suites
// expect: a binary message nobody announced is malformed there.
func TestSioMsgpackNotInConformanceMode(t *testing.T) {
	g := startGateway(t, "-sio-conformance")
	c := sioDial(t, g, true)
	c.sendBinary(mpPack(t, map[string]any{"type": 0, "nsp": "/"}))
	if _, code := c.expectClosed(sioSlack * 3); code != 1008 {
		t.Fatalf("close code %d, want 1008", code)
	}
}

// A msgpack client on another namespace ("/admin"): its replies, the
// namespace's room events, a direct message and a server ack (server API
// send with "ack") all come on "/admin" in msgpack, and its ACK there
// answers the API call.
func TestSioMsgpackNamespace(t *testing.T) {
	g := startGateway(t, "-sio-namespaces", "/admin")
	api := apiClientFor(g, "")
	mp := sioDial(t, g, true)
	mp.mpConnect()
	mp.sendBinary(mpPack(t, map[string]any{"type": 0, "nsp": "/admin"}))
	p := mp.mpNext()
	d, _ := p["data"].(map[string]any)
	adminID, _ := d["sid"].(string)
	if p["type"] != 0.0 || p["nsp"] != "/admin" || adminID == "" {
		t.Fatalf("CONNECT answer on /admin %v", p)
	}
	// next returns the next packet, which must be on /admin.
	next := func(what string) map[string]any {
		t.Helper()
		p := mp.mpNext()
		if p["nsp"] != "/admin" {
			t.Fatalf("%s: %v, want it on /admin", what, p)
		}
		return p
	}
	mp.sendBinary(mpPack(t, map[string]any{"type": 2, "nsp": "/admin", "id": 1, "data": []any{"join", "lobby"}}))
	if p := next("join ack"); p["type"] != 3.0 || p["id"] != 1.0 {
		t.Fatalf("join ack %v", p)
	}
	js := sioDial(t, g, true)
	jsID := js.connect("40/admin,", "/admin")
	js.send(`42/admin,1["join","lobby"]`)
	js.expect(`43/admin,1[{"room":"lobby","count":2}]`)
	next("presence")
	js.send(`42/admin,["message",{"room":"lobby","data":"room"}]`)
	if p := next("room message"); p["data"].([]any)[0] != "message" {
		t.Fatalf("room message %v", p)
	}
	js.send(`42/admin,["message",{"to":"` + adminID + `","data":"dm"}]`)
	if ev := next("direct message")["data"].([]any); ev[0] != "message" || ev[1].(map[string]any)["from"] != jsID {
		t.Fatalf("direct message %v", ev)
	}
	call := goAck(t, api, adminID, "q", 5*time.Second, "ask")
	p = next("ack event")
	if p["type"] != 2.0 || p["data"].([]any)[0] != "ask" {
		t.Fatalf("ack event %v", p)
	}
	mp.sendBinary(mpPack(t, map[string]any{"type": 3, "nsp": "/admin", "id": p["id"], "data": []any{"ok"}}))
	call.answered(t, `["ok"]`)
}
