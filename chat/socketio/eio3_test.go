package socketio

import (
	"errors"
	"reflect"
	"testing"
)

// The payloads below are what engine.io-parser 2.2.1 (socket.io-client
// 2.5.0's) encodes: encodePayload(packets, false) for the text framing,
// encodePayload(packets, true) for the binary one.

func TestAppendPayloadPacketV3(t *testing.T) {
	var b []byte
	b = AppendPayloadPacketV3(b, []byte("4€"), false)
	b = AppendPayloadPacketV3(b, []byte("4😀x"), false)
	b = AppendPayloadPacketV3(b, []byte("2"), false)
	// Lengths in UTF-16 code units: "4€" is 2 (4 bytes), "4😀x" 4 (6
	// bytes: the emoji is a surrogate pair).
	if got, want := string(b), "2:4€4:4😀x1:2"; got != want {
		t.Fatalf("text payload %q, want %q", got, want)
	}
	b = AppendPayloadPacketV3(nil, []byte(`42["a"]`), false)
	b = AppendPayloadPacketV3(b, []byte{1, 2, 3, 4}, true)
	if got, want := string(b), `7:42["a"]10:b4AQIDBA==`; got != want {
		t.Fatalf("payload with binary %q, want %q", got, want)
	}
}

func TestSplitPayloadV3(t *testing.T) {
	type pkt struct {
		Binary bool
		Data   string
	}
	tests := []struct {
		name string
		in   string
		want []pkt
		err  error
	}{
		{"utf16 lengths", "2:4€4:4😀x1:2", []pkt{{false, "4€"}, {false, "4😀x"}, {false, "2"}}, nil},
		{"binary", `7:42["a"]10:b4AQIDBA==`, []pkt{{false, `42["a"]`}, {true, "\x01\x02\x03\x04"}}, nil},
		{"one", "1:6", []pkt{{false, "6"}}, nil},
		{"empty", "", nil, ErrEmpty},
		{"v4 framing", "42[\"a\"]\x1e2", nil, ErrV3Payload},
		{"length past end", "9:4ab", nil, ErrV3Payload},
		{"zero length", "0:", nil, ErrV3Payload},
		{"no length", ":4", nil, ErrV3Payload},
		{"not a number", "x:4", nil, ErrV3Payload},
		{"huge length", "99999999999:4", nil, ErrV3Payload},
		{"splits a surrogate pair", "1:😀", nil, ErrV3Payload},
		{"whole surrogate pair", "2:😀", []pkt{{false, "😀"}}, nil},
		{"fault after a packet", "1:2junk", []pkt{{false, "2"}}, ErrV3Payload},
		{"binary not a message", "3:b2AQ==", nil, ErrV3Binary},
		{"bad base64", "4:b4!!", nil, ErrBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []pkt
			err := SplitPayloadV3([]byte(tt.in), func(p []byte) error {
				bin, data, err := DecodePollingPacketV3(p)
				if err != nil {
					return err
				}
				got = append(got, pkt{bin, string(data)})
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("packets %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSplitBinaryPayloadV3(t *testing.T) {
	// encodePayload([{message "é"}, {message <01 02 03>}], true): the text
	// packet's length counts UTF-8 bytes.
	body := []byte{0, 3, 255, '4', 0xc3, 0xa9, 1, 4, 255, 4, 1, 2, 3}
	type pkt struct {
		Binary bool
		Data   string
	}
	var got []pkt
	err := SplitBinaryPayloadV3(body, func(bin bool, data []byte) error {
		got = append(got, pkt{bin, string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []pkt{{false, "4é"}, {true, "\x01\x02\x03"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("packets %+v, want %+v", got, want)
	}
	for name, bad := range map[string][]byte{
		"empty":        {},
		"bad flag":     {2, 1, 255, '2'},
		"no digits":    {0, 255, '2'},
		"bad digit":    {0, 10, 255, '2'},
		"no separator": {0, 1, 1},
		"short":        {0, 5, 255, '4', 'a'},
		"long length":  {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 255, '2'},
	} {
		if err := SplitBinaryPayloadV3(bad, func(bool, []byte) error { return nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := SplitBinaryPayloadV3([]byte{1, 2, 255, 2, 1}, func(bool, []byte) error { return nil }); !errors.Is(err, ErrV3Binary) {
		t.Errorf("binary ping: error %v, want ErrV3Binary", err)
	}
}

func TestV3ToV4Payload(t *testing.T) {
	got, err := V3ToV4Payload(nil, []byte(`7:42["a"]10:b4AQIDBA==1:2`), false)
	if err != nil || string(got) != "42[\"a\"]\x1ebAQIDBA==\x1e2" {
		t.Fatalf("text: %q, %v", got, err)
	}
	got, err = V3ToV4Payload(nil, []byte{0, 3, 255, '4', 0xc3, 0xa9, 1, 4, 255, 4, 1, 2, 3}, true)
	if err != nil || string(got) != "4é\x1ebAQID" {
		t.Fatalf("binary: %q, %v", got, err)
	}
	if _, err := V3ToV4Payload(nil, []byte("3:4\x1e2"), false); !errors.Is(err, ErrV3Payload) {
		t.Fatalf("record separator inside a packet: %v, want ErrV3Payload", err)
	}
}

func TestBinaryV3(t *testing.T) {
	if got := AppendBinaryV3(nil, []byte{1, 2}); string(got) != "\x04\x01\x02" {
		t.Fatalf("AppendBinaryV3 = %q", got)
	}
	data, err := ParseBinaryV3([]byte{4, 1, 2})
	if err != nil || string(data) != "\x01\x02" {
		t.Fatalf("ParseBinaryV3 = %q, %v", data, err)
	}
	for _, bad := range [][]byte{{}, {1, 2}, {'4', 1}} {
		if _, err := ParseBinaryV3(bad); !errors.Is(err, ErrV3Binary) {
			t.Errorf("ParseBinaryV3(%q) error %v, want ErrV3Binary", bad, err)
		}
	}
}

func TestParseQueryAllow(t *testing.T) {
	tests := []struct {
		in    string
		allow bool
		want  Query
		err   error
	}{
		{"EIO=3&transport=polling", false, Query{}, ErrUnsupportedProtocol},
		{"EIO=3&transport=polling&b64=1", true, Query{EIO: 3, Transport: "polling"}, nil},
		{"EIO=3&transport=websocket&sid=abc", true, Query{EIO: 3, Transport: "websocket", SID: "abc"}, nil},
		{"EIO=4&transport=polling", true, Query{EIO: 4, Transport: "polling"}, nil},
		{"EIO=2&transport=polling", true, Query{}, ErrUnsupportedProtocol},
		{"EIO=3&transport=flash", true, Query{}, ErrUnknownTransport},
		{"EIO=3&transport=polling&j=0", true, Query{}, ErrJSONP},
		{"EIO=3&%zz", true, Query{}, ErrBadRequest},
	}
	for _, tt := range tests {
		q, err := ParseQueryAllow([]byte(tt.in), tt.allow)
		if err != tt.err || q != tt.want {
			t.Errorf("ParseQueryAllow(%q, %v) = %+v, %v; want %+v, %v", tt.in, tt.allow, q, err, tt.want, tt.err)
		}
	}
}

func TestConnectV3(t *testing.T) {
	if got := string(AppendConnectV3(nil, []byte("/"))); got != "40" {
		t.Errorf("connect / = %q", got)
	}
	if got := string(AppendConnectV3(nil, []byte("/admin"))); got != "40/admin," {
		t.Errorf("connect /admin = %q", got)
	}
	if got := string(AppendConnectErrorV3(nil, []byte("/x"), "Invalid namespace")); got != `44/x,"Invalid namespace"` {
		t.Errorf("connect error = %q", got)
	}
}
