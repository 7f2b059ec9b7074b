package socketio

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/chatgate/chatgate/chat"
)

// Packets as socket.io-client writes them with socket.io-msgpack-parser
// 3.0.2 (notepack.io 2.2.0), captured from the npm packages: the exact
// bytes a browser sends, extension types and socket.io-client's own
// "options" key included.
var notepackCases = []struct {
	name, hex string
	want      string // the default parser's packet, as ParsePacket takes it
	atts      [][]byte
}{
	{"connect without auth (data: undefined)", "83a47479706500a36e7370a12fa464617461d40000", `0`, nil},
	{"connect with auth", "83a47479706500a36e7370a12fa46461746181a5746f6b656ea3616263", `0{"token":"abc"}`, nil},
	{"event with ack, options, undefined in a map and an array",
		"85a47479706502a46461746192a76d65737361676582a4726f6f6da56c6f626279a46461746186a474657874a368c3a9a16ecb3ff8000000000000a3626967cf0000010000000000a36e6567fda175d40000a36172729301d40000c0a76f7074696f6e7381a8636f6d7072657373c3a2696407a36e7370a12f",
		`27["message",{"room":"lobby","data":{"text":"hé","n":1.5,"big":1099511627776,"neg":-3,"arr":[1,null,null]}}]`, nil},
	{"a Buffer (bin) and an ArrayBuffer (ext 0)",
		"84a47479706502a46461746192a76d65737361676582a4726f6f6da56c6f626279a46461746182a3627566c403010203a26162c702000405a36e7370a12fa2696408",
		`52-8["message",{"room":"lobby","data":{"buf":{"_placeholder":true,"num":0},"ab":{"_placeholder":true,"num":1}}}]`,
		[][]byte{{1, 2, 3}, {4, 5}}},
	{"a Date", "83a47479706502a46461746192a76d65737361676582a4726f6f6da172a464617461d7000000018cc820db2ea36e7370a12f",
		`2["message",{"room":"r","data":"2024-01-02T03:04:05.678Z"}]`, nil},
	{"ack", "84a47479706503a4646174619181a26f6bc3a36e7370a12fa2696403", `33[{"ok":true}]`, nil},
	{"disconnect", "82a47479706501a36e7370a12f", `1`, nil},
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMsgpackNotepackPackets(t *testing.T) {
	for _, tc := range notepackCases {
		t.Run(tc.name, func(t *testing.T) {
			var want Packet
			if err := ParsePacket([]byte(tc.want), &want); err != nil {
				t.Fatalf("bad want %q: %v", tc.want, err)
			}
			var p Packet
			text, atts, err := ParseMsgpack(mustHex(t, tc.hex), &p, nil, nil)
			if err != nil {
				t.Fatalf("ParseMsgpack: %v", err)
			}
			_ = text
			if p.Type != want.Type || p.Attachments != want.Attachments || !bytes.Equal(p.Namespace, want.Namespace) ||
				p.HasID != want.HasID || p.ID != want.ID || string(p.Data) != string(want.Data) {
				t.Fatalf("packet %s %d %q id=%v/%d %s\nwant %s %d %q id=%v/%d %s", p.Type, p.Attachments, p.Namespace, p.HasID, p.ID, p.Data,
					want.Type, want.Attachments, want.Namespace, want.HasID, want.ID, want.Data)
			}
			if len(atts) != len(tc.atts) {
				t.Fatalf("%d attachments, want %d", len(atts), len(tc.atts))
			}
			for i := range atts {
				if !bytes.Equal(atts[i], tc.atts[i]) {
					t.Fatalf("attachment %d = %v, want %v", i, atts[i], tc.atts[i])
				}
			}
		})
	}
}

// A msgpack event decodes to the same chat request as the default
// parser's, binary values as attachments (those of ignored keys are not).
func TestParseMsgpackDecodesToTheSameRequest(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{"type": 2, "nsp": "/", "id": 5, "options": map[string]any{"x": []byte{1}},
		"data": []any{"message", map[string]any{"room": "files", "data": map[string]any{"bytes": []byte{9, 8, 7}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	_, atts, err := ParseMsgpack(b, &p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var req chat.Request
	if err := DecodeEvent(&p, atts, &req); err != nil {
		t.Fatal(err)
	}
	if req.Op != chat.OpSend || string(req.Room) != "files" || string(req.ID) != "5" ||
		string(req.Data) != `{"bytes":{"_placeholder":true,"num":0}}` || len(req.Attachments) != 1 || !bytes.Equal(req.Attachments[0], []byte{9, 8, 7}) {
		t.Fatalf("request %+v", req)
	}
}

func TestParseMsgpackMalformed(t *testing.T) {
	m := func(v any) string {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ev := []any{"message", 1}
	deep := strings.Repeat("\x91", MaxMsgpackDepth) + "\xc0"
	many := make([]any, 65)
	for i := range many {
		many[i] = []byte{1}
	}
	cases := []struct {
		name string
		in   string
		err  error
	}{
		{"empty", "", ErrMsgpack},
		{"not a map", m([]any{1}), ErrMsgpack},
		{"truncated", m(map[string]any{"type": 2, "nsp": "/", "data": ev})[:10], ErrMsgpack},
		{"trailing bytes", m(map[string]any{"type": 1, "nsp": "/"}) + "\xc0", ErrMsgpack},
		{"reserved code", "\x81\xa4data\xc1", ErrMsgpack},
		{"map header larger than the input", "\xdf\xff\xff\xff\xff", ErrMsgpack},
		{"array header larger than the input", "\x82\xa4type\x02\xa4data\xdd\xff\xff\xff\xff", ErrMsgpack},
		{"integer key", "\x81\x01\x02", ErrMsgpack},
		{"unknown extension type", "\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1m\xd4\x05\x00", ErrMsgpack},
		{"too deep", "\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1m" + deep, ErrMsgpack},
		{"no type", m(map[string]any{"nsp": "/", "data": ev}), ErrMsgpackField},
		{"no nsp", m(map[string]any{"type": 2, "data": ev}), ErrMsgpackField},
		{"type 5", m(map[string]any{"type": 5, "nsp": "/", "data": ev}), ErrMsgpackField},
		{"type as a string", m(map[string]any{"type": "2", "nsp": "/", "data": ev}), ErrMsgpackField},
		{"nsp not a string", m(map[string]any{"type": 2, "nsp": 1, "data": ev}), ErrMsgpackField},
		{"nsp without /", m(map[string]any{"type": 2, "nsp": "x", "data": ev}), ErrNamespace},
		{"nsp with a comma", m(map[string]any{"type": 2, "nsp": "/a,b", "data": ev}), ErrNamespace},
		{"negative id", m(map[string]any{"type": 2, "nsp": "/", "data": ev, "id": -1}), ErrAckID},
		{"string id", m(map[string]any{"type": 2, "nsp": "/", "data": ev, "id": "1"}), ErrAckID},
		{"binary in a connect", m(map[string]any{"type": 0, "nsp": "/", "data": map[string]any{"b": []byte{1}}}), ErrMsgpackField},
		{"65 binary values", m(map[string]any{"type": 2, "nsp": "/", "data": append([]any{"m"}, many...)}), ErrAttachments},
		{"event name not a string", m(map[string]any{"type": 2, "nsp": "/", "data": []any{1}}), ErrPayload},
		{"connect with an array", m(map[string]any{"type": 0, "nsp": "/", "data": []any{}}), ErrPayload},
		{"event without data", m(map[string]any{"type": 2, "nsp": "/"}), ErrPayload},
		{"ack without id", m(map[string]any{"type": 3, "nsp": "/", "data": []any{}}), ErrAckID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			_, _, err := ParseMsgpack([]byte(tc.in), &p, nil, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// decodeMsgpack decodes one msgpack value with the library, for checks.
func decodeMsgpack(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatalf("not msgpack: %v (% x)", err, b)
	}
	return v
}

// jsonValue normalises a decoded value for comparison: numbers as float64,
// as JSON would give them.
func jsonValue(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMsgpackCodecMessage(t *testing.T) {
	c := MsgpackCodec{JSON: Codec{Offsets: true}}
	m := &chat.Message{Room: []byte("lobby"), From: "k1", Nick: "ann", Data: []byte(`{"text":"h\u00e9 \"q\"","n":[1,-2,3.5,1e300,12345678901234567890,-9223372036854775808,9223372036854775807],"ok":true,"no":null,"bin":{"_placeholder":true,"num":0}}`),
		TS: 1700000000000, Offset: 42, Attachments: [][]byte{{1, 2, 3}}}
	v := decodeMsgpack(t, c.AppendMessage(nil, m))
	if v["type"] != int8(2) || v["nsp"] != "/" || v["id"] != nil {
		t.Fatalf("header %v", v)
	}
	data := v["data"].([]any)
	if len(data) != 3 || data[0] != "message" || data[2] != "42" {
		t.Fatalf("data %v", data)
	}
	obj := data[1].(map[string]any)
	payload := obj["data"].(map[string]any)
	if !bytes.Equal(payload["bin"].([]byte), []byte{1, 2, 3}) {
		t.Fatalf("bin %#v", payload["bin"])
	}
	delete(payload, "bin")
	n := payload["n"].([]any)
	if fmt.Sprint(n[5]) != fmt.Sprint(int64(math.MinInt64)) || fmt.Sprint(n[6]) != fmt.Sprint(int64(math.MaxInt64)) || n[4] != 12345678901234567890.0 {
		t.Fatalf("64-bit integers %#v, want exact int64s, and a float beyond", n[4:])
	}
	payload["n"] = n[:5]
	want := map[string]any{"text": "hé \"q\"", "n": []any{1.0, -2.0, 3.5, 1e300, 12345678901234567890.0}, "ok": true, "no": nil}
	if got := jsonValue(t, payload); !reflect.DeepEqual(got, want) {
		t.Fatalf("payload %v, want %v", got, want)
	}
	if obj["room"] != "lobby" || obj["from"] != "k1" || obj["nick"] != "ann" || jsonValue(t, obj["ts"]) != 1700000000000.0 {
		t.Fatalf("message %v", obj)
	}
}

func TestMsgpackCodecReplyAndEvents(t *testing.T) {
	c := MsgpackCodec{}
	if got := c.AppendReply(nil, &chat.Reply{Op: chat.OpPing}); len(got) != 0 {
		t.Fatalf("a reply nobody asked for: % x", got)
	}
	v := decodeMsgpack(t, c.AppendReply(nil, &chat.Reply{ID: []byte("12"), Op: chat.OpJoin, Room: []byte("lobby"), Count: 2}))
	if v["type"] != int8(3) || jsonValue(t, v["id"]) != 12.0 || !reflect.DeepEqual(jsonValue(t, v["data"]), []any{map[string]any{"room": "lobby", "count": 2.0}}) {
		t.Fatalf("ack %v", v)
	}
	v = decodeMsgpack(t, c.AppendPresence(nil, &chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "k2", Count: 2}))
	if d := v["data"].([]any); v["type"] != int8(2) || d[0] != "presence" {
		t.Fatalf("presence %v", v)
	}
	if !chat.BinaryPayloads(c) || chat.BinaryPayloads(Codec{}) || c.BinaryAttachments() {
		t.Fatal("BinaryPayloads/BinaryAttachments")
	}
}

// The server's own packets (CONNECT ack, CONNECT_ERROR, DISCONNECT)
// translate as the reference server's msgpack parser sends them.
func TestAppendMsgpackPacketServerPackets(t *testing.T) {
	cases := []struct {
		text string
		want map[string]any
	}{
		{`40{"sid":"abc","pid":"p"}`, map[string]any{"type": 0.0, "nsp": "/", "data": map[string]any{"sid": "abc", "pid": "p"}}},
		{`44/admin,{"message":"Invalid namespace"}`, map[string]any{"type": 4.0, "nsp": "/admin", "data": map[string]any{"message": "Invalid namespace"}}},
		{`41`, map[string]any{"type": 1.0, "nsp": "/"}},
	}
	for _, tc := range cases {
		b, err := AppendMsgpackPacket(nil, []byte(tc.text), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		if got := jsonValue(t, decodeMsgpack(t, b)); !reflect.DeepEqual(got, any(tc.want)) {
			t.Fatalf("%s: %v, want %v", tc.text, got, tc.want)
		}
	}
	if _, err := AppendMsgpackPacket([]byte("x"), []byte("4x"), nil); err == nil {
		t.Fatal("no error for an invalid packet")
	}
	if _, err := AppendMsgpackPacket(nil, []byte("2"), nil); err == nil {
		t.Fatal("no error for an Engine.IO ping")
	}
}

// What the server sends a msgpack client, the client's parser decodes
// back to the same packet: through ParseMsgpack, the translation is the
// identity.
func TestMsgpackRoundTrip(t *testing.T) {
	for _, text := range []string{
		`2["message",{"room":"lobby","data":[1,2.5,"x",{"a":{"b":[]}},true,false,null,{}]}]`,
		`52-["m",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`,
		`3/admin,7[{"ok":true}]`,
		`0{"sid":"x"}`,
		`1`,
	} {
		atts := [][]byte{{1}, {2, 2}}
		var p0 Packet
		if err := ParsePacket([]byte(text), &p0); err != nil {
			t.Fatal(err)
		}
		atts = atts[:p0.Attachments]
		b, err := AppendMsgpackPacket(nil, []byte("4"+text), atts)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var p Packet
		_, got, err := ParseMsgpack(b, &p, nil, nil)
		if err != nil {
			t.Fatalf("%s: ParseMsgpack: %v", text, err)
		}
		if out := string(AppendPacket(nil, &p)); out[1:] != text {
			// Placeholders come back numbered in document order.
			if p0.Attachments == 0 || len(got) != 2 || !bytes.Equal(got[0], atts[1]) {
				t.Fatalf("round trip %s -> %s", text, out[1:])
			}
		}
	}
}

func TestMsgpackCodecAppendMessageAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	c := MsgpackCodec{JSON: Codec{Offsets: true}}
	m := &chat.Message{Room: []byte("lobby"), From: "k1", Nick: "ann", Data: []byte(`{"text":"hello, world","n":1}`), TS: 1700000000000, Offset: 7}
	buf := c.AppendMessage(nil, m)
	allocs := testing.AllocsPerRun(1000, func() { buf = c.AppendMessage(buf[:0], m) })
	if allocs != 0 {
		t.Fatalf("AppendMessage: %v allocations per message, want 0", allocs)
	}
}

// JSON deeper than a msgpack packet may nest (-max-json-depth off) is not
// translated: msgpack clients do not get it, rather than a packet they
// would have to refuse.
func TestMsgpackCodecRefusesTooDeep(t *testing.T) {
	deep := strings.Repeat("[", MaxMsgpackDepth) + strings.Repeat("]", MaxMsgpackDepth)
	if got := (MsgpackCodec{}).AppendMessage(nil, &chat.Message{Room: []byte("r"), From: "k", Data: []byte(deep)}); len(got) != 0 {
		t.Fatalf("a message %d deep was translated", MaxMsgpackDepth)
	}
	ok := strings.Repeat("[", MaxMsgpackDepth-3) + strings.Repeat("]", MaxMsgpackDepth-3)
	b := (MsgpackCodec{}).AppendMessage(nil, &chat.Message{Room: []byte("r"), From: "k", Data: []byte(ok)})
	var p Packet
	if _, _, err := ParseMsgpack(b, &p, nil, nil); err != nil {
		t.Fatalf("a message as deep as a client may send does not parse back: %v", err)
	}
}
