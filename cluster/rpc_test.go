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
