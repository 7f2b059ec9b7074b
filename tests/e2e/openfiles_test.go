package e2e

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnectionsPastTheOpenFilesLimit: a gateway whose open-files limit
// is smaller than -max-connections refuses connections with 503 a little
// before it runs out of descriptors, and goes on serving. Without the cap
// accept(2) fails with EMFILE, which gnet treats as fatal: the whole node
// stopped (scripts/scale.sh saw it cascade through a cluster).
func TestConnectionsPastTheOpenFilesLimit(t *testing.T) {
	g := startGateway(t, withOpenFiles(300), "-max-connections", "100000")
	// 300 descriptors: the cap keeps half back (150), so 150 clients, and
	// a flood past the descriptors themselves.
	const flood = 320
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", g.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// A refused connection gets its 503 at once; a held one nothing until
	// its handshake timeout (10 s): read them all at once, 3 s each.
	var refused atomic.Int32
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil && strings.Contains(line, " 503 ") {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := int(refused.Load()); n < flood-150 || n > flood-140 {
		t.Errorf("%d of %d connections refused with 503, want about %d (held: at most 150)", n, flood, flood-150)
	}
	// The node is alive and serves a new client once some go.
	for _, c := range conns[:20] {
		c.Close()
	}
	eventually(t, 10*time.Second, "a chat client connects again", func() bool {
		resp, err := http.Get("http://" + g.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	c := dial(t, g)
	if r := c.request(map[string]any{"type": "join", "room": "r"}); r["type"] != "ack" {
		t.Fatalf("join after the flood: %v", r)
	}
}
