package netpoll

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// slowDial connects with a tiny receive buffer and MSS, set before the
// connect: Linux sizes a new connection's send buffer from its MSS, so
// the server's socket takes only a small part of a large response at once.
func slowDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			if serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bigBody is a static response far larger than the socket takes at once.
var bigBody = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB

func serveBig(s *Server) {
	s.Handle("/big", func(*Request) Response {
		return Response{Status: 200, ContentType: "application/octet-stream", Body: bigBody}
	})
}

// A final response (Connection: close) larger than the socket takes at
// once reaches a slow reader whole: the connection is closed only once it
// is out, not when gnet's close has written what the socket took.
func TestLargeFinalResponseArrivesWhole(t *testing.T) {
	ts := startTestServerHub(t, Config{}, chat.Config{}, serveBig)
	c := slowDial(t, ts.addr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Fatal("the response does not say Connection: close")
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, bigBody) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(bigBody), err)
	}
	// Then the server closes the connection.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the response: %d bytes, %v; want EOF", n, err)
	}
}

// A client that never reads such a response does not keep its connection
// (and the unsent bytes) beyond the handshake timeout.
func TestLargeFinalResponseUnreadIsDropped(t *testing.T) {
	ts := startTestServerHub(t, Config{HandshakeTimeout: 300 * time.Millisecond}, chat.Config{}, serveBig)
	c := slowDial(t, ts.addr)
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(10 * time.Second)
	seen := false
	for {
		n := ts.srv.Stats().Connections
		if n > 0 {
			seen = true
		}
		if seen && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections 10 s after the request (seen open: %v), want the unread one closed", n, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
