package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Room history over the native protocol (docs/history.md, "History
// requests"): every room message carries an offset from one sequence per
// node, a join ack says where the room stood (offset and the room's
// epoch), and a client that is in a room can ask for the messages after a
// position, or for the newest ones. Recovery of a dropped session, which
// reads the same log, is in recovery_test.go; the helpers of both files
// are here.

// hsFrame is one server message as the history and recovery tests read it:
// the fields they look at, and the frame's own bytes.
type hsFrame struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id"`
	Code      string          `json:"code"`
	Event     string          `json:"event"`
	Room      string          `json:"room"`
	From      string          `json:"from"`
	Nick      string          `json:"nick"`
	Data      json.RawMessage `json:"data"`
	Count     int             `json:"count"`
	Offset    *uint64         `json:"offset"`
	Epoch     *string         `json:"epoch"`
	Messages  []hsFrame       `json:"messages"`
	Recovered *bool           `json:"recovered"`
	Session   string          `json:"session"`
	Raw       []byte          `json:"-"`
}

// UnmarshalJSON decodes f and keeps its bytes in f.Raw, for nested
// messages too.
func (f *hsFrame) UnmarshalJSON(b []byte) error {
	type plain hsFrame
	if err := json.Unmarshal(b, (*plain)(f)); err != nil {
		return err
	}
	f.Raw = append([]byte(nil), b...)
	return nil
}

// off returns f's offset, failing t when it has none.
func (f hsFrame) off(t *testing.T) uint64 {
	t.Helper()
	if f.Offset == nil {
		t.Fatalf("%s has no offset", f.Raw)
	}
	return *f.Offset
}

// epoch returns f's epoch, failing t when it has none or an empty one.
func (f hsFrame) epoch(t *testing.T) string {
	t.Helper()
	if f.Epoch == nil || *f.Epoch == "" {
		t.Fatalf("%s has no epoch", f.Raw)
	}
	return *f.Epoch
}

// idString returns f's "id" when it is a JSON string (a connection id in
// a welcome or a presence event).
func (f hsFrame) idString() string {
	var s string
	_ = json.Unmarshal(f.ID, &s)
	return s
}

// hsOpen connects a native client to /ws?query with the header hdr and
// returns it with its welcome. Unlike dial, the handshake is bounded by
// 5 s, as every read is: a gateway that hangs fails a test quickly. The
// client is closed when t ends.
func hsOpen(t *testing.T, g *gateway, query string, hdr http.Header) (*client, hsFrame) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+g.addr+"/ws?"+query, hdr)
	if err != nil {
		t.Fatalf("dial /ws?%s: %v", query, err)
	}
	resp.Body.Close()
	c := &client{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	w := hsRead(c)
	if w.Type != "welcome" || w.idString() == "" {
		t.Fatalf("first message %s, want a welcome", w.Raw)
	}
	c.id = w.idString()
	return c, w
}

// hsDial connects a native client to g.
func hsDial(t *testing.T, g *gateway) *client {
	t.Helper()
	c, _ := hsOpen(t, g, "", nil)
	return c
}

// hsDecode parses a server frame.
func hsDecode(t *testing.T, b []byte) hsFrame {
	t.Helper()
	var f hsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bad JSON from server %q: %v", b, err)
	}
	return f
}

// hsRead returns c's next frame (bounded by readRaw's deadline).
func hsRead(c *client) hsFrame {
	c.t.Helper()
	return hsDecode(c.t, c.readRaw())
}

// hsNextMessage returns c's next room or direct message, skipping presence
// events; anything else fails the test, so that a stray reply or a
// duplicate recovered event is not read past.
func hsNextMessage(c *client) hsFrame {
	c.t.Helper()
	for {
		f := hsRead(c)
		switch f.Type {
		case "message":
			return f
		case "presence":
			continue
		}
		c.t.Fatalf("got %s, want a message", f.Raw)
	}
}

// hsIDs numbers the requests of these tests, so that each reply is
// matched with its request.
var hsIDs atomic.Int64

// hsRequestRaw sends body, a JSON object without its closing brace to
// which an id is added, and returns the reply carrying that id. Presence
// events before it are skipped; any other frame fails the test.
func hsRequestRaw(c *client, body string) hsFrame {
	c.t.Helper()
	id := fmt.Sprintf("h%d", hsIDs.Add(1))
	c.sendRaw(body + `,"id":"` + id + `"}`)
	for {
		f := hsRead(c)
		if f.Type == "presence" {
			continue
		}
		if (f.Type == "ack" || f.Type == "error") && f.idString() == id {
			return f
		}
		c.t.Fatalf("waiting for the reply to %s}: got %s", body, f.Raw)
	}
}

// hsAck sends body (see hsRequestRaw) and fails unless it is acknowledged.
func hsAck(c *client, body string) hsFrame {
	c.t.Helper()
	f := hsRequestRaw(c, body)
	if f.Type != "ack" {
		c.t.Fatalf("%s}: got %s, want an ack", body, f.Raw)
	}
	return f
}

// hsError sends body (see hsRequestRaw) and fails unless the reply is the
// error code.
func hsError(c *client, body, code string) hsFrame {
	c.t.Helper()
	f := hsRequestRaw(c, body)
	if f.Type != "error" || f.Code != code {
		c.t.Fatalf("%s}: got %s, want error %q", body, f.Raw, code)
	}
	return f
}

// hsPing checks that c's connection still answers.
func hsPing(c *client) { c.t.Helper(); hsAck(c, `{"type":"ping"`) }

// hsJoin joins room and returns the ack, which must carry the room's
// position when history is on.
func hsJoin(c *client, room string) hsFrame {
	c.t.Helper()
	f := hsAck(c, `{"type":"join","room":`+hsQuote(room))
	if f.Room != room {
		c.t.Fatalf("join %s: ack %s", room, f.Raw)
	}
	return f
}

// hsSend sends a room message whose data is the raw JSON data.
func hsSend(c *client, room, data string) {
	c.t.Helper()
	hsAck(c, `{"type":"send","room":`+hsQuote(room)+`,"data":`+data)
}

// hsHistoryBody is the history request (without its closing brace) for
// room after (offset, epoch), or the newest messages when epoch is "";
// limit 0 leaves the limit out.
func hsHistoryBody(room string, offset uint64, epoch string, limit int) string {
	b := `{"type":"history","room":` + hsQuote(room)
	if epoch != "" {
		b += fmt.Sprintf(`,"since":{"offset":%d,"epoch":%s}`, offset, hsQuote(epoch))
	}
	if limit != 0 {
		b += fmt.Sprintf(`,"limit":%d`, limit)
	}
	return b
}

// hsHistory asks for a page of room's history and returns the ack.
func hsHistory(c *client, room string, offset uint64, epoch string, limit int) hsFrame {
	c.t.Helper()
	f := hsAck(c, hsHistoryBody(room, offset, epoch, limit))
	if f.Room != room || f.Messages == nil { // [] decodes to an empty, non-nil slice
		c.t.Fatalf("history of %s: ack %s without the room or its messages", room, f.Raw)
	}
	return f
}

func hsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hsCanonical returns the JSON b with its object keys sorted, so that two
// encodings of one message compare equal.
func hsCanonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// hsSameMessages fails unless got are exactly the messages want, in that
// order, each as the client received it live.
func hsSameMessages(t *testing.T, what string, got, want []hsFrame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages %s, want %d %s", what, len(got), hsRaws(got), len(want), hsRaws(want))
	}
	for i := range want {
		if g, w := hsCanonical(t, got[i].Raw), hsCanonical(t, want[i].Raw); g != w {
			t.Fatalf("%s: message %d is %s, want %s (as it arrived live)", what, i, g, w)
		}
	}
}

func hsRaws(fs []hsFrame) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = string(f.Raw)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// hsSendAndReceive has from send n messages to room, with data
// {"k":"<tag>-<i>"}, and returns them as to received them live: in order,
// with increasing offsets.
func hsSendAndReceive(t *testing.T, from, to *client, room, tag string, n int) []hsFrame {
	t.Helper()
	var got []hsFrame
	for i := 1; i <= n; i++ {
		data := fmt.Sprintf(`{"k":"%s-%d"}`, tag, i)
		hsSend(from, room, data)
		m := hsNextMessage(to)
		if m.Room != room || m.From != from.id || string(m.Data) != data {
			t.Fatalf("message %d: got %s, want data %s in %s from %s", i, m.Raw, data, room, from.id)
		}
		if len(got) > 0 && m.off(t) <= got[len(got)-1].off(t) {
			t.Fatalf("offsets do not increase: %s after %s", m.Raw, got[len(got)-1].Raw)
		}
		got = append(got, m)
	}
	return got
}

// TestHistoryAfterJoinOffset: a join ack carries the room's position; room
// messages carry increasing offsets above it; a history request from that
// position returns exactly the messages sent since, oldest first and as
// they arrived live, cut to the limit from the oldest end; a request from
// a message's offset returns what came after it; without a position, the
// newest messages.
func TestHistoryAfterJoinOffset(t *testing.T) {
	g := startGateway(t)
	a, b := hsDial(t, g), hsDial(t, g)
	join := hsJoin(a, "lobby")
	start, epoch := join.off(t), join.epoch(t)
	hsJoin(b, "lobby")

	live := hsSendAndReceive(t, b, a, "lobby", "m", 5)
	if live[0].off(t) <= start {
		t.Fatalf("first message %s is not after the join position %d", live[0].Raw, start)
	}

	t.Run("since join", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "lobby", start, epoch, 0)
		hsSameMessages(t, "since the join", h.Messages, live)
		if h.off(t) != live[4].off(t) || h.epoch(t) != epoch {
			t.Fatalf("history ack %s: want offset %d and epoch %s", h.Raw, live[4].off(t), epoch)
		}
	})
	t.Run("limit from the oldest", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "lobby", start, epoch, 2)
		hsSameMessages(t, "since the join, limit 2", h.Messages, live[:2])
	})
	t.Run("since a message", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "lobby", live[2].off(t), epoch, 0)
		hsSameMessages(t, "since the 3rd", h.Messages, live[3:])
	})
	t.Run("since the last", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "lobby", live[4].off(t), epoch, 0)
		hsSameMessages(t, "since the 5th", h.Messages, nil)
	})
	t.Run("newest", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "lobby", 0, "", 3)
		hsSameMessages(t, "newest 3", h.Messages, live[2:])
	})
}

// TestHistoryBadInput: history requests that cannot be answered get the
// documented error code and leave the connection open: a position past
// the log (bad_offset), another room's epoch (unrecoverable), an offset
// that is not a non-negative integer (bad_offset), a position without its
// epoch or offset, or a limit that is not a positive integer
// (missing_field), a room the client is not in (not_member), history
// turned off (no_history). A limit above 1000 is lowered to 1000, and the
// default is 100. An offset may be a string of digits, as Socket.IO's are.
func TestHistoryBadInput(t *testing.T) {
	g := startGateway(t, "-history-size", "1200")
	a := hsDial(t, g)
	j1, j2 := hsJoin(a, "r1"), hsJoin(a, "r2")
	if j1.epoch(t) == j2.epoch(t) {
		t.Fatalf("rooms r1 and r2 share the epoch %s", j1.epoch(t))
	}
	e1 := j1.epoch(t)

	// 1,100 messages in "big", where a is alone (it does not receive its
	// own messages): more than the largest page. They are pipelined and
	// their acks read afterwards; the last ack means all are in the log.
	hsJoin(a, "big")
	const n = 1100
	for i := 0; i < n; i++ {
		a.sendRaw(fmt.Sprintf(`{"type":"send","room":"big","data":%d}`, i))
	}
	for i := 0; i < n; i++ {
		if f := hsRead(a); f.Type != "ack" {
			t.Fatalf("send %d: got %s, want an ack", i, f.Raw)
		}
	}

	last := hsHistory(a, "r1", 0, "", 1).off(t)

	for _, tc := range []struct {
		name, body, code string
	}{
		{"future offset", hsHistoryBody("r1", last+1, e1, 0), "bad_offset"},
		{"another room's epoch", hsHistoryBody("r1", j2.off(t), j2.epoch(t), 0), "unrecoverable"},
		{"unknown epoch", hsHistoryBody("r1", 0, "0123456789ab", 0), "unrecoverable"},
		{"negative offset", `{"type":"history","room":"r1","since":{"offset":-1,"epoch":` + hsQuote(e1) + `}`, "bad_offset"},
		{"fractional offset", `{"type":"history","room":"r1","since":{"offset":1.5,"epoch":` + hsQuote(e1) + `}`, "bad_offset"},
		{"exponent offset", `{"type":"history","room":"r1","since":{"offset":1e2,"epoch":` + hsQuote(e1) + `}`, "bad_offset"},
		{"text offset", `{"type":"history","room":"r1","since":{"offset":"one","epoch":` + hsQuote(e1) + `}`, "bad_offset"},
		{"since without epoch", `{"type":"history","room":"r1","since":{"offset":0}`, "missing_field"},
		{"since without offset", `{"type":"history","room":"r1","since":{"epoch":` + hsQuote(e1) + `}`, "missing_field"},
		{"since not an object", `{"type":"history","room":"r1","since":5`, "missing_field"},
		{"not a member", hsHistoryBody("elsewhere", 0, "", 0), "not_member"},
		{"no room", `{"type":"history"`, "missing_field"},
		{"limit 0", `{"type":"history","room":"r1","limit":0`, "missing_field"},
		{"negative limit", `{"type":"history","room":"r1","limit":-5`, "missing_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.t = t
			hsError(a, tc.body, tc.code)
			hsPing(a)
		})
	}

	t.Run("offset as digits", func(t *testing.T) {
		a.t = t
		h := hsAck(a, `{"type":"history","room":"r1","since":{"offset":"`+fmt.Sprint(j1.off(t))+`","epoch":`+hsQuote(e1)+`}`)
		hsSameMessages(t, "r1 since its join", h.Messages, nil)
	})
	t.Run("limit lowered", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "big", 0, "", 1_000_000)
		if len(h.Messages) != 1000 {
			t.Fatalf("limit 1000000: %d messages, want 1000", len(h.Messages))
		}
		// The newest 1000, oldest first: data 100 … 1099.
		if string(h.Messages[0].Data) != "100" || string(h.Messages[999].Data) != "1099" {
			t.Fatalf("limit 1000000: data %s … %s, want 100 … 1099", h.Messages[0].Data, h.Messages[999].Data)
		}
		hsPing(a)
	})
	t.Run("default limit", func(t *testing.T) {
		a.t = t
		h := hsHistory(a, "big", 0, "", 0)
		if len(h.Messages) != 100 || string(h.Messages[0].Data) != "1000" || string(h.Messages[99].Data) != "1099" {
			t.Fatalf("no limit: %d messages, want the newest 100 (data 1000 … 1099)", len(h.Messages))
		}
	})
	t.Run("history off", func(t *testing.T) {
		off := startGateway(t, "-history-size", "0")
		c, d := hsDial(t, off), hsDial(t, off)
		if j := hsJoin(c, "lobby"); j.Offset != nil || j.Epoch != nil {
			t.Fatalf("join ack %s carries a position with history off", j.Raw)
		}
		hsJoin(d, "lobby")
		hsSend(d, "lobby", `"hi"`)
		if m := hsNextMessage(c); m.Offset != nil {
			t.Fatalf("message %s carries an offset with history off", m.Raw)
		}
		hsError(c, hsHistoryBody("lobby", 0, "", 0), "no_history")
		hsPing(c)
	})
}

// TestHistoryEviction: with -history-size 3, a room keeps its last three
// messages: a position before the evicted ones is unrecoverable (not
// answered with a silent gap), and the offset of the last evicted message
// still gets the three that are kept.
func TestHistoryEviction(t *testing.T) {
	g := startGateway(t, "-history-size", "3")
	a, b := hsDial(t, g), hsDial(t, g)
	join := hsJoin(a, "lobby")
	epoch := join.epoch(t)
	hsJoin(b, "lobby")
	live := hsSendAndReceive(t, b, a, "lobby", "e", 5)

	hsError(a, hsHistoryBody("lobby", join.off(t), epoch, 0), "unrecoverable")
	hsError(a, hsHistoryBody("lobby", live[0].off(t), epoch, 0), "unrecoverable")
	hsSameMessages(t, "since the 2nd", hsHistory(a, "lobby", live[1].off(t), epoch, 0).Messages, live[2:])
	hsSameMessages(t, "newest", hsHistory(a, "lobby", 0, "", 0).Messages, live[2:])
	hsPing(a)
}
