package netpoll

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/rooms"
)

// testServer runs a Server in-process on a free loopback port.
type testServer struct {
	srv  *Server
	hub  *chat.Hub
	addr string
	done chan error
}

func startTestServer(tb testing.TB, cfg Config) *testServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	l.Close()
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	hub := chat.NewHub(chat.Config{Codecs: Codecs()}, rooms.New(cfg.Loops))
	ts := &testServer{srv: New(cfg, hub), hub: hub, addr: cfg.Addr, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Run() }()
	select {
	case <-ts.srv.Ready():
	case err := <-ts.done:
		tb.Fatalf("server: %v", err)
	case <-time.After(5 * time.Second):
		tb.Fatal("server did not start")
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ts.srv.Shutdown(ctx)
		<-ts.done
	})
	return ts
}

const upgradeReq = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// maskedText builds a masked client text frame.
func maskedText(payload string) []byte {
	b := []byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^byte(i%4+1))
	}
	return b
}

// rawClient upgrades a TCP connection and returns it with a reader
// positioned after the 101 response.
func rawClient(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := nc.Write([]byte(upgradeReq)); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		tb.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc, br
}

// readServerFrame reads one unmasked server frame.
func readServerFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, nil, err
		}
		n = int(e[0])<<8 | int(e[1])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return h[0] & 0xf, p, err
}

func TestServerJoinAndFanout(t *testing.T) {
	ts := startTestServer(t, Config{})
	const n = 20
	var readers []*bufio.Reader
	for i := 0; i < n; i++ {
		nc, br := rawClient(t, ts.addr)
		defer nc.Close()
		readServerFrame(br) // welcome
		nc.Write(maskedText(`{"type":"join","room":"r"}`))
		if _, p, err := readServerFrame(br); err != nil || len(p) == 0 {
			t.Fatalf("join ack: %v", err)
		}
		readers = append(readers, br)
	}
	if got := ts.hub.Table().Count([]byte("r")); got != n {
		t.Fatalf("room has %d members", got)
	}
	if s := ts.srv.Stats(); s.Sessions != n || s.Rooms != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInsertConnectionClose(t *testing.T) {
	b := []byte("prefixHTTP/1.1 400 Bad Request\r\nX: y\r\n\r\nbody")
	got := string(insertConnectionClose(b, len("prefix")))
	want := "prefixHTTP/1.1 400 Bad Request\r\nConnection: close\r\nX: y\r\n\r\nbody"
	if got != want {
		t.Fatalf("got %q", got)
	}
}

func TestParseHead(t *testing.T) {
	tests := []struct {
		name, head string
		path, q    string
		err        bool
	}{
		{"simple", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "/ws", "", false},
		{"query", "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\r\n", "/socket.io/", "EIO=4&transport=websocket", false},
		{"absolute form", "GET http://h:1/healthz?x HTTP/1.1\r\n\r\n", "/healthz", "x", false},
		{"no path", "GET * HTTP/1.1\r\n\r\n", "", "", true},
		{"lowercase method", "get / HTTP/1.1\r\n\r\n", "", "", true},
		{"bad header", "GET / HTTP/1.1\r\nnocolon\r\n\r\n", "", "", true},
		{"http2", "GET / HTTP/2.0\r\n\r\n", "", "", true},
		{"garbage", "\x00\x01\r\n\r\n", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseHead([]byte(tt.head))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (string(r.Path) != tt.path || string(r.Query) != tt.q) {
				t.Fatalf("path %q query %q", r.Path, r.Query)
			}
		})
	}
	r, _ := parseHead([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"))
	if string(r.Header("x-forwarded-for")) != "1.2.3.4" || r.Header("Nope") != nil {
		t.Fatalf("Header lookup failed")
	}
}

// FuzzParseHead: the request-head parser never panics, and whatever it
// accepts has a path starting with '/' that lies inside the head.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
	f.Add([]byte("GET http://a/b?c HTTP/1.0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n < 0 {
			return
		}
		r, err := parseHead(b[:n])
		if err != nil {
			return
		}
		if len(r.Path) == 0 || r.Path[0] != '/' {
			t.Fatalf("accepted path %q", r.Path)
		}
		_ = r.Header("Host")
	})
}

var _ = fmt.Sprint
