package sio

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestParseEngine(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		typ     EngineType
		payload string
		err     error
	}{
		{"open", `0{"sid":"a"}`, EngineOpen, `{"sid":"a"}`, nil},
		{"ping", "2", EnginePing, "", nil},
		{"ping probe", "2probe", EnginePing, "probe", nil},
		{"pong", "3", EnginePong, "", nil},
		{"message", `42["a"]`, EngineMessage, `2["a"]`, nil},
		{"close", "1", EngineClose, "", nil},
		{"noop", "6", EngineNoop, "", nil},
		{"empty", "", 0, "", ErrEmpty},
		{"bad type", "7", 0, "", ErrEngineType},
		{"letter", "x", 0, "", ErrEngineType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, payload, err := ParseEngine([]byte(tt.frame))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if typ != tt.typ || string(payload) != tt.payload {
				t.Fatalf("got (%c, %q), want (%c, %q)", typ, payload, tt.typ, tt.payload)
			}
		})
	}
}

func TestParseOpen(t *testing.T) {
	o, err := ParseOpen([]byte(`{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Open{SID: "lv_VI97HAXpY6yYWAAAC", Upgrades: []string{}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got %+v, want %+v", o, want)
	}
}

// packetCases are valid packets: each parses to pkt and encodes back to
// wire (after the Engine.IO '4').
var packetCases = []struct {
	name string
	wire string
	pkt  Packet
}{
	{"connect main", "0", Packet{Type: Connect, Namespace: "/"}},
	{"connect reply", `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`, Packet{Type: Connect, Namespace: "/", Data: []byte(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}},
	{"connect other namespace", `0/admin,{"token":"123"}`, Packet{Type: Connect, Namespace: "/admin", Data: []byte(`{"token":"123"}`)}},
	{"disconnect", "1", Packet{Type: Disconnect, Namespace: "/"}},
	{"event", `2["message",{"room":"r"}]`, Packet{Type: Event, Namespace: "/", Data: []byte(`["message",{"room":"r"}]`)}},
	{"event with ack id", `21["join","lobby"]`, Packet{Type: Event, Namespace: "/", ID: 1, HasID: true, Data: []byte(`["join","lobby"]`)}},
	{"event ack id 0", `20["x"]`, Packet{Type: Event, Namespace: "/", ID: 0, HasID: true, Data: []byte(`["x"]`)}},
	{"event namespace and id", `2/chat,456["hi"]`, Packet{Type: Event, Namespace: "/chat", ID: 456, HasID: true, Data: []byte(`["hi"]`)}},
	{"ack", `31[{"room":"lobby","count":3}]`, Packet{Type: Ack, Namespace: "/", ID: 1, HasID: true, Data: []byte(`[{"room":"lobby","count":3}]`)}},
	{"connect error", `4{"message":"Not authorized"}`, Packet{Type: ConnectError, Namespace: "/", Data: []byte(`{"message":"Not authorized"}`)}},
	{"binary event", `51-["file",{"_placeholder":true,"num":0}]`, Packet{Type: BinaryEvent, Attachments: 1, Namespace: "/", Data: []byte(`["file",{"_placeholder":true,"num":0}]`)}},
	{"binary ack", `62-/x,7[{"_placeholder":true,"num":0}]`, Packet{Type: BinaryAck, Attachments: 2, Namespace: "/x", ID: 7, HasID: true, Data: []byte(`[{"_placeholder":true,"num":0}]`)}},
}

func TestParsePacket(t *testing.T) {
	for _, tt := range packetCases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket([]byte(tt.wire))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tt.pkt) {
				t.Fatalf("got %+v (data %q), want %+v (data %q)", p, p.Data, tt.pkt, tt.pkt.Data)
			}
		})
	}
}

func TestAppendPacket(t *testing.T) {
	for _, tt := range packetCases {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendPacket(nil, tt.pkt))
			if got != "4"+tt.wire {
				t.Fatalf("got %q, want %q", got, "4"+tt.wire)
			}
		})
	}
}

func TestParsePacketErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		err  error
	}{
		{"empty", "", ErrEmpty},
		{"bad type", "9", ErrPacketType},
		{"binary without dash", "51", ErrAttachments},
		{"binary without count", "5-[]", ErrAttachments},
		{"ack id overflow", "299999999999999999999999[]", ErrAckID},
		{"payload not JSON container", "0/,/", ErrPayload},
		{"string payload", `2"x"`, ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePacket([]byte(tt.wire)); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name  string
		id    uint64
		hasID bool
		event string
		args  []string
		want  string
	}{
		{"no args", 0, false, "ping", nil, `42["ping"]`},
		{"join with ack", 1, true, "join", []string{`"lobby"`}, `421["join","lobby"]`},
		{"message", 0, false, "message", []string{`{"room":"r","data":{"t":1}}`}, `42["message",{"room":"r","data":{"t":1}}]`},
		{"two args ack 12", 12, true, "x", []string{`1`, `"b"`}, `4212["x",1,"b"]`},
		{"escaped name", 0, false, "a\"b\n", nil, `42["a\"b\u000a"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := make([][]byte, len(tt.args))
			for i, a := range tt.args {
				args[i] = []byte(a)
			}
			got := string(AppendEvent(nil, tt.id, tt.hasID, tt.event, args...))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			// What we encode must decode to the same event.
			_, payload, err := ParseEngine([]byte(got))
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePacket(payload)
			if err != nil {
				t.Fatal(err)
			}
			if p.HasID != tt.hasID || p.ID != tt.id {
				t.Fatalf("ack id = %d/%v", p.ID, p.HasID)
			}
			name, gotArgs, err := ParseEvent(p.Data)
			if err != nil || name != tt.event || len(gotArgs) != len(tt.args) {
				t.Fatalf("ParseEvent = %q, %d args, %v", name, len(gotArgs), err)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		event string
		args  []string
		err   error
	}{
		{"message", `["message",{"room":"r","from":"x"}]`, "message", []string{`{"room":"r","from":"x"}`}, nil},
		{"no args", `["hello"]`, "hello", []string{}, nil},
		{"empty array", `[]`, "", nil, ErrNotEvent},
		{"not array", `{"a":1}`, "", nil, ErrNotEvent},
		{"name not string", `[1,2]`, "", nil, ErrNotEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, args, err := ParseEvent([]byte(tt.data))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if name != tt.event || len(args) != len(tt.args) {
				t.Fatalf("got %q with %d args", name, len(args))
			}
			for i := range args {
				if string(args[i]) != tt.args[i] {
					t.Fatalf("arg %d = %s, want %s", i, args[i], tt.args[i])
				}
			}
		})
	}
}

func TestFramesBuiltOnce(t *testing.T) {
	if string(PongFrame) != "3" || string(ConnectFrame) != "40" {
		t.Fatalf("PongFrame=%q ConnectFrame=%q", PongFrame, ConnectFrame)
	}
	var m json.RawMessage = []byte(`"x"`)
	if got := string(AppendEvent(nil, 0, false, "e", m)); got != `42["e","x"]` {
		t.Fatal(got)
	}
}

// FuzzParsePacket checks that parsing never panics and that a packet it
// accepts re-encodes to the same bytes.
func FuzzParsePacket(f *testing.F) {
	for _, tt := range packetCases {
		f.Add([]byte(tt.wire))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		got := AppendPacket(nil, p)
		if string(got[1:]) != string(b) {
			// Re-encoding may only differ in spellings the parser
			// normalises: a leading-zero ack id, or "/" named explicitly.
			again, err := ParsePacket(got[1:])
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Fatalf("%q -> %+v -> %q -> %+v (%v)", b, p, got, again, err)
			}
		}
	})
}
