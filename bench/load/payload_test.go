package load

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestAppendDataSizeAndParse(t *testing.T) {
	tests := []struct {
		name string
		t    int64
		k    int
		size int
		want int // length of the data object
	}{
		{"exact 64", 123456789012345, 3, 64, 64},
		{"exact 256", 1, 1, 256, 256},
		{"below minimum keeps everything", 9223372036854775807, 99999, 10, minDataSize},
		{"minimum", 9223372036854775807, 99999, minDataSize, minDataSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := appendData(nil, tt.t, tt.k, tt.size)
			if len(d) != tt.want {
				t.Fatalf("len = %d, want %d: %s", len(d), tt.want, d)
			}
			if !json.Valid(d) {
				t.Fatalf("not JSON: %s", d)
			}
			gt, gk, ok := parseData(d)
			if !ok || gt != tt.t || gk != tt.k {
				t.Fatalf("parseData = %d, %d, %v", gt, gk, ok)
			}
		})
	}
}

func TestParseDataInMessages(t *testing.T) {
	data := string(appendData(nil, 42, 7, 64))
	tests := []struct {
		name string
		msg  string
		t    int64
		k    int
		ok   bool
	}{
		{"native", `{"type":"message","room":"r0","from":"c1","nick":"u1","data":` + data + `,"ts":1}`, 42, 7, true},
		{"native other key order", `{"data":` + data + `,"type":"message"}`, 42, 7, true},
		{"socket.io", `42["message",{"room":"r0","from":"x","nick":"","data":` + data + `,"ts":1}]`, 42, 7, true},
		{"no data", `{"type":"ack","id":3}`, 0, 0, false},
		{"negative step (churn)", `{"data":{"t":5,"k":-1,"p":""}}`, 0, 0, false},
		{"truncated", `{"data":{"t":5`, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gt, gk, ok := parseData([]byte(tt.msg))
			if ok != tt.ok || gt != tt.t || gk != tt.k {
				t.Fatalf("got %d, %d, %v; want %d, %d, %v", gt, gk, ok, tt.t, tt.k, tt.ok)
			}
		})
	}
}

func TestAppendSend(t *testing.T) {
	tests := []struct {
		name  string
		proto Protocol
		check func(t *testing.T, b []byte)
	}{
		{"native", Native, func(t *testing.T, b []byte) {
			var v struct {
				Type string          `json:"type"`
				ID   int             `json:"id"`
				Room string          `json:"room"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			if v.Type != "send" || v.ID != 9 || v.Room != "r12" || len(v.Data) != 100 {
				t.Fatalf("%+v (data %d bytes)", v, len(v.Data))
			}
		}},
		{"socketio", SocketIO, func(t *testing.T, b []byte) {
			if !strings.HasPrefix(string(b), `429["message",{"room":"r12","data":{"t":`) {
				t.Fatalf("%s", b)
			}
			var arr []json.RawMessage
			if err := json.Unmarshal(b[3:], &arr); err != nil || len(arr) != 2 {
				t.Fatalf("%s: %v", b, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendSend(nil, tt.proto, 9, 12, 1234, 2, 100)
			tt.check(t, b)
			if _, k, ok := parseData(b); !ok || k != 2 {
				t.Fatalf("own message not parseable: %s", b)
			}
		})
	}
}

func TestIsMessage(t *testing.T) {
	tests := []struct {
		name  string
		proto Protocol
		frame string
		want  bool
	}{
		{"native message", Native, `{"type":"message","room":"r"}`, true},
		{"native ack", Native, `{"type":"ack","id":1}`, false},
		{"native presence", Native, `{"type":"presence","room":"r"}`, false},
		{"native type later in a long frame", Native, `{"type":"ack","id":1,"x":"` + strings.Repeat("a", 100) + `","type":"message"}`, false},
		{"sio message", SocketIO, `42["message",{}]`, true},
		{"sio ack", SocketIO, `431[{"room":"r","count":1}]`, false},
		{"sio presence", SocketIO, `42["presence",{}]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isMessage(tt.proto, []byte(tt.frame)); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestIsErrorReply(t *testing.T) {
	tests := []struct {
		name  string
		proto Protocol
		frame string
		want  bool
	}{
		{"native error", Native, `{"type":"error","id":3,"code":"rate_limited","message":"slow down"}`, true},
		{"native ack", Native, `{"type":"ack","id":3}`, false},
		{"native message whose data says error", Native, `{"type":"message","data":{"type":"error"}}`, false},
		{"sio error ack", SocketIO, `4312[{"error":"not_joined","message":"x"}]`, true},
		{"sio ok ack", SocketIO, `4312[{"ok":true}]`, false},
		{"sio message", SocketIO, `42["message",{"data":{"error":1}}]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isErrorReply(tt.proto, []byte(tt.frame)); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestIsAck(t *testing.T) {
	tests := []struct {
		name  string
		proto Protocol
		frame string
		id    uint64
		want  bool
	}{
		{"native ack", Native, `{"type":"ack","id":3}`, 3, true},
		{"native error counts as answered", Native, `{"type":"error","id":3,"code":"x"}`, 3, true},
		{"native other id", Native, `{"type":"ack","id":2,"count":4}`, 3, false},
		{"native message", Native, `{"type":"message","data":{}}`, 3, false},
		{"sio ack", SocketIO, `433[{"ok":true}]`, 3, true},
		{"sio ack 33 is not 3", SocketIO, `4333[{"ok":true}]`, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isAck(tt.proto, []byte(tt.frame), tt.id); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// serverFrame builds an unmasked server frame, or a masked one if mask.
func serverFrame(fin bool, op ws.OpCode, payload []byte, mask bool) []byte {
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload)), Masked: mask}
	var b bytes.Buffer
	p := bytes.Clone(payload)
	if mask {
		h.Mask = [4]byte{1, 2, 3, 4}
		ws.Cipher(p, h.Mask, 0)
	}
	if err := ws.WriteHeader(&b, h); err != nil {
		panic(err)
	}
	b.Write(p)
	return b.Bytes()
}

func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 700)
	huge := bytes.Repeat([]byte("h"), 70000)
	type frame struct {
		op      ws.OpCode
		payload string
	}
	tests := []struct {
		name  string
		input [][]byte
		want  []frame
		err   bool
	}{
		{"one text", [][]byte{serverFrame(true, ws.OpText, []byte("hello"), false)}, []frame{{ws.OpText, "hello"}}, false},
		{"two in one read", [][]byte{serverFrame(true, ws.OpText, []byte("a"), false), serverFrame(true, ws.OpText, []byte("b"), false)}, []frame{{ws.OpText, "a"}, {ws.OpText, "b"}}, false},
		{"masked server frame", [][]byte{serverFrame(true, ws.OpText, []byte("secret"), true)}, []frame{{ws.OpText, "secret"}}, false},
		{"ping", [][]byte{serverFrame(true, ws.OpPing, []byte("p"), false)}, []frame{{ws.OpPing, "p"}}, false},
		{"16-bit length larger than buffer", [][]byte{serverFrame(true, ws.OpText, big, false)}, []frame{{ws.OpText, string(big)}}, false},
		{"64-bit length", [][]byte{serverFrame(true, ws.OpBinary, huge, false)}, []frame{{ws.OpBinary, string(huge)}}, false},
		{"fragmented with ping between", [][]byte{
			serverFrame(false, ws.OpText, []byte("he"), false),
			serverFrame(true, ws.OpPing, nil, false),
			serverFrame(false, ws.OpContinuation, big, false),
			serverFrame(true, ws.OpContinuation, []byte("lo"), false),
		}, []frame{{ws.OpPing, ""}, {ws.OpText, "he" + string(big) + "lo"}}, false},
		{"continuation without start", [][]byte{serverFrame(true, ws.OpContinuation, []byte("x"), false)}, nil, true},
		{"control too long", [][]byte{serverFrame(true, ws.OpPing, bytes.Repeat([]byte("x"), 126), false)}, nil, true},
		{"too big", [][]byte{{0x82, 127, 0, 0, 0, 0, 0x7f, 0, 0, 0}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Join(tt.input, nil)
			// A 1-byte-at-a-time reader under a small buffer checks
			// that headers and payloads split across reads assemble.
			r := frameReader{br: bufio.NewReaderSize(&oneByteReader{b: in}, 256)}
			for i, w := range tt.want {
				op, p, err := r.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if op != w.op || string(p) != w.payload {
					t.Fatalf("frame %d: got %v %q, want %v %q", i, op, trunc(p), w.op, trunc([]byte(w.payload)))
				}
			}
			_, _, err := r.next()
			if tt.err && (err == nil || err.Error() == "EOF") {
				t.Fatalf("want a protocol error, got %v", err)
			}
			if !tt.err && err == nil {
				t.Fatal("want EOF after the last frame")
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errTestEOF
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

var errTestEOF = bytes.ErrTooLarge // any sentinel; the reader only passes it on

func TestAppendFrameIsMaskedAndDecodes(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'z'}, n)
		f := appendFrame(nil, ws.OpText, payload)
		h, err := ws.ReadHeader(bytes.NewReader(f))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !h.Masked || !h.Fin || h.OpCode != ws.OpText || h.Length != int64(n) {
			t.Fatalf("n=%d: header %+v", n, h)
		}
		body := bytes.Clone(f[len(f)-n:])
		ws.Cipher(body, h.Mask, 0)
		if !bytes.Equal(body, payload) {
			t.Fatalf("n=%d: payload does not unmask", n)
		}
		if n > 125 && n <= 65535 && binary.BigEndian.Uint16(f[2:4]) != uint16(n) {
			t.Fatalf("n=%d: bad 16-bit length", n)
		}
	}
}

func BenchmarkParseData(b *testing.B) {
	msg := []byte(`{"type":"message","room":"r0","from":"c1","nick":"u1","data":` + string(appendData(nil, 1234567890123, 5, 64)) + `,"ts":1}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, ok := parseData(msg); !ok {
			b.Fatal("no data")
		}
	}
}
