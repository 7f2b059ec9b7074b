package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Connection state recovery over the native protocol (docs/history.md,
// "Recovery, native protocol"): a client whose connection drops reconnects to
// /ws?resume=<session token>&offset=<last offset received> and gets back
// its id, nickname and rooms, and per room the messages it missed, in a
// "recovered" event, before anything live. The record that makes this
// possible exists only once the gateway has noticed the drop, which the
// tests observe as the presence "leave" the other members get. The
// helpers shared with the history tests are in history_test.go.

// rvQuery is the query that resumes the session of token after offset.
func rvQuery(token string, offset uint64) string {
	return fmt.Sprintf("resume=%s&offset=%d", url.QueryEscape(token), offset)
}

// rvDrop ends c's TCP connection without a close frame, as a lost network
// does.
func rvDrop(c *client) {
	c.t.Helper()
	if err := c.ws.NetConn().Close(); err != nil {
		c.t.Fatalf("close: %v", err)
	}
}

// rvCloseNormal closes c with code 1000 and waits for the server's close
// frame.
func rvCloseNormal(c *client) {
	c.t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		c.t.Fatalf("write close: %v", err)
	}
	if code := c.readClose(); code != websocket.CloseNormalClosure {
		c.t.Fatalf("server closed with %d, want 1000 back", code)
	}
	c.ws.Close()
}

// rvPresence reads c's frames until it has seen the presence event of id
// in each of rooms, and returns them by room. Only presence events may
// come first.
func rvPresence(c *client, event, id string, rooms ...string) map[string]hsFrame {
	c.t.Helper()
	want := map[string]bool{}
	for _, r := range rooms {
		want[r] = true
	}
	got := map[string]hsFrame{}
	for len(got) < len(want) {
		f := hsRead(c)
		if f.Type != "presence" {
			c.t.Fatalf("waiting for %s %s in %v: got %s", id, event, rooms, f.Raw)
		}
		if f.Event == event && f.idString() == id && want[f.Room] {
			got[f.Room] = f
		}
	}
	return got
}

// rvSession is a native client whose session is meant to be resumed.
type rvSession struct {
	c     *client
	token string
	join  hsFrame // the ack of its first room
}

// rvJoined opens a client that joins rooms and has a session token.
func rvJoined(t *testing.T, g *gateway, hdr http.Header, rooms ...string) *rvSession {
	t.Helper()
	c, w := hsOpen(t, g, "", hdr)
	if w.Session == "" || !strings.HasPrefix(w.Session, c.id+".") {
		t.Fatalf("welcome %s: want a session token naming the id", w.Raw)
	}
	s := &rvSession{c: c, token: w.Session}
	for i, r := range rooms {
		j := hsJoin(c, r)
		if i == 0 {
			s.join = j
		}
	}
	return s
}

// drop drops s's connection and waits until watcher, a member of room,
// sees it leave: the gateway has then kept the session for resuming.
func (s *rvSession) drop(watcher *client, room string) {
	s.c.t.Helper()
	rvDrop(s.c)
	rvPresence(watcher, "leave", s.c.id, room)
}

// rvExpectResumed checks a welcome of a resume that succeeded: the old
// id, recovered:true, a session token.
func rvExpectResumed(t *testing.T, w hsFrame, id string) {
	t.Helper()
	if w.Recovered == nil || !*w.Recovered || w.idString() != id || w.Session == "" {
		t.Fatalf("resume welcome %s: want recovered:true with id %s and a session token", w.Raw, id)
	}
}

// rvExpectNew checks a welcome of a resume that failed: recovered:false
// and an id other than old; c then gets no recovered event.
func rvExpectNew(t *testing.T, c *client, w hsFrame, old string) {
	t.Helper()
	if w.Recovered == nil || *w.Recovered || w.idString() == old {
		t.Fatalf("resume welcome %s: want recovered:false and an id other than %s", w.Raw, old)
	}
	hsPing(c) // fails on a recovered event before the ack
}

// rvRecovered reads one recovered event per room (in any order) and
// returns them by room.
func rvRecovered(c *client, rooms ...string) map[string]hsFrame {
	c.t.Helper()
	got := map[string]hsFrame{}
	for range rooms {
		f := hsRead(c)
		if f.Type != "recovered" {
			c.t.Fatalf("want a recovered event for each of %v, got %s", rooms, f.Raw)
		}
		if _, dup := got[f.Room]; dup {
			c.t.Fatalf("two recovered events for %s: %s", f.Room, f.Raw)
		}
		got[f.Room] = f
	}
	for _, r := range rooms {
		if _, ok := got[r]; !ok {
			c.t.Fatalf("no recovered event for %s (got %v)", r, got)
		}
	}
	return got
}

// rvCheckMissed fails unless rv recovered exactly the messages of room
// from sender with data want, in order, with increasing offsets above
// after.
func rvCheckMissed(t *testing.T, rv hsFrame, room, sender string, after uint64, want []string) {
	t.Helper()
	if rv.Recovered == nil || !*rv.Recovered || len(rv.Messages) != len(want) {
		t.Fatalf("recovered event %s: want recovered:true with %d messages", rv.Raw, len(want))
	}
	prev := after
	for i, m := range rv.Messages {
		if m.Type != "message" || m.Room != room || m.From != sender || string(m.Data) != want[i] || m.off(t) <= prev {
			t.Fatalf("recovered event %s: message %d is %s, want data %s from %s in %s with an offset above %d", rv.Raw, i, m.Raw, want[i], sender, room, prev)
		}
		prev = m.off(t)
	}
}

// TestRecoverNativeDrop: a client whose TCP connection drops resumes with
// its session token and the offset of the last message it got: the same
// id and nick, its rooms back (the others see it join again), each room's
// missed messages in a recovered event, in order and byte for byte, and
// then live messages, none twice.
func TestRecoverNativeDrop(t *testing.T) {
	g := startGateway(t)
	a := rvJoined(t, g, nil)
	hsAck(a.c, `{"type":"nick","name":"alice"`)
	lobby, ops := hsJoin(a.c, "lobby"), hsJoin(a.c, "ops")
	b := hsDial(t, g)
	hsJoin(b, "lobby")
	hsJoin(b, "ops")
	seen := hsSendAndReceive(t, b, a.c, "lobby", "before", 1)[0].off(t)

	rvDrop(a.c)
	rvPresence(b, "leave", a.c.id, "lobby", "ops")
	missedLobby := []string{`{"k":"lobby-1"}`, `{"k":"lobby-2"}`, `{"k":"lobby-3"}`}
	for _, d := range missedLobby {
		hsSend(b, "lobby", d)
	}
	hsSend(b, "ops", `{"k":"ops-1"}`)

	r, w := hsOpen(t, g, rvQuery(a.token, seen), nil)
	rvExpectResumed(t, w, a.c.id)
	if w.Nick != "alice" {
		t.Fatalf("resume welcome %s: want nick alice", w.Raw)
	}
	rv := rvRecovered(r, "lobby", "ops")
	rvCheckMissed(t, rv["lobby"], "lobby", b.id, seen, missedLobby)
	rvCheckMissed(t, rv["ops"], "ops", b.id, rv["lobby"].Messages[2].off(t), []string{`{"k":"ops-1"}`})
	last := rv["ops"].Messages[0].off(t)
	for room, join := range map[string]hsFrame{"lobby": lobby, "ops": ops} {
		if rv[room].off(t) != last || rv[room].epoch(t) != join.epoch(t) {
			t.Fatalf("recovered event %s: want the position %d with the room's epoch %s", rv[room].Raw, last, join.epoch(t))
		}
	}

	// The others see the same id join again, with its nick.
	for room, p := range rvPresence(b, "join", a.c.id, "lobby", "ops") {
		if p.Nick != "alice" {
			t.Fatalf("presence join in %s: %s, want nick alice", room, p.Raw)
		}
	}
	// Live messages come after the recovered events, each once: the one
	// after the live message is a marker sent behind it.
	hsSend(b, "lobby", `{"k":"live"}`)
	hsSend(b, "ops", `{"k":"marker"}`)
	if m := hsNextMessage(r); m.Room != "lobby" || string(m.Data) != `{"k":"live"}` || m.off(t) <= last {
		t.Fatalf("first live message %s, want {\"k\":\"live\"} in lobby after offset %d", m.Raw, last)
	}
	if m := hsNextMessage(r); m.Room != "ops" || string(m.Data) != `{"k":"marker"}` {
		t.Fatalf("after the live message: %s, want the marker", m.Raw)
	}
	if n := memberCount(b, "ops"); n != 2 {
		t.Fatalf("ops has %d members after the resume, want 2", n)
	}
}

// TestRecoverWithoutOffset: a client that resumes without an offset gets
// the messages published after the gateway noticed the drop, and not
// those it had received before it.
func TestRecoverWithoutOffset(t *testing.T) {
	g := startGateway(t)
	b := hsDial(t, g)
	hsJoin(b, "lobby")
	a := rvJoined(t, g, nil, "lobby")
	rvPresence(b, "join", a.c.id, "lobby")
	hsSendAndReceive(t, b, a.c, "lobby", "before", 2)
	a.drop(b, "lobby")
	missed := []string{`{"k":"after-1"}`, `{"k":"after-2"}`}
	for _, d := range missed {
		hsSend(b, "lobby", d)
	}
	r, w := hsOpen(t, g, "resume="+url.QueryEscape(a.token), nil)
	rvExpectResumed(t, w, a.c.id)
	rvCheckMissed(t, rvRecovered(r, "lobby")["lobby"], "lobby", b.id, a.join.off(t), missed)
}

// TestRecoverTokenRules: a session is resumed only with a genuine token
// (forged ones fail and do not use up the record), once per drop, not
// while the session is open, not after a close the client asked for
// (1000), not after the recovery window, not by another user, and not at
// all with recovery off. A failed resume is a new session: recovered:false,
// a new id, no recovered events. Each case has its own gateway.
func TestRecoverTokenRules(t *testing.T) {
	// watched starts a gateway with args, a watcher in room and a client
	// in room whose join the watcher has seen.
	watched := func(t *testing.T, room string, hdr http.Header, args ...string) (*gateway, *client, *rvSession) {
		t.Helper()
		g := startGateway(t, args...)
		w := hsDial(t, g)
		hsJoin(w, room)
		a := rvJoined(t, g, hdr, room)
		rvPresence(w, "join", a.c.id, room)
		return g, w, a
	}

	t.Run("forged token", func(t *testing.T) {
		g, w, a := watched(t, "forged", nil)
		a.drop(w, "forged")
		id, mac, _ := strings.Cut(a.token, ".")
		flip := []byte(mac)
		if flip[0] == 'A' {
			flip[0] = 'B'
		} else {
			flip[0] = 'A'
		}
		for _, forged := range []string{id + "." + string(flip), id, id + ".", "." + mac, a.token + "A", "x" + a.token} {
			c, cw := hsOpen(t, g, rvQuery(forged, a.join.off(t)), nil)
			rvExpectNew(t, c, cw, a.c.id)
		}
		// The genuine token still works: forged ones took nothing.
		r, rw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "forged")
	})

	t.Run("session open", func(t *testing.T) {
		g, w, a := watched(t, "open", nil)
		// The token of a session that never dropped resumes nothing.
		c, cw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
		// Nor does it once the session was resumed and is open again.
		a.drop(w, "open")
		r, rw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "open")
		rvPresence(w, "join", a.c.id, "open")
		c, cw = hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
		// The open session kept its id and room.
		hsSend(w, "open", `"still here"`)
		if m := hsNextMessage(r); string(m.Data) != `"still here"` {
			t.Fatalf("resumed session got %s, want the message", m.Raw)
		}
		if n := memberCount(w, "open"); n != 2 {
			t.Fatalf("room has %d members, want the watcher and the resumed session", n)
		}
	})

	t.Run("once per drop", func(t *testing.T) {
		g, w, a := watched(t, "once", nil)
		a.drop(w, "once")
		r, rw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "once")
		rvPresence(w, "join", a.c.id, "once")
		// The resumed session ends with a close the client asked for,
		// which keeps nothing: the first drop's record was used up.
		rvCloseNormal(r)
		rvPresence(w, "leave", a.c.id, "once")
		c, cw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
	})

	t.Run("normal close", func(t *testing.T) {
		g, w, a := watched(t, "normal", nil)
		rvCloseNormal(a.c)
		rvPresence(w, "leave", a.c.id, "normal")
		c, cw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
	})

	t.Run("after the window", func(t *testing.T) {
		const window = 3 * time.Second // room for a slow -race run between the drop and the resume
		g, w, a := watched(t, "window", nil, "-recovery-window", window.String())
		// Within the window the session resumes...
		a.drop(w, "window")
		r, rw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "window")
		rvPresence(w, "join", a.c.id, "window")
		// ...and once the window has passed since the drop, it does not.
		// The record's deadline is the drop plus the window, and the drop
		// came before the leave event: so the wait below, the one timed
		// wait of these tests, is for the behaviour under test (time),
		// not for synchronisation.
		rvDrop(r)
		rvPresence(w, "leave", a.c.id, "window")
		expired := time.Now().Add(window + 50*time.Millisecond)
		<-time.After(time.Until(expired))
		c, cw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
	})

	t.Run("another user", func(t *testing.T) {
		x := hdBearer(hdHS256(t, hdClaims("user-x")))
		y := hdBearer(hdHS256(t, hdClaims("user-y")))
		g, w, a := watched(t, "users", x, "-jwt-secret", hdSecret)
		// The owner resumes...
		a.drop(w, "users")
		r, rw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), x)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "users")
		rvPresence(w, "join", a.c.id, "users")
		// ...another user with the same token does not.
		rvDrop(r)
		rvPresence(w, "leave", a.c.id, "users")
		c, cw := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), y)
		rvExpectNew(t, c, cw, a.c.id)
		if !strings.Contains(string(cw.Raw), `"user":"user-y"`) {
			t.Fatalf("welcome %s: want user-y's own new session", cw.Raw)
		}
		// Nor does an anonymous client.
		c, cw = hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
		rvExpectNew(t, c, cw, a.c.id)
		// A stolen token does not use up the record: the owner still
		// resumes.
		r, rw = hsOpen(t, g, rvQuery(a.token, a.join.off(t)), x)
		rvExpectResumed(t, rw, a.c.id)
		rvRecovered(r, "users")
	})

	t.Run("recovery off", func(t *testing.T) {
		g := startGateway(t, "-recovery-window", "0")
		c, w := hsOpen(t, g, "", nil)
		if w.Session != "" || w.Recovered != nil {
			t.Fatalf("welcome %s with recovery off: want no session token", w.Raw)
		}
		hsPing(c)
		// A resume is not even answered with "recovered".
		r, rw := hsOpen(t, g, rvQuery(c.id+".AAAAAAAAAAAAAAAAAAAAAAAA", 0), nil)
		if rw.Recovered != nil || rw.Session != "" || rw.idString() == c.id {
			t.Fatalf("resume with recovery off: welcome %s, want a plain new session", rw.Raw)
		}
		hsPing(r)
	})
}

// TestRecoverGapTooOld: when a room's history no longer holds what a
// resumed client missed (-history-size 2, five messages sent), the
// session is still resumed, but the room's recovered event says
// recovered:false, carries no messages and tells where the room stands;
// live messages then flow as usual.
func TestRecoverGapTooOld(t *testing.T) {
	g := startGateway(t, "-history-size", "2")
	b := hsDial(t, g)
	hsJoin(b, "lobby")
	a := rvJoined(t, g, nil, "lobby")
	rvPresence(b, "join", a.c.id, "lobby")
	a.drop(b, "lobby")
	for i := 1; i <= 5; i++ {
		hsSend(b, "lobby", fmt.Sprintf(`{"k":"gap-%d"}`, i))
	}
	kept := hsHistory(b, "lobby", 0, "", 0)
	if len(kept.Messages) != 2 || string(kept.Messages[1].Data) != `{"k":"gap-5"}` {
		t.Fatalf("history %s: want the last 2 messages", kept.Raw)
	}
	last := kept.Messages[1].off(t)

	r, w := hsOpen(t, g, rvQuery(a.token, a.join.off(t)), nil)
	rvExpectResumed(t, w, a.c.id)
	rv := rvRecovered(r, "lobby")["lobby"]
	if rv.Recovered == nil || *rv.Recovered || len(rv.Messages) != 0 || rv.off(t) != last || rv.epoch(t) != a.join.epoch(t) {
		t.Fatalf("recovered event %s: want recovered:false, no messages, offset %d, epoch %s", rv.Raw, last, a.join.epoch(t))
	}
	rvPresence(b, "join", a.c.id, "lobby")
	hsSend(b, "lobby", `{"k":"live"}`)
	if m := hsNextMessage(r); string(m.Data) != `{"k":"live"}` || m.off(t) <= last {
		t.Fatalf("live message %s, want {\"k\":\"live\"} after offset %d", m.Raw, last)
	}
}

// TestRecoverAfterRestart: the history and the dropped sessions of a
// gateway live in its memory, so after a restart (here a crash: SIGKILL,
// and a new process on the same address) a session token resumes nothing
// and an old position is unrecoverable, because the log has a new epoch.
// Resuming on another node of a cluster is a separate feature (a shared
// -cluster-key and records held where the session was), not tested here.
func TestRecoverAfterRestart(t *testing.T) {
	g := startGateway(t)
	b := hsDial(t, g)
	hsJoin(b, "lobby")
	a := rvJoined(t, g, nil, "lobby")
	rvPresence(b, "join", a.c.id, "lobby")
	seen := hsSendAndReceive(t, b, a.c, "lobby", "old", 2)[1].off(t)
	epoch := a.join.epoch(t)

	g.kill()
	g2 := launchNode(t, g.addr, false)
	c, w := hsOpen(t, g2, rvQuery(a.token, seen), nil)
	if w.Recovered == nil || *w.Recovered {
		t.Fatalf("resume after a restart: welcome %s, want recovered:false", w.Raw)
	}
	hsPing(c) // no recovered event before the ack
	j := hsJoin(c, "lobby")
	if j.epoch(t) == epoch {
		t.Fatalf("lobby's epoch %s survived the restart", epoch)
	}
	hsError(c, hsHistoryBody("lobby", seen, epoch, 0), "unrecoverable")
	hsError(c, hsHistoryBody("lobby", 0, epoch, 0), "unrecoverable")
}

// stormClient is one client of TestResumeStorm, used from worker
// goroutines: its helpers return errors instead of failing the test.
type stormClient struct {
	ws    *websocket.Conn
	id    string
	token string
	src   string
	got   []hsFrame // messages since the drop: recovered, then live
}

// stormDial opens /ws?query from the loopback address src and returns the
// connection and its welcome.
func stormDial(g *gateway, src, query string) (*websocket.Conn, hsFrame, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return nd.DialContext(ctx, "tcp4", addr)
		},
	}
	ws, resp, err := d.Dial("ws://"+g.addr+"/ws?"+query, nil)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, hsFrame{}, err
	}
	w, err := stormRead(ws)
	if err == nil && w.Type != "welcome" {
		err = fmt.Errorf("first message %s, want a welcome", w.Raw)
	}
	if err != nil {
		ws.Close()
	}
	return ws, w, err
}

// stormRead reads one frame within 10 s.
func stormRead(ws *websocket.Conn) (hsFrame, error) {
	var f hsFrame
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return f, err
	}
	err = json.Unmarshal(b, &f)
	return f, err
}

// stormParallel runs f(i) for i in [0, n) on workers goroutines and
// returns the first error.
func stormParallel(n, workers int, f func(i int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others early
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// TestResumeStorm: 2,000 clients of one room drop at once and all resume
// concurrently while another member sends 10 messages, spread over the
// resumes: every client is recovered, and sees each of the 10 messages
// exactly once, in offset order, in its recovered event or live; the
// gateway's memory stays bounded.
func TestResumeStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections twice: not in -short")
	}
	const (
		n        = 2000
		messages = 10
		workers  = 64
	)
	start := time.Now()
	g := startGateway(t, "-presence=false")
	pid := g.cmd.Process.Pid
	base, err := scRSS(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	rss := flWatchRSS(t, pid)

	sender := hsDial(t, g)
	hsJoin(sender, "storm")
	cs := make([]*stormClient, n)
	t.Cleanup(func() {
		for _, c := range cs {
			if c != nil && c.ws != nil {
				c.ws.Close()
			}
		}
	})
	// Sources spread over 127.0.1.1–127.0.1.250, so that 4,000 connections
	// do not crowd one address's ephemeral ports.
	err = stormParallel(n, workers, func(i int) error {
		c := &stormClient{src: fmt.Sprintf("127.0.1.%d", 1+i%250)}
		ws, w, err := stormDial(g, c.src, "")
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		c.ws, c.id, c.token = ws, w.idString(), w.Session
		cs[i] = c
		if c.token == "" {
			return fmt.Errorf("client %d: welcome %s without a session token", i, w.Raw)
		}
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"storm","id":1}`)); err != nil {
			return err
		}
		if f, err := stormRead(ws); err != nil || f.Type != "ack" {
			return fmt.Errorf("client %d: join: %s %v", i, f.Raw, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	connected := time.Since(start)

	// One message before the drop: its offset is where every client has
	// read to.
	hsSend(sender, "storm", `"before"`)
	var seen uint64
	var seenMu sync.Mutex
	err = stormParallel(n, workers, func(i int) error {
		f, err := stormRead(cs[i].ws)
		if err != nil || f.Type != "message" || string(f.Data) != `"before"` || f.Offset == nil {
			return fmt.Errorf("client %d: %s %v, want the message before the drop", i, f.Raw, err)
		}
		seenMu.Lock()
		defer seenMu.Unlock()
		if seen != 0 && *f.Offset != seen {
			return fmt.Errorf("client %d: offset %d, others got %d", i, *f.Offset, seen)
		}
		seen = *f.Offset
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// All drop at once; the gateway has kept them all once the counter
	// of kept sessions says so.
	const kept = `chatgate_recoveries_total{outcome="kept"}`
	for _, c := range cs {
		c.ws.NetConn().Close()
	}
	waitFor(t, 10*time.Second, "2,000 sessions kept", func() bool { return scrape(t, g)[kept] >= n })
	if k := scrape(t, g)[kept]; k != n {
		t.Fatalf("%s = %v, want %d", kept, k, n)
	}

	// All resume at once. The sender sends message k once (k+1)/11 of the
	// resumes are done, so that some clients get each message in their
	// recovered event and the others live.
	var resumed, inRecovery atomic.Int64
	gates := make([]chan struct{}, messages)
	for k := range gates {
		gates[k] = make(chan struct{})
	}
	gate := func(done int64) {
		for k := range gates {
			if done == int64((k+1)*n/(messages+1)) {
				close(gates[k])
			}
		}
	}
	// The last held clients resume only after the 10 messages were
	// sent, so that some get all of them in their recovered event; the
	// first resumed get message 0 live.
	const held = 100
	sent, allSent := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(allSent)
		for k := 0; k < messages; k++ {
			select {
			case <-gates[k]:
			case <-time.After(20 * time.Second):
				sent <- fmt.Errorf("message %d: the resumes stalled at %d", k, resumed.Load())
				return
			}
			body := fmt.Sprintf(`{"type":"send","room":"storm","id":%d,"data":"m%d"}`, k, k)
			if err := sender.ws.WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
				sent <- err
				return
			}
			if f, err := stormRead(sender.ws); err != nil || f.Type != "ack" {
				sent <- fmt.Errorf("send %d: %s %v", k, f.Raw, err)
				return
			}
		}
		sent <- nil
	}()
	resumeStart := time.Now()
	err = stormParallel(n, workers, func(i int) error {
		c := cs[i]
		if i >= n-held {
			<-allSent
		}
		ws, w, err := stormDial(g, c.src, rvQuery(c.token, seen))
		if err != nil {
			return fmt.Errorf("client %d: resume: %w", i, err)
		}
		c.ws = ws
		if w.Recovered == nil || !*w.Recovered || w.idString() != c.id {
			return fmt.Errorf("client %d (%s): welcome %s, want recovered:true", i, c.id, w.Raw)
		}
		rv, err := stormRead(ws)
		if err != nil || rv.Type != "recovered" || rv.Room != "storm" || rv.Recovered == nil || !*rv.Recovered {
			return fmt.Errorf("client %d: %s %v, want storm's recovered event", i, rv.Raw, err)
		}
		c.got = append(c.got, rv.Messages...)
		inRecovery.Add(int64(len(rv.Messages)))
		gate(resumed.Add(1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resumedIn := time.Since(resumeStart)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}

	// Every message was acknowledged, so it is in the recovered event or
	// on its way live: read until each client has all of them.
	offsets := make([]atomic.Uint64, messages)
	err = stormParallel(n, workers, func(i int) error {
		c := cs[i]
		for len(c.got) < messages {
			f, err := stormRead(c.ws)
			if err != nil || f.Type != "message" {
				return fmt.Errorf("client %d after %d messages: %s %v", i, len(c.got), f.Raw, err)
			}
			c.got = append(c.got, f)
		}
		for k, m := range c.got {
			if string(m.Data) != fmt.Sprintf(`"m%d"`, k) || m.Offset == nil || *m.Offset <= seen {
				return fmt.Errorf("client %d: message %d is %s, want data \"m%d\" (messages %s)", i, k, m.Raw, k, hsRaws(c.got))
			}
			if k > 0 && *m.Offset <= *c.got[k-1].Offset {
				return fmt.Errorf("client %d: offsets out of order: %s", i, hsRaws(c.got))
			}
			if !offsets[k].CompareAndSwap(0, *m.Offset) && offsets[k].Load() != *m.Offset {
				return fmt.Errorf("client %d: message %d has offset %d, another client got %d", i, k, *m.Offset, offsets[k].Load())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := inRecovery.Load(); r == 0 || r == n*messages {
		t.Fatalf("%d of the %d deliveries were in recovered events: want some there and some live", r, n*messages)
	}
	// Nothing beyond the 10: a marker sent now is every client's next
	// message.
	hsSend(sender, "storm", `"marker"`)
	err = stormParallel(n, workers, func(i int) error {
		f, err := stormRead(cs[i].ws)
		if err != nil || string(f.Data) != `"marker"` {
			return fmt.Errorf("client %d: %s %v, want the marker after the 10 messages", i, f.Raw, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := scrape(t, g)
	if r, f := m[`chatgate_recoveries_total{outcome="recovered"}`], m[`chatgate_recoveries_total{outcome="failed"}`]; r != n || f != 0 {
		t.Fatalf("recoveries: %v recovered, %v failed; want %d and 0", r, f, n)
	}

	peak := rss.stop()
	t.Logf("connected %d in %v, resumed in %v (%d of %d messages delivered in recovered events), whole test %v; VmRSS %.1f MiB before, peak %.1f MiB",
		n, connected.Round(time.Millisecond), resumedIn.Round(time.Millisecond), inRecovery.Load(), n*messages,
		time.Since(start).Round(time.Millisecond), mib(base), mib(peak))
	// 2,000 sessions, their dropped records and the replays grow VmRSS
	// by about 10 MiB (20 MiB under a -race gateway, whose shadow memory
	// doubles it); 32 KiB kept or copied per resume would break the bound.
	limit := int64(64 << 20)
	if raceBinary {
		limit *= 2
	}
	if grew := peak - base; grew > limit {
		t.Fatalf("VmRSS grew by %.1f MiB (%.1f → %.1f), want at most %.0f MiB", mib(grew), mib(base), mib(peak), mib(limit))
	}
}
