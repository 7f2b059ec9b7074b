package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseEIO(t *testing.T) {
	tests := []struct {
		name string
		in   string
		typ  EIOType
		data string
		err  error
	}{
		{"open", `0{"sid":"a"}`, EIOOpen, `{"sid":"a"}`, nil},
		{"close", "1", EIOClose, "", nil},
		{"ping", "2", EIOPing, "", nil},
		{"ping probe", "2probe", EIOPing, "probe", nil},
		{"pong", "3", EIOPong, "", nil},
		{"pong probe", "3probe", EIOPong, "probe", nil},
		{"message", `42["a"]`, EIOMessage, `2["a"]`, nil},
		{"message alone", `4`, EIOMessage, ``, nil},
		{"upgrade", "5", EIOUpgrade, "", nil},
		{"noop", "6", EIONoop, "", nil},
		{"empty", "", 0, "", ErrEmpty},
		{"type 7", "7", 0, "", ErrEIOType},
		{"letter", "x", 0, "", ErrEIOType},
		{"base64 marker is not a type", "bAQID", 0, "", ErrEIOType},
		{"binary byte", "\x04abc", 0, "", ErrEIOType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := ParseEIO([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if typ != tt.typ || string(data) != tt.data || data == nil {
				t.Fatalf("got (%v, %q), want (%v, %q)", typ, data, tt.typ, tt.data)
			}
			if got := AppendEIO(nil, typ, data); string(got) != tt.in {
				t.Fatalf("AppendEIO = %q, want %q", got, tt.in)
			}
		})
	}
}

func TestEIOTypeString(t *testing.T) {
	var names []string
	for c := byte('0'); c <= '7'; c++ {
		names = append(names, EIOType(c).String())
	}
	if got := strings.Join(names, " "); got != "open close ping pong message upgrade noop invalid" {
		t.Fatal(got)
	}
}

func TestAppendOpen(t *testing.T) {
	tests := []struct {
		name string
		open Open
		want string
	}{
		{"websocket", Open{SID: "lv_VI97HAXpY6yYWAAAC", PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000000},
			`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
		{"polling", Open{SID: "s", Upgrades: []string{"websocket"}, PingInterval: 25 * time.Second, PingTimeout: 5 * time.Second, MaxPayload: 1e6},
			`0{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}`},
		{"two upgrades and escapes", Open{SID: `a"b`, Upgrades: []string{"websocket", "x<y"}, PingInterval: 1500 * time.Microsecond},
			`0{"sid":"a\"b","upgrades":["websocket","x\u003cy"],"pingInterval":1,"pingTimeout":0,"maxPayload":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendOpen(nil, tt.open)
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			var m map[string]any
			if err := json.Unmarshal(got[1:], &m); err != nil || len(m) != 5 {
				t.Fatalf("handshake data %s: %v, %d keys", got[1:], err, len(m))
			}
		})
	}
}

func TestSplitPayload(t *testing.T) {
	errStop := errors.New("stop")
	tests := []struct {
		name   string
		body   string
		stopAt int // fn fails on this packet (1-based); 0 never
		want   []string
		err    error
	}{
		{"one", `4hello`, 0, []string{"4hello"}, nil},
		{"spec sample", "42[\"hello\"]\x1e42[\"world\"]", 0, []string{`42["hello"]`, `42["world"]`}, nil},
		{"text and binary", "4hello\x1ebAQID", 0, []string{"4hello", "bAQID"}, nil},
		{"three", "2\x1e3probe\x1e6", 0, []string{"2", "3probe", "6"}, nil},
		{"empty body", ``, 0, nil, ErrEmpty},
		{"only separator", "\x1e", 0, nil, ErrEmpty},
		{"leading separator", "\x1e4a", 0, nil, ErrEmpty},
		{"trailing separator", "4a\x1e", 0, []string{"4a"}, ErrEmpty},
		{"double separator", "4a\x1e\x1e4b", 0, []string{"4a"}, ErrEmpty},
		{"fn error stops", "4a\x1e4b\x1e4c", 2, []string{"4a", "4b"}, errStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := SplitPayload([]byte(tt.body), func(p []byte) error {
				got = append(got, string(p))
				if len(got) == tt.stopAt {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("packets %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	type packet struct {
		data   string
		binary bool
	}
	tests := []struct {
		name    string
		packets []packet
		body    string
	}{
		{"one text", []packet{{"4hello", false}}, "4hello"},
		{"text then binary", []packet{{"4hello", false}, {"\x01\x02\x03", true}}, "4hello\x1ebAQID"},
		{"binary with padding", []packet{{"\x01\x02\x03\x04", true}}, "bAQIDBA=="},
		{"empty binary", []packet{{"", true}, {"2", false}}, "b\x1e2"},
		{"socket.io binary event", []packet{{`451-["a",{"_placeholder":true,"num":0}]`, false}, {"\xff\x00", true}},
			"451-[\"a\",{\"_placeholder\":true,\"num\":0}]\x1eb/wA="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			for _, p := range tt.packets {
				body = AppendPayloadPacket(body, []byte(p.data), p.binary)
			}
			if string(body) != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
			var got []packet
			err := SplitPayload(body, func(p []byte) error {
				bin, data, err := DecodePollingPacket(p)
				got = append(got, packet{string(data), bin})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.packets) {
				t.Fatalf("got %+v, want %+v", got, tt.packets)
			}
			for i := range got {
				if got[i] != tt.packets[i] {
					t.Fatalf("packet %d: got %+v, want %+v", i, got[i], tt.packets[i])
				}
			}
		})
	}
}

func TestDecodePollingPacket(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		binary bool
		data   string
		err    error
	}{
		{"text", `42["a"]`, false, `42["a"]`, nil},
		{"binary", "bAQID", true, "\x01\x02\x03", nil},
		{"binary empty", "b", true, "", nil},
		{"empty", "", false, "", ErrEmpty},
		{"bad base64", "b!!!!", true, "", ErrBase64},
		{"bad padding", "bAQI", true, "", ErrBase64},
		{"url alphabet rejected", "b_-8=", true, "", ErrBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, data, err := DecodePollingPacket([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if bin != tt.binary || string(data) != tt.data {
				t.Fatalf("got (%v, %q), want (%v, %q)", bin, data, tt.binary, tt.data)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Query
		err  error
	}{
		{"polling handshake", "EIO=4&transport=polling&t=N8hyd6w", Query{EIO: 4, Transport: "polling"}, nil},
		{"websocket with sid", "EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC", Query{EIO: 4, Transport: "websocket", SID: "lv_VI97HAXpY6yYWAAAC"}, nil},
		{"escaped sid", "transport=polling&EIO=4&sid=a%2Fb", Query{EIO: 4, Transport: "polling", SID: "a/b"}, nil},
		{"first value wins", "EIO=4&EIO=3&transport=polling", Query{EIO: 4, Transport: "polling"}, nil},
		{"missing EIO", "transport=polling", Query{}, ErrUnsupportedProtocol},
		{"EIO 3", "EIO=3&transport=polling", Query{}, ErrUnsupportedProtocol},
		{"EIO not a number", "EIO=four&transport=polling", Query{}, ErrUnsupportedProtocol},
		{"missing transport", "EIO=4", Query{}, ErrUnknownTransport},
		{"unknown transport", "EIO=4&transport=flashsocket", Query{}, ErrUnknownTransport},
		{"transport case matters", "EIO=4&transport=WebSocket", Query{}, ErrUnknownTransport},
		{"bad escape", "EIO=4&transport=polling&sid=%zz", Query{}, ErrBadRequest},
		{"empty", "", Query{}, ErrUnsupportedProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if q != tt.want {
				t.Fatalf("got %+v, want %+v", q, tt.want)
			}
			var he *HandshakeError
			if err != nil && !errors.As(err, &he) {
				t.Fatalf("%v is not a *HandshakeError", err)
			}
		})
	}
}

func TestHandshakeErrors(t *testing.T) {
	tests := []struct {
		err    *HandshakeError
		body   string
		status int
	}{
		{ErrUnknownTransport, `{"code":0,"message":"Transport unknown"}`, 400},
		{ErrUnknownSID, `{"code":1,"message":"Session ID unknown"}`, 400},
		{ErrBadHandshakeMethod, `{"code":2,"message":"Bad handshake method"}`, 400},
		{ErrBadRequest, `{"code":3,"message":"Bad request"}`, 400},
		{ErrForbidden, `{"code":4,"message":"Forbidden"}`, 403},
		{ErrUnsupportedProtocol, `{"code":5,"message":"Unsupported protocol version"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.err.Message, func(t *testing.T) {
			if got := AppendHTTPError(nil, tt.err.Code, tt.err.Message); string(got) != tt.body {
				t.Fatalf("body %s, want %s", got, tt.body)
			}
			if tt.err.Status() != tt.status {
				t.Fatalf("status %d, want %d", tt.err.Status(), tt.status)
			}
			if !strings.HasPrefix(tt.err.Error(), "socketio: ") {
				t.Fatalf("error %q lacks the package prefix", tt.err.Error())
			}
		})
	}
	t.Run("escapes message", func(t *testing.T) {
		got := AppendHTTPError([]byte("x"), 3, "bad \"sid\"")
		if !bytes.Equal(got, []byte(`x{"code":3,"message":"bad \"sid\""}`)) {
			t.Fatalf("got %s", got)
		}
	})
}

func TestEngineIOAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	body := []byte("42[\"a\"]\x1e42[\"b\"]\x1e2")
	buf := make([]byte, 0, 256)
	open := Open{SID: "abc", Upgrades: []string{"websocket"}, PingInterval: 25 * time.Second}
	n := testing.AllocsPerRun(100, func() {
		_, _, _ = ParseEIO(body)
		_ = SplitPayload(body, func([]byte) error { return nil })
		buf = AppendOpen(buf[:0], open)
		buf = AppendPayloadPacket(buf[:0], body, false)
		buf = AppendPayloadPacket(buf, body, true)
		buf = AppendHTTPError(buf[:0], 0, "Transport unknown")
	})
	if n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
