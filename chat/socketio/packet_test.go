package socketio

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// packetCase is one ParsePacket input (a Socket.IO packet, without the
// Engine.IO '4') and what it must produce.
type packetCase struct {
	name string
	in   string
	want Packet // Namespace "" stands for "/"; rawID is not compared
	err  error
}

var packetCases = []packetCase{
	// The examples of socket.io-protocol v5, "Packet encoding".
	{name: "connect", in: `0`, want: Packet{Type: Connect}},
	{name: "connect with sid", in: `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`,
		want: Packet{Type: Connect, Data: []byte(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}},
	{name: "connect to namespace", in: `0/admin,`, want: Packet{Type: Connect, Namespace: []byte("/admin")}},
	{name: "connect to namespace with data", in: `0/admin,{"token":"123"}`,
		want: Packet{Type: Connect, Namespace: []byte("/admin"), Data: []byte(`{"token":"123"}`)}},
	{name: "connect error", in: `4{"message":"Not authorized"}`,
		want: Packet{Type: ConnectError, Data: []byte(`{"message":"Not authorized"}`)}},
	{name: "event", in: `2["foo"]`, want: Packet{Type: Event, Data: []byte(`["foo"]`)}},
	{name: "event on namespace", in: `2/admin,["bar"]`,
		want: Packet{Type: Event, Namespace: []byte("/admin"), Data: []byte(`["bar"]`)}},
	{name: "binary event", in: `51-["baz",{"_placeholder":true,"num":0}]`,
		want: Packet{Type: BinaryEvent, Attachments: 1, Data: []byte(`["baz",{"_placeholder":true,"num":0}]`)}},
	{name: "binary event on namespace", in: `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
		want: Packet{Type: BinaryEvent, Attachments: 2, Namespace: []byte("/admin"),
			Data: []byte(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	{name: "event with ack id", in: `212["foo"]`, want: Packet{Type: Event, ID: 12, HasID: true, Data: []byte(`["foo"]`)}},
	{name: "empty ack", in: `312[]`, want: Packet{Type: Ack, ID: 12, HasID: true, Data: []byte(`[]`)}},
	{name: "event on namespace with ack id", in: `2/admin,13["foo"]`,
		want: Packet{Type: Event, Namespace: []byte("/admin"), ID: 13, HasID: true, Data: []byte(`["foo"]`)}},
	{name: "ack on namespace", in: `3/admin,13["bar"]`,
		want: Packet{Type: Ack, Namespace: []byte("/admin"), ID: 13, HasID: true, Data: []byte(`["bar"]`)}},
	{name: "binary event with ack id", in: `51-14["foo",{"_placeholder":true,"num":0}]`,
		want: Packet{Type: BinaryEvent, Attachments: 1, ID: 14, HasID: true, Data: []byte(`["foo",{"_placeholder":true,"num":0}]`)}},
	{name: "binary ack", in: `61-15["bar",{"_placeholder":true,"num":0}]`,
		want: Packet{Type: BinaryAck, Attachments: 1, ID: 15, HasID: true, Data: []byte(`["bar",{"_placeholder":true,"num":0}]`)}},
	{name: "disconnect", in: `1`, want: Packet{Type: Disconnect}},
	{name: "disconnect from namespace", in: `1/admin,`, want: Packet{Type: Disconnect, Namespace: []byte("/admin")}},

	// Edges that are valid.
	{name: "explicit root namespace", in: `2/,["a"]`, want: Packet{Type: Event, Data: []byte(`["a"]`)}},
	{name: "namespace with digits then id", in: `2/1,2["a"]`,
		want: Packet{Type: Event, Namespace: []byte("/1"), ID: 2, HasID: true, Data: []byte(`["a"]`)}},
	{name: "namespace with odd bytes", in: `2/a["x"{,["a"]`,
		want: Packet{Type: Event, Namespace: []byte(`/a["x"{`), Data: []byte(`["a"]`)}},
	{name: "ack id zero", in: `30[]`, want: Packet{Type: Ack, HasID: true, Data: []byte(`[]`)}},
	{name: "ack id with leading zeros", in: `2007["a"]`, want: Packet{Type: Event, ID: 7, HasID: true, Data: []byte(`["a"]`)}},
	{name: "ack id max int64", in: `29223372036854775807["a"]`,
		want: Packet{Type: Event, ID: 9223372036854775807, HasID: true, Data: []byte(`["a"]`)}},
	{name: "binary event with zero attachments", in: `50-["a"]`, want: Packet{Type: BinaryEvent, Data: []byte(`["a"]`)}},
	{name: "event with space inside", in: `2[ "a" , 1 ]`, want: Packet{Type: Event, Data: []byte(`[ "a" , 1 ]`)}},
	{name: "event with trailing space", in: `2["a"] `, want: Packet{Type: Event, Data: []byte(`["a"] `)}},
	{name: "event with escaped name", in: `2["\u006eick","x"]`, want: Packet{Type: Event, Data: []byte(`["\u006eick","x"]`)}},
	{name: "event with number after name", in: `2["a",1]`, want: Packet{Type: Event, Data: []byte(`["a",1]`)}},
	{name: "connect with empty object", in: `0{}`, want: Packet{Type: Connect, Data: []byte(`{}`)}},
	// A namespace that ends the packet needs no ',' (the official test
	// suite sends "40/custom").
	{name: "namespace without comma at the end", in: `0/admin`, want: Packet{Type: Connect, Namespace: []byte("/admin")}},
	{name: "disconnect namespace without comma", in: `1/custom`, want: Packet{Type: Disconnect, Namespace: []byte("/custom")}},

	// Malformed packets.
	{name: "empty", in: ``, err: ErrEmpty},
	{name: "type 7", in: `7`, err: ErrPacketType},
	{name: "type letter", in: `a["x"]`, err: ErrPacketType},
	{name: "type 4 alone (connect error needs data)", in: `4`, err: ErrPayload},
	{name: "unterminated array", in: `2[`, err: ErrJSON},
	{name: "binary event without dash", in: `51["a"]`, err: ErrAttachments},
	{name: "binary event without count", in: `5-["a"]`, err: ErrAttachments},
	{name: "binary event without anything", in: `5["a"]`, err: ErrAttachments},
	{name: "binary event count alone", in: `51`, err: ErrAttachments},
	{name: "binary event count not numeric", in: `5x-["a"]`, err: ErrAttachments},
	{name: "binary event count overflow", in: `59999999999999999999-["a"]`, err: ErrAttachments},
	{name: "binary ack without dash", in: `61["a"]`, err: ErrAttachments},
	{name: "attachments more than placeholders fit", in: `52-["a",{"_placeholder":true,"num":0}]`, err: ErrAttachments},
	{name: "attachments on event", in: `21-["a"]`, err: ErrPayload},
	{name: "attachments on ack", in: `31-1["a"]`, err: ErrPayload},
	{name: "namespace without comma then data", in: `2/nsp["a"]`, err: ErrPayload},
	{name: "ack id overflow", in: `29223372036854775808["a"]`, err: ErrAckID},
	{name: "ack id huge", in: `2123456789012345678901234567890["a"]`, err: ErrAckID},
	{name: "ack without id", in: `3["a"]`, err: ErrAckID},
	{name: "binary ack without id", in: `61-["a",{"_placeholder":true,"num":0}]`, err: ErrAckID},
	{name: "connect with id", in: `01{}`, err: ErrAckID},
	{name: "disconnect with id", in: `11`, err: ErrAckID},
	{name: "connect error with id", in: `41{"message":"x"}`, err: ErrAckID},
	{name: "connect with string", in: `0"str"`, err: ErrPayload},
	{name: "connect with array", in: `0[]`, err: ErrPayload},
	{name: "connect with bad object", in: `0{"a"}`, err: ErrJSON},
	{name: "disconnect with data", in: `1{}`, err: ErrPayload},
	{name: "connect error without data", in: `4/x,`, err: ErrPayload},
	{name: "connect error with string", in: `4"nope"`, err: ErrPayload},
	{name: "event with object", in: `2{"a":1}`, err: ErrPayload},
	{name: "event without name", in: `2[1]`, err: ErrPayload},
	{name: "event with empty array", in: `2[]`, err: ErrPayload},
	{name: "event with empty array and space", in: `2[ ]`, err: ErrPayload},
	{name: "event without data", in: `2`, err: ErrPayload},
	{name: "event with id only", in: `212`, err: ErrPayload},
	{name: "event with null name", in: `2[null]`, err: ErrPayload},
	{name: "event with leading space", in: `2 ["a"]`, err: ErrPayload},
	{name: "event with trailing garbage", in: `2["a"]x`, err: ErrJSON},
	{name: "event with two arrays", in: `2["a"]["b"]`, err: ErrJSON},
	{name: "event with invalid escape", in: `2["\x"]`, err: ErrJSON},
	{name: "ack with object", in: `31{}`, err: ErrPayload},
	{name: "binary event with object", in: `51-{"_placeholder":true,"num":0,"x":"yy"}`, err: ErrPayload},
}

func TestParsePacket(t *testing.T) {
	for _, tc := range packetCases {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := ParsePacket([]byte(tc.in), &p)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ParsePacket(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if err != nil {
				return
			}
			checkPacket(t, &p, &tc.want)
		})
	}
}

// checkPacket compares the exported fields of got and want; an empty
// want.Namespace stands for "/".
func checkPacket(t *testing.T, got, want *Packet) {
	t.Helper()
	wantNsp := want.Namespace
	if len(wantNsp) == 0 {
		wantNsp = []byte("/")
	}
	if got.Type != want.Type || got.Attachments != want.Attachments || !bytes.Equal(got.Namespace, wantNsp) ||
		got.ID != want.ID || got.HasID != want.HasID || !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		t.Fatalf("got  {%v att=%d nsp=%q id=%d/%v data=%q}\nwant {%v att=%d nsp=%q id=%d/%v data=%q}",
			got.Type, got.Attachments, got.Namespace, got.ID, got.HasID, got.Data,
			want.Type, want.Attachments, wantNsp, want.ID, want.HasID, want.Data)
	}
}

// A Socket.IO packet inside an Engine.IO WebSocket message: what the
// transport does with every text message.
func TestParseEIOThenPacket(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"event", `42["a"]`, nil},
		{"message with empty packet", `4`, ErrEmpty},
		{"connect error alone", `44`, ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := ParseEIO([]byte(tt.in))
			if err != nil || typ != EIOMessage {
				t.Fatalf("ParseEIO = %v, %v", typ, err)
			}
			var p Packet
			if err := ParsePacket(data, &p); !errors.Is(err, tt.err) {
				t.Fatalf("ParsePacket(%q) = %v, want %v", data, err, tt.err)
			}
		})
	}
}

func TestParsePacketAliasesInput(t *testing.T) {
	in := []byte(`51-/chat,42["a",{"_placeholder":true,"num":0}]`)
	var p Packet
	if err := ParsePacket(in, &p); err != nil {
		t.Fatal(err)
	}
	if !within(p.Namespace, in) || !within(p.Data, in) || !within(p.rawID, in) {
		t.Fatal("slices do not alias the input")
	}
}

func TestParsePacketRoundTrip(t *testing.T) {
	for _, tc := range packetCases {
		if tc.err != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var p, q Packet
			if err := ParsePacket([]byte(tc.in), &p); err != nil {
				t.Fatal(err)
			}
			out := AppendPacket(nil, &p)
			if out[0] != '4' {
				t.Fatalf("AppendPacket = %q lacks the Engine.IO message type", out)
			}
			if err := ParsePacket(out[1:], &q); err != nil {
				t.Fatalf("re-encoded %q does not parse: %v", out, err)
			}
			checkPacket(t, &q, &p)
		})
	}
}

func TestEncoders(t *testing.T) {
	placeholder := []byte(`{"_placeholder":true,"num":0}`)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"connect", AppendConnect(nil, nil, "abc"), `40{"sid":"abc"}`},
		{"connect root", AppendConnect(nil, []byte("/"), "abc"), `40{"sid":"abc"}`},
		{"connect namespace", AppendConnect(nil, []byte("/custom"), "abc"), `40/custom,{"sid":"abc"}`},
		{"connect escapes sid", AppendConnect(nil, nil, `a"<`), `40{"sid":"a\"\u003c"}`},
		{"connect error", AppendConnectError(nil, nil, "Invalid namespace"), `44{"message":"Invalid namespace"}`},
		{"connect error namespace", AppendConnectError(nil, []byte("/foo"), "Invalid namespace"), `44/foo,{"message":"Invalid namespace"}`},
		{"disconnect", AppendDisconnect(nil, nil), `41`},
		{"disconnect namespace", AppendDisconnect(nil, []byte("/custom")), `41/custom,`},
		{"event", AppendEvent(nil, nil, 0, "message-back", []byte("1"), []byte(`"2"`)), `42["message-back",1,"2"]`},
		{"event no args", AppendEvent(nil, nil, 0, "tick"), `42["tick"]`},
		{"event namespace", AppendEvent(nil, []byte("/admin"), 0, "bar"), `42/admin,["bar"]`},
		{"event escapes name", AppendEvent(nil, nil, 0, "a\nb"), `42["a\nb"]`},
		{"binary event", AppendEvent(nil, nil, 1, "event", placeholder), `451-["event",{"_placeholder":true,"num":0}]`},
		{"binary event namespace", AppendEvent(nil, []byte("/admin"), 1, "baz", placeholder), `451-/admin,["baz",{"_placeholder":true,"num":0}]`},
		{"event raw", AppendEventRaw(nil, nil, 0, []byte(`["a",{"b":1}]`)), `42["a",{"b":1}]`},
		{"binary event raw", AppendEventRaw(nil, nil, 2, []byte(`["a",[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]]`)),
			`452-["a",[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]]`},
		{"ack", AppendAck(nil, nil, 1, 0, []byte(`["a",1]`)), `431["a",1]`},
		{"ack empty", AppendAck(nil, nil, 12, 0, nil), `4312[]`},
		{"ack namespace", AppendAck(nil, []byte("/admin"), 13, 0, []byte(`["bar"]`)), `43/admin,13["bar"]`},
		{"binary ack", AppendAck(nil, nil, 7, 1, []byte(`["a",{"_placeholder":true,"num":0}]`)), `461-7["a",{"_placeholder":true,"num":0}]`},
		{"binary ack namespace", AppendAck(nil, []byte("/x"), 15, 1, []byte(`[{"_placeholder":true,"num":0}]`)), `461-/x,15[{"_placeholder":true,"num":0}]`},
		{"packet", AppendPacket(nil, &Packet{Type: BinaryAck, Attachments: 3, Namespace: []byte("/n"), ID: 9, HasID: true, Data: []byte(`[]`)}), `463-/n,9[]`},
		{"packet attachments ignored on event", AppendPacket(nil, &Packet{Type: Event, Attachments: 3, Data: []byte(`["a"]`)}), `42["a"]`},
		{"appends to dst", AppendDisconnect([]byte("x"), nil), `x41`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
			// Every encoder's output is a message packet that parses,
			// except this one: three attachments cannot fit in "[]".
			if tt.name == "packet" {
				return
			}
			var p Packet
			got := bytes.TrimPrefix(tt.got, []byte("x"))
			if err := ParsePacket(got[1:], &p); err != nil {
				t.Fatalf("%s does not parse: %v", got, err)
			}
		})
	}
}

func TestReplaceEventName(t *testing.T) {
	tests := []struct {
		name, data, newName, want string
	}{
		{"simple", `["message",1,"2"]`, "message-back", `["message-back",1,"2"]`},
		{"name only", `["a"]`, "b", `["b"]`},
		{"keeps raw bytes", `[ "a\"b" ,{"x": [1, 2]} , "\u00e9"]`, "z", `["z" ,{"x": [1, 2]} , "\u00e9"]`},
		{"escapes new name", `["a",1]`, `<"&>`, `["\u003c\"\u0026\u003e",1]`},
		{"no name inserts", `[1,2]`, "n", `["n",1,2]`},
		{"empty array", `[]`, "n", `["n"]`},
		{"empty array with space", `[ ]`, "n", `["n"]`},
		{"not an array", `{"a":1}`, "n", `["n"]`},
		{"empty", ``, "n", `["n"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReplaceEventName([]byte(tt.data), tt.newName, []byte("pre"))
			if string(got) != "pre"+tt.want {
				t.Fatalf("got %s, want pre%s", got, tt.want)
			}
		})
	}
	// Forwarding a client's event under a new name, end to end.
	var p Packet
	if err := ParsePacket([]byte(`2["message",{"a":1},"b"]`), &p); err != nil {
		t.Fatal(err)
	}
	out := AppendEventRaw(nil, nil, 0, ReplaceEventName(p.Data, "message-back", nil))
	if want := `42["message-back",{"a":1},"b"]`; string(out) != want {
		t.Fatalf("got %s, want %s", out, want)
	}
}

func TestEventName(t *testing.T) {
	tests := []struct{ in, want string }{
		{`2["a",1]`, `"a"`},
		{`2[ "b\"c" ]`, `"b\"c"`},
		{`51-["x",{"_placeholder":true,"num":0}]`, `"x"`},
		{`31[]`, ""},
		{`0{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p Packet
			if err := ParsePacket([]byte(tt.in), &p); err != nil {
				t.Fatal(err)
			}
			if got := p.EventName(); string(got) != tt.want {
				t.Fatalf("EventName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPacketTypeString(t *testing.T) {
	var names []string
	for c := byte('0'); c <= '7'; c++ {
		names = append(names, PacketType(c).String())
	}
	if got := strings.Join(names, " "); got != "CONNECT DISCONNECT EVENT ACK CONNECT_ERROR BINARY_EVENT BINARY_ACK INVALID" {
		t.Fatal(got)
	}
}

func TestPacketAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	in := []byte(`51-/chat,42["message",{"room":"r","data":{"_placeholder":true,"num":0}}]`)
	var p Packet
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		if err := ParsePacket(in, &p); err != nil {
			t.Fatal(err)
		}
		buf = AppendPacket(buf[:0], &p)
		buf = AppendEvent(buf[:0], p.Namespace, 1, "message", p.Data)
		buf = AppendAck(buf[:0], p.Namespace, p.ID, 0, p.Data)
		buf = AppendConnect(buf[:0], p.Namespace, "sid")
	})
	if n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

// within reports whether sub lies inside the memory of s.
func within(sub, s []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := range len(s) - len(sub) + 1 {
		if &s[i] == &sub[0] {
			return true
		}
	}
	return false
}
