package e2e

import (
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestClusterDrainResumesElsewhere: one step of a rolling restart. A
// client on node 1 has read some of a room's messages when node 1 drains:
// it gets close 1012 with the reconnect hint, messages go on meanwhile,
// and it resumes on node 2 with its id and everything it missed, nothing
// doubled; node 1 exits cleanly.
func TestClusterDrainResumesElsewhere(t *testing.T) {
	nats := startNATSServer(t, true)
	var nodes []*gateway
	for _, tag := range []string{"r1", "r2"} {
		nodes = append(nodes, startGateway(t, "-nats", nats, "-node", tag, "-cluster-key", chKey,
			"-drain-spread", "800ms", "-drain-timeout", "3s"))
	}
	for _, g := range nodes {
		metricReaches(t, g, "chatgate_cluster_history_sequencing", 1)
	}
	a, w := dialWelcome(t, nodes[0], "")
	token, _ := w["session"].(string)
	if token == "" {
		t.Fatalf("welcome without a session token: %v", w)
	}
	a.request(map[string]any{"type": "join", "room": "lobby"})
	b := dial(t, nodes[1])
	b.request(map[string]any{"type": "join", "room": "lobby"})
	presenceOf(a, "join", b.id)

	sendK(b, "lobby", 1, 3)
	var got []roomMsg
	for range 3 {
		got = append(got, asRoomMsg(t, a.readType("message")))
	}
	last := got[len(got)-1].offset

	if err := nodes[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, reason := a.readCloseReason()
	if ms, ok := reconnectHint(reason); code != 1012 || !ok || ms != 800 {
		t.Fatalf("close %d %q, want 1012 with reconnect=800", code, reason)
	}
	a.ws.Close()
	sendK(b, "lobby", 4, 5)
	// Node 2 keeps the session for resuming and has read the stream up to
	// message 5.
	metricReaches(t, nodes[1], "chatgate_cluster_remote_kept_total", 1)
	eventually(t, 5*time.Second, "node 2 reads the stream up to message 5", func() bool {
		return scrape(t, nodes[1])["chatgate_cluster_history_offset"] >= float64(last+2)
	})

	a2, w2 := dialWelcome(t, nodes[1], "resume="+url.QueryEscape(token)+"&offset="+strconv.FormatUint(last, 10))
	if w2["recovered"] != true || w2["id"] != a.id {
		t.Fatalf("resumed welcome %v, want recovered with id %s", w2, a.id)
	}
	rv := a2.readType("recovered")
	msgs, _ := rv["messages"].([]any)
	if rv["room"] != "lobby" || rv["recovered"] != true || len(msgs) != 2 {
		t.Fatalf("recovered event %v, want lobby with messages 4 and 5", rv)
	}
	for _, m := range msgs {
		got = append(got, asRoomMsg(t, m.(map[string]any)))
	}
	sendK(b, "lobby", 6, 6)
	got = append(got, asRoomMsg(t, a2.readType("message")))
	for i, m := range got {
		if m.k != i+1 || (i > 0 && m.offset <= got[i-1].offset) {
			t.Fatalf("message %d is k=%d: missing, doubled or out of order (%v)", i, m.k, got)
		}
	}
	select {
	case err := <-nodes[0].done:
		if err != nil {
			t.Fatalf("node 1 exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 1 did not exit")
	}
}
