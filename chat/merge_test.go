package chat_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
	"github.com/chatgate/chatgate/metrics"
)

// stormFixture: n members of lobby, all dropped after reading "seen",
// and two messages sent while they were away. It returns their session
// tokens, the offset each had read, and the publisher.
func stormFixture(t *testing.T, n int) (*fixture, *metrics.Metrics, []string, uint64, *client) {
	t.Helper()
	m := metrics.New(metrics.Options{})
	log := history.NewMemory(history.Config{Size: 100, Epoch: "test-epoch", Now: func() time.Time { return testNow }})
	f := newHub(t, chat.Config{History: log, RecoveryWindow: time.Minute,
		RecoveryKey: []byte("0123456789abcdef0123456789abcdef"), Metrics: m})
	pub := f.open(0)
	f.must(pub, reqJoin("lobby"))
	members := make([]*client, n)
	for i := range members {
		members[i] = f.open(i % testLoops)
		f.must(members[i], reqJoin("lobby"))
	}
	f.must(pub, reqSendRoom(t, "lobby", `"seen"`))
	seen := log.Position([]byte("lobby")).Offset
	toks := make([]string, n)
	for i, c := range members {
		toks[i] = welcomeToken(t, f, c)
		drop(f, c, "tcp")
	}
	f.must(pub, reqSendRoom(t, "lobby", `"x1"`))
	f.must(pub, reqSendRoom(t, "lobby", `"x2"`))
	f.tr.reset()
	return f, m, toks, seen, pub
}

// missedData returns the data of the messages in s's recovered event.
func missedData(t *testing.T, f *fixture, s *chat.Session, p *fakePeer) []string {
	t.Helper()
	for _, d := range f.tr.to(&client{s: s, peer: p}) {
		if d.Type != "recovered" {
			continue
		}
		var ev struct {
			Recovered bool `json:"recovered"`
			Messages  []struct {
				Data string `json:"data"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(d.Text), &ev); err != nil || !ev.Recovered {
			t.Fatalf("recovered event %s: %v", d.Text, err)
		}
		var out []string
		for _, m := range ev.Messages {
			out = append(out, m.Data)
		}
		return out
	}
	t.Fatalf("no recovered event for %s", s.ID())
	return nil
}

func recoveryReads(t *testing.T, m *metrics.Metrics) (read, merged float64) {
	return metricValue(t, m, "chatgate_recovery_reads_total", "merged", "false"),
		metricValue(t, m, "chatgate_recovery_reads_total", "merged", "true")
}

// TestResumeStormMergesReads: 50 members of one room resume at once with
// the same offset: the log is read once for the room, the 49 others are
// served from that read, and every one gets exactly what it missed.
func TestResumeStormMergesReads(t *testing.T) {
	const n = 50
	f, m, toks, seen, _ := stormFixture(t, n)
	var wg sync.WaitGroup
	sessions := make([]*chat.Session, n)
	peers := make([]*fakePeer, n)
	for i := range n {
		peers[i] = &fakePeer{}
		wg.Go(func() {
			s, replay := f.hub.Resume(peers[i], i%testLoops, kindNative, nil,
				chat.ResumeRequest{Token: toks[i], Offset: seen, HasOffset: true})
			for _, pl := range replay {
				f.tr.Push(s, pl)
			}
			sessions[i] = s
		})
	}
	wg.Wait()
	for i, s := range sessions {
		if s == nil {
			t.Fatalf("member %d not resumed", i)
		}
		if got := missedData(t, f, s, peers[i]); len(got) != 2 || got[0] != "x1" || got[1] != "x2" {
			t.Fatalf("member %d recovered %v, want [x1 x2]", i, got)
		}
	}
	if read, merged := recoveryReads(t, m); read != 1 || merged != n-1 {
		t.Fatalf("recovery reads: %v from the log, %v merged; want 1 and %d", read, merged, n-1)
	}
}

// TestResumeMergeEarlierOffsetAndAppend: a resume from further back than
// the room's read reads again; an append to another room leaves the read
// in use (also for an offset past it, from the other room); an append to
// the room ends it, so the next resume reads again and gets the message.
func TestResumeMergeEarlierOffsetAndAppend(t *testing.T) {
	f, m, toks, seen, pub := stormFixture(t, 5)
	f.must(pub, reqJoin("other"))
	do := func(i int, off uint64) []string {
		p := &fakePeer{}
		s := resume(f, p, 0, kindNative, nil, chat.ResumeRequest{Token: toks[i], Offset: off, HasOffset: true})
		if s == nil {
			t.Fatalf("member %d not resumed", i)
		}
		return missedData(t, f, s, p)
	}
	wantReads := func(read, merged float64) {
		t.Helper()
		if r, mg := recoveryReads(t, m); r != read || mg != merged {
			t.Fatalf("recovery reads: %v from the log, %v merged; want %v and %v", r, mg, read, merged)
		}
	}
	if got := do(0, seen); len(got) != 2 {
		t.Fatalf("first resume got %v", got)
	}
	if got := do(1, seen-1); len(got) != 3 || got[0] != "seen" {
		t.Fatalf("resume from one further back got %v, want [seen x1 x2]", got)
	}
	if got := do(2, seen); len(got) != 2 || got[0] != "x1" {
		t.Fatalf("resume served from the earlier read got %v, want [x1 x2]", got)
	}
	wantReads(2, 1)
	f.must(pub, reqSendRoom(t, "other", `"elsewhere"`))
	_, pos, _ := f.hub.History([]byte("other"), chat.Position{}, 1)
	if pos.Offset <= seen+2 {
		t.Fatalf("the log's last offset %d, want past lobby's", pos.Offset)
	}
	if got := do(3, pos.Offset); len(got) != 0 {
		t.Fatalf("resume from an offset of another room got %v, want nothing", got)
	}
	wantReads(2, 2)
	f.must(pub, reqSendRoom(t, "lobby", `"x3"`))
	if got := do(4, seen); len(got) != 3 || got[2] != "x3" {
		t.Fatalf("resume after an append got %v, want [x1 x2 x3]", got)
	}
	wantReads(3, 2)
}
