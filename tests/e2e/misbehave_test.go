package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestBadClientsClosedOthersUnaffected: each misbehaving client is closed
// with the RFC 6455 code for its fault while two well-behaved members of
// the same room keep chatting.
func TestBadClientsClosedOthersUnaffected(t *testing.T) {
	g := startGateway(t, "-max-message", "1024", "-presence=false")
	a, b := dial(t, g), dial(t, g)
	a.request(map[string]any{"type": "join", "room": "r"})
	b.request(map[string]any{"type": "join", "room": "r"})

	joinRaw := clientFrame(true, 1, []byte(`{"type":"join","room":"r"}`))
	tests := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"invalid utf-8", clientFrame(true, 1, []byte{'"', 0xff, 0xfe, '"'}), 1007},
		{"oversize", clientFrame(true, 1, []byte(`"`+strings.Repeat("x", 2000)+`"`)), 1009},
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, 1002},
		{"reserved bit", append([]byte{0xC1}, clientFrame(true, 1, []byte("x"))[1:]...), 1002},
		{"reserved opcode", clientFrame(true, 3, []byte("x")), 1002},
		{"fragmented ping", clientFrame(false, 9, nil), 1002},
		{"continuation first", clientFrame(true, 0, []byte("x")), 1002},
		{"long ping", clientFrame(true, 9, make([]byte, 126)), 1002},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, g)
			r.upgrade()
			if op, _ := r.readFrame(); op != 1 {
				t.Fatalf("want welcome text frame, got op %d", op)
			}
			r.write(joinRaw)
			r.readFrame() // join ack
			r.write(tt.frame)
			if code := r.readCloseCode(); code != tt.code {
				t.Fatalf("close code %d, want %d", code, tt.code)
			}
			// The others keep chatting.
			a.t, b.t = t, t
			a.request(map[string]any{"type": "send", "room": "r", "data": i})
			if m := b.readType("message"); m["data"] != float64(i) {
				t.Fatalf("b got %v", m)
			}
		})
	}
	a.t, b.t = t, t
	// Invalid UTF-8 split across fragments through gorilla (which does not
	// check what it sends).
	c := dial(t, g)
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{'"', 0xe2})
	w.Write([]byte{0x28, 0xa1, '"'})
	w.Close()
	if code := c.readClose(); code != 1007 {
		t.Fatalf("fragmented invalid utf-8: close %d", code)
	}
}

func TestFragmentedMessageWithInterleavedPing(t *testing.T) {
	g := startGateway(t)
	r := dialRaw(t, g)
	r.upgrade()
	r.readFrame()
	msg := `{"type":"ping","id":"frag"}`
	var b []byte
	b = append(b, clientFrame(false, 1, []byte(msg[:5]))...)
	b = append(b, clientFrame(true, 9, []byte("hb"))...)
	b = append(b, clientFrame(false, 0, []byte(msg[5:12]))...)
	b = append(b, clientFrame(true, 0, []byte(msg[12:]))...)
	// Byte by byte: every split point of the stream.
	for i := range b {
		r.write(b[i : i+1])
	}
	op, p := r.readFrame()
	if op != 10 || string(p) != "hb" {
		t.Fatalf("want pong hb, got op %d %q", op, p)
	}
	op, p = r.readFrame()
	if op != 1 || !strings.Contains(string(p), `"id":"frag"`) {
		t.Fatalf("want ack, got op %d %q", op, p)
	}
	// Client-initiated close is echoed.
	r.write(clientFrame(true, 8, []byte{0x03, 0xe8}))
	if code := r.readCloseCode(); code != 1000 {
		t.Fatalf("close echo %d", code)
	}
}

func TestIdleConnectionPingedThenClosed(t *testing.T) {
	g := startGateway(t, "-ping-interval", "300ms", "-ping-timeout", "300ms")
	r := dialRaw(t, g)
	r.upgrade()
	r.readFrame() // welcome
	start := time.Now()
	op, _ := r.readFrame()
	if op != 9 {
		t.Fatalf("want ping, got op %d", op)
	}
	// Do not answer: the server closes with 1001.
	if code := r.readCloseCode(); code != 1001 {
		t.Fatalf("close %d, want 1001", code)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("closed after %v", el)
	}
	// A client that answers pings stays connected past several intervals.
	r2 := dialRaw(t, g)
	r2.upgrade()
	r2.readFrame() // welcome
	for i := 0; i < 3; i++ {
		op, p := r2.readFrame()
		if op != 9 {
			t.Fatalf("want ping %d, got op %d", i, op)
		}
		r2.write(clientFrame(true, 10, p))
	}
	r2.write(clientFrame(true, 1, []byte(`{"type":"ping","id":1}`)))
	if op, p := r2.readFrame(); op != 1 || !strings.Contains(string(p), `"ack"`) {
		t.Fatalf("responsive client lost: op %d %q", op, p)
	}
}
