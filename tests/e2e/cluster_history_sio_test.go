package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sioRoomMsg reads sc's next "message" event, 42["message",{…},"<offset>"],
// and returns it as a roomMsg, checking that the offset argument (what
// socket.io-client keeps for recovery) is the message's own.
func sioRoomMsg(t *testing.T, sc *sioClient) roomMsg {
	t.Helper()
	for i := 0; i < 50; i++ {
		pkt := sc.nextText()
		if !strings.HasPrefix(pkt, `42["message",`) {
			continue // presence and the like
		}
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(pkt[2:]), &args); err != nil || len(args) != 3 {
			t.Fatalf("message event %q: want [name, object, offset]", pkt)
		}
		var m map[string]any
		var off string
		if json.Unmarshal(args[1], &m) != nil || json.Unmarshal(args[2], &off) != nil {
			t.Fatalf("message event %q", pkt)
		}
		rm := asRoomMsg(t, m)
		if off != strconv.FormatUint(rm.offset, 10) {
			t.Fatalf("message event %q: offset argument %q is not the message's offset %d", pkt, off, rm.offset)
		}
		return rm
	}
	t.Fatal("no message event")
	return roomMsg{}
}

// TestClusterHistorySocketIOResumeOnAnotherNode: socket.io's connection
// state recovery across nodes. A Socket.IO client on node 1 reads some of
// a room's messages; node 1 is killed while a native client on node 2
// keeps sending; the client sends its pid and last offset in a CONNECT to
// node 2 and gets the same sid and pid (socket.recovered), exactly the
// events it missed, then the live ones.
func TestClusterHistorySocketIOResumeOnAnotherNode(t *testing.T) {
	nats := startNATSServer(t, true)
	nodes := startHistoryNodes(t, nats, "s1", "s2")
	for _, g := range nodes {
		metricReaches(t, g, "chatgate_cluster_history_sequencing", 1)
	}
	b := dial(t, nodes[1])
	b.request(map[string]any{"type": "join", "room": "lobby"})
	// Node 1 must know b's membership (it comes over NATS) before the
	// Socket.IO client joins there, for the join's count to include it.
	api := apiClientFor(nodes[0], "")
	eventually(t, apiWait, "node 1 lists b in lobby", func() bool {
		ms, err := api.Members(apiCtx(t), "lobby")
		return err == nil && len(ms) == 1 && ms[0].Client == b.id
	})

	sc := sioDial(t, nodes[0], true)
	sc.send("40")
	var ack struct{ SID, PID string }
	if got := sc.nextText(); !strings.HasPrefix(got, "40") || json.Unmarshal([]byte(got[2:]), &ack) != nil || ack.SID == "" || ack.PID == "" {
		t.Fatalf("CONNECT answer %q, want sid and pid", got)
	}
	sc.send(`421["join","lobby"]`)
	if got := sc.nextText(); !strings.HasPrefix(got, `431[{"room":"lobby","count":2,"offset":`) {
		t.Fatalf("join ack %q", got)
	}
	presenceOf(b, "join", ack.SID)

	sendK(b, "lobby", 1, 3)
	var got []roomMsg
	for range 3 {
		got = append(got, sioRoomMsg(t, sc))
	}
	last := got[len(got)-1].offset

	nodes[0].kill() // with the Socket.IO client's connection
	sendK(b, "lobby", 4, 6)
	presenceOf(b, "leave", ack.SID)
	metricReaches(t, nodes[1], "chatgate_cluster_remote_kept_total", 1)
	eventually(t, 5*time.Second, "node 2 reads the stream up to message 6", func() bool {
		return scrape(t, nodes[1])["chatgate_cluster_history_offset"] >= float64(last+3)
	})

	sc2 := sioDial(t, nodes[1], true)
	sc2.send(`40{"pid":"` + ack.PID + `","offset":"` + strconv.FormatUint(last, 10) + `"}`)
	want := `40{"sid":"` + ack.SID + `","pid":"` + ack.PID + `"}`
	if got := sc2.nextText(); got != want {
		t.Fatalf("CONNECT with pid and offset on node 2: %q, want %q (recovered: same sid and pid)", got, want)
	}
	for range 3 {
		got = append(got, sioRoomMsg(t, sc2)) // the missed ones, first
	}
	presenceOf(b, "join", ack.SID) // back in the room, on node 2
	sendK(b, "lobby", 7, 8)
	for range 2 {
		got = append(got, sioRoomMsg(t, sc2))
	}
	for i, m := range got {
		if m.k != i+1 {
			t.Fatalf("message %d is k=%d: missing or duplicated (%v)", i, m.k, got)
		}
		if i > 0 && m.offset <= got[i-1].offset {
			t.Fatalf("offsets not increasing at k=%d: %v", m.k, got)
		}
	}
}
