package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/panjf2000/gnet/v2"
)

// bootedHub hands the engine to the test once it runs.
type bootedHub struct {
	*hub
	booted chan gnet.Engine
}

func (b *bootedHub) OnBoot(e gnet.Engine) gnet.Action {
	b.booted <- e
	return gnet.None
}

// TestRoomSend: over real TCP, two clients get their welcome, join a
// room (the second sees count 2), and a send from one reaches the other
// as a message with the sender's id and nick, and is acknowledged.
func TestRoomSend(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := &bootedHub{hub: &hub{clients: make(map[string]gnet.Conn), rooms: make(map[string]map[gnet.Conn]struct{})},
		booted: make(chan gnet.Engine, 1)}
	done := make(chan error, 1)
	go func() { done <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true)) }()
	var eng gnet.Engine
	select {
	case eng = <-h.booted:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("the engine did not boot in 5 s")
	}
	t.Cleanup(func() {
		_ = eng.Stop(context.Background())
		<-done
	})

	type reply struct {
		Type, Room, From, Nick string
		ID                     json.RawMessage // a request's id, or the welcome's string
		Count                  int
		Data                   json.RawMessage
	}
	dial := func() (net.Conn, func() reply) {
		t.Helper()
		var nc net.Conn
		var hbr *bufio.Reader
		var err error
		if nc, hbr, _, err = ws.Dial(context.Background(), "ws://"+addr+"/ws"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		// Bytes that came with the handshake response (the welcome) are
		// in hbr.
		var src io.Reader = nc
		if hbr != nil {
			src = io.MultiReader(hbr, nc)
		}
		br := bufio.NewReader(src)
		return nc, func() reply {
			t.Helper()
			b, err := wsutil.ReadServerText(struct {
				io.Reader
				io.Writer
			}{br, nc})
			if err != nil {
				t.Fatal(err)
			}
			var r reply
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			return r
		}
	}
	send := func(nc net.Conn, s string) {
		t.Helper()
		if err := wsutil.WriteClientText(nc, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	a, readA := dial()
	b, readB := dial()
	wa, wb := readA(), readB()
	if wa.Type != "welcome" || wb.Type != "welcome" || string(wa.ID) == string(wb.ID) {
		t.Fatalf("welcomes %+v %+v", wa, wb)
	}
	send(a, `{"type":"nick","id":1,"name":"ann"}`)
	if r := readA(); r.Type != "ack" {
		t.Fatalf("nick: %+v", r)
	}
	send(a, `{"type":"join","id":2,"room":"r"}`)
	if r := readA(); r.Type != "ack" || r.Count != 1 {
		t.Fatalf("join a: %+v", r)
	}
	send(b, `{"type":"join","id":2,"room":"r"}`)
	if r := readB(); r.Type != "ack" || r.Count != 2 {
		t.Fatalf("join b: %+v", r)
	}
	send(a, `{"type":"send","id":3,"room":"r","data":{"text":"hi"}}`)
	if r := readA(); r.Type != "ack" {
		t.Fatalf("send: %+v", r)
	}
	if r := readB(); r.Type != "message" || r.Room != "r" || r.From != strings.Trim(string(wa.ID), `"`) || r.Nick != "ann" || string(r.Data) != `{"text":"hi"}` {
		t.Fatalf("message: %+v", r)
	}
}
