package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A message to a user reaches exactly the nodes with connections of that
// user, with its event name; the remote user count follows opens and
// closes.
func TestUserRoutingAndCounts(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, ra := newNode(t, s.ClientURL(), "a")
	b, rb := newNode(t, s.ClientURL(), "b")
	c, rc := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)

	b.LocalOpened("b000001", "bob", "u-bob")
	b.LocalOpened("b000002", "bob2", "u-bob")
	c.LocalOpened("c000001", "cy", "u-cy")
	eventually(t, time.Second, "a counts bob's two connections", func() bool {
		return a.RemoteUserCount("u-bob") == 2 && a.RemoteUserCount("u-cy") == 1
	})
	if n := a.RemoteUserCount("u-nobody"); n != 0 {
		t.Fatalf("RemoteUserCount(nobody) = %d", n)
	}
	if n := a.PublishUser(&Message{To: []byte("u-bob"), Data: []byte(`"hi"`), Event: "note"}); n != 1 {
		t.Fatalf("PublishUser sent to %d nodes, want 1", n)
	}
	eventually(t, time.Second, "b gets the user message", func() bool { return len(rb.dms()) == 1 })
	if got := rb.dms(); got[0] != `user:u-bob note "hi"` {
		t.Fatalf("b got %q", got)
	}
	if len(ra.dms())+len(rc.dms()) != 0 {
		t.Fatal("user message reached a node without the user")
	}
	b.LocalClosed("b000001", false)
	b.LocalClosed("b000002", false)
	eventually(t, time.Second, "a forgets bob", func() bool { return a.RemoteUserCount("u-bob") == 0 })
}

// Call reaches the named node's Serve function and returns its answer;
// Nodes lists the live peers.
func TestCallAndNodes(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	c, _ := newNode(t, s.ClientURL(), "c")
	meshed(t, a, b, c)
	for _, n := range []*Cluster{b, c} {
		node := n.Node()
		if err := n.Serve(func(req []byte) []byte { return append([]byte(node+":"), req...) }); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Second, "a sees b and c", func() bool { return slices.Equal(a.Nodes(), []string{"b", "c"}) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, node := range []string{"b", "c"} {
		got, err := a.Call(ctx, node, []byte("ping"))
		if err != nil || string(got) != node+":ping" {
			t.Fatalf("Call(%s) = %q, %v", node, got, err)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := a.Call(short, "nobody", []byte("ping")); err == nil {
		t.Fatal("Call to a missing node answered")
	}
	if _, err := a.Call(ctx, "bad subject", nil); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Call with a bad tag: %v, want ErrNoNode", err)
	}
}

// ServeAsync: an answer given later, from another goroutine, reaches the
// caller, and the node serves other requests while it is held back.
func TestServeAsync(t *testing.T) {
	s := startServer(t, 0)
	defer stopServer(s)
	a, _ := newNode(t, s.ClientURL(), "a")
	b, _ := newNode(t, s.ClientURL(), "b")
	meshed(t, a, b)
	release, holding := make(chan struct{}), make(chan struct{})
	if err := b.ServeAsync(func(req []byte, respond func([]byte)) {
		if string(req) != "hold" {
			respond(append([]byte("now:"), req...))
			return
		}
		close(holding)
		go func() { <-release; respond([]byte("held")) }()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held := make(chan string, 1)
	go func() {
		got, err := a.Call(ctx, "b", []byte("hold"))
		if err != nil {
			held <- err.Error()
			return
		}
		held <- string(got)
	}()
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("b did not get the request to hold")
	}
	// The held request waits on a goroutine of its own; this one is
	// answered meanwhile.
	if got, err := a.Call(ctx, "b", []byte("x")); err != nil || string(got) != "now:x" {
		t.Fatalf("Call(x) while another is held = %q, %v", got, err)
	}
	select {
	case got := <-held:
		t.Fatalf("the held call ended before its answer: %q", got)
	default:
	}
	close(release)
	if got := <-held; got != "held" {
		t.Fatalf("held call = %q, want held", got)
	}
}

// CallPolling reaches the named node's ServePolling, on a subject apart
// from the API's, signed like the API's requests with a key; with NATS
// down it fails at once with ErrDisconnected instead of waiting for its
// deadline.
func TestCallPolling(t *testing.T) {
	for name, key := range map[string][]byte{"unsigned": nil, "signed": []byte("polling-key-polling-key-polling-key")} {
		t.Run(name, func(t *testing.T) {
			s := startServer(t, 0)
			defer stopServer(s)
			a, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "a", Key: key})
			b, _ := newNodeCfg(t, Config{URL: s.ClientURL(), Node: "b", Key: key})
			meshed(t, a, b)
			if err := b.ServePolling(func(req []byte, respond func([]byte)) {
				go respond(append([]byte("poll:"), req...))
			}); err != nil {
				t.Fatal(err)
			}
			// The API subject is not the polling one: b serves no API.
			short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := a.Call(short, "b", []byte("x")); err == nil {
				t.Fatal("an API call reached the polling handler")
			}
			ctx, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel2()
			if got, err := a.CallPolling(ctx, "b", []byte("GET")); err != nil || string(got) != "poll:GET" {
				t.Fatalf("CallPolling = %q, %v", got, err)
			}
			if _, err := a.CallPolling(ctx, "no.such", nil); !errors.Is(err, ErrNoNode) {
				t.Fatalf("CallPolling with a bad tag: %v, want ErrNoNode", err)
			}
			s.Shutdown()
			eventually(t, 2*time.Second, "a sees NATS down", func() bool { return !a.Connected() })
			start := time.Now()
			if _, err := a.CallPolling(ctx, "b", []byte("GET")); !errors.Is(err, ErrDisconnected) {
				t.Fatalf("CallPolling with NATS down: %v, want ErrDisconnected", err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Fatalf("CallPolling with NATS down took %v", d)
			}
		})
	}
}
