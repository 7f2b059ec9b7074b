package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/history"
)

// Messages that only other paths put in a room's history: a backend's
// emit (its arguments in Data) and a Socket.IO client's binary message.
var (
	historyEmit = chat.Message{Room: []byte("lobby"), Event: "welcome", Data: []byte(`[1,"two"]`),
		EventArgs: true, TS: 1700000000000}
	historyBinary = chat.Message{Room: []byte("lobby"), From: "gw1000001", Nick: "Alice", User: "alice",
		Data: []byte(`{"file":{"_placeholder":true,"num":0}}`), Attachments: [][]byte{{1, 2, 3}}, TS: 1700000000001}
)

// appendHistory records msgs in hist as the hub does (under its lock).
func appendHistory(hist chat.History, msgs ...chat.Message) {
	hist.Lock()
	defer hist.Unlock()
	for i := range msgs {
		hist.Append(&msgs[i])
	}
}

// httpServer serves s's API over a real HTTP listener.
type httpServer struct {
	*specServer
	url string
}

func newHTTPServer(t *testing.T, hist chat.History) *httpServer {
	t.Helper()
	s := newSpecServerWith(t, "", hist)
	ts := httptest.NewServer(s.api.Handler())
	t.Cleanup(ts.Close)
	return &httpServer{s, ts.URL}
}

// call posts body to method and returns the status and the answer.
func (s *httpServer) call(method, body string) (int, []byte) {
	s.t.Helper()
	resp, err := http.Post(s.url+"/api/"+method, "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("POST /api/%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("POST /api/%s: reading the answer: %v", method, err)
	}
	return resp.StatusCode, raw
}

// publish publishes data to room through the API.
func (s *httpServer) publish(room, data string) {
	s.t.Helper()
	if st, raw := s.call("publish", fmt.Sprintf(`{"room":%q,"data":%s}`, room, data)); st != http.StatusOK {
		s.t.Fatalf("publish: HTTP %d %s", st, raw)
	}
}

// history calls history with body and decodes a 200 answer.
func (s *httpServer) history(body string) historyResult {
	s.t.Helper()
	st, raw := s.call("history", body)
	if st != http.StatusOK {
		s.t.Fatalf("history %s: HTTP %d %s", body, st, raw)
	}
	var page struct {
		Result historyResult `json:"result"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		s.t.Fatalf("history %s: %v: %s", body, err, raw)
	}
	if page.Result.Messages == nil {
		s.t.Fatalf("history %s: no \"messages\" array: %s", body, raw)
	}
	return page.Result
}

// numbers returns the "n" of each message's data {"n":…}.
func numbers(t *testing.T, msgs []historyMessage) []int {
	t.Helper()
	out := []int{}
	for _, m := range msgs {
		var d struct{ N int }
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatalf("data %s: %v", m.Data, err)
		}
		out = append(out, d.N)
	}
	return out
}

// since is the JSON of a history body after pos.
func since(room string, offset uint64, epoch string, extra string) string {
	return fmt.Sprintf(`{"room":%q,"since":{"offset":%d,"epoch":%q}%s}`, room, offset, epoch, extra)
}

// TestHistoryOldestFirst: published messages come back oldest first with
// increasing offsets, only the room's, with the log's position.
func TestHistoryOldestFirst(t *testing.T) {
	s := newHTTPServer(t, history.NewMemory(history.Config{Size: 100}))
	s.publish("lobby", `{"n":0}`)
	s.publish("other", `{"n":100}`)
	s.publish("lobby", `{"n":1}`)
	if st, raw := s.call("publish", `{"room":"lobby","data":{"n":2},"event":"notice"}`); st != http.StatusOK {
		t.Fatalf("publish: HTTP %d %s", st, raw)
	}

	page := s.history(`{"room":"lobby"}`)
	if got := numbers(t, page.Messages); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("lobby's messages %v, want [0 1 2]", got)
	}
	var prev uint64
	for i, m := range page.Messages {
		if m.Offset <= prev {
			t.Errorf("message %d: offset %d after %d, want increasing", i, m.Offset, prev)
		}
		prev = m.Offset
		if m.Room != "lobby" || m.From != "" || m.Nick != "" || m.TS == 0 || m.Args != nil {
			t.Errorf("message %d: %+v, want a server message of lobby with a time", i, m)
		}
	}
	if ev := page.Messages[2].Event; ev != "notice" {
		t.Errorf("the third message's event %q, want notice", ev)
	}
	if page.Offset != prev || page.Epoch == "" {
		t.Errorf("position %d %q, want the last offset %d and an epoch", page.Offset, page.Epoch, prev)
	}
	other := s.history(`{"room":"other"}`)
	if got := numbers(t, other.Messages); !slices.Equal(got, []int{100}) {
		t.Fatalf("other's messages %v, want [100]", got)
	}
	if off := other.Messages[0].Offset; off <= page.Messages[0].Offset || off >= page.Messages[1].Offset {
		t.Errorf("other's offset %d, want between lobby's %d and %d: one sequence per log", off,
			page.Messages[0].Offset, page.Messages[1].Offset)
	}
	if other.Epoch == page.Epoch {
		t.Errorf("rooms share the epoch %q", page.Epoch)
	}
}

// TestHistorySince: since skips what was read, and limit bounds a page:
// the oldest after since, or the newest without it.
func TestHistorySince(t *testing.T) {
	s := newHTTPServer(t, history.NewMemory(history.Config{Size: 100}))
	for i := range 3 {
		s.publish("lobby", fmt.Sprintf(`{"n":%d}`, i))
	}
	all := s.history(`{"room":"lobby"}`)
	off := func(i int) uint64 { return all.Messages[i].Offset }
	for _, tc := range []struct {
		name, body string
		want       []int
	}{
		{"after the first", since("lobby", off(0), all.Epoch, ""), []int{1, 2}},
		{"after the last", since("lobby", off(2), all.Epoch, ""), []int{}},
		{"from the start", since("lobby", 0, all.Epoch, ""), []int{0, 1, 2}},
		{"after the first, limit 1", since("lobby", off(0), all.Epoch, `,"limit":1`), []int{1}},
		{"newest, limit 2", `{"room":"lobby","limit":2}`, []int{1, 2}},
		{"limit 1000", `{"room":"lobby","limit":1000}`, []int{0, 1, 2}},
		{"since null", `{"room":"lobby","since":null}`, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := s.history(tc.body)
			if got := numbers(t, page.Messages); !slices.Equal(got, tc.want) {
				t.Errorf("messages %v, want %v", got, tc.want)
			}
			if page.Offset != all.Offset || page.Epoch != all.Epoch {
				t.Errorf("position %d %q, want %d %q", page.Offset, page.Epoch, all.Offset, all.Epoch)
			}
		})
	}
}

// TestHistoryErrors: each refused request has its status and code.
func TestHistoryErrors(t *testing.T) {
	s := newHTTPServer(t, history.NewMemory(history.Config{Size: 100}))
	s.publish("lobby", `{"n":0}`)
	s.publish("other", `{"n":1}`)
	lobby := s.history(`{"room":"lobby"}`)
	other := s.history(`{"room":"other"}`)

	// A room of a small log whose first messages were evicted.
	small := newHTTPServer(t, history.NewMemory(history.Config{Size: 2}))
	for i := range 3 {
		small.publish("busy", fmt.Sprintf(`{"n":%d}`, i))
	}
	busy := small.history(`{"room":"busy"}`)
	if got := numbers(t, busy.Messages); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("busy keeps %v, want [1 2]", got)
	}

	for _, tc := range []struct {
		name   string
		srv    *httpServer
		body   string
		status int
		code   string
		msg    string // in the message
	}{
		{"future offset", s, since("lobby", lobby.Offset+1, lobby.Epoch, ""), 400, CodeBadOffset, ""},
		{"wrong epoch", s, since("lobby", 0, "000000000000", ""), 410, CodeUnrecoverable, ""},
		{"another room's epoch", s, since("lobby", 0, other.Epoch, ""), 410, CodeUnrecoverable, ""},
		{"evicted", small, since("busy", busy.Messages[0].Offset-2, busy.Epoch, ""), 410, CodeUnrecoverable, ""},
		{"limit 5000", s, `{"room":"lobby","limit":5000}`, 400, CodeBadRequest, `"limit"`},
		{"limit 0", s, `{"room":"lobby","limit":0}`, 400, CodeBadRequest, `"limit"`},
		{"offset without epoch", s, `{"room":"lobby","since":{"offset":1}}`, 400, CodeBadRequest, chat.CodeMissingField},
		{"empty epoch", s, `{"room":"lobby","since":{"offset":1,"epoch":""}}`, 400, CodeBadRequest, chat.CodeMissingField},
		{"epoch without offset", s, fmt.Sprintf(`{"room":"lobby","since":{"epoch":%q}}`, lobby.Epoch), 400, CodeBadRequest, chat.CodeMissingField},
		{"negative offset", s, fmt.Sprintf(`{"room":"lobby","since":{"offset":-1,"epoch":%q}}`, lobby.Epoch), 400, CodeBadRequest, ""},
		{"no room", s, `{"limit":10}`, 400, CodeBadRequest, "room"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := tc.srv.call("history", tc.body)
			var ans struct{ Error *Error }
			if err := json.Unmarshal(raw, &ans); err != nil || ans.Error == nil {
				t.Fatalf("HTTP %d %s (%v), want an error", st, raw, err)
			}
			if st != tc.status || ans.Error.Code != tc.code || !strings.Contains(ans.Error.Message, tc.msg) {
				t.Errorf("HTTP %d %s, want %d %s with %q", st, raw, tc.status, tc.code, tc.msg)
			}
		})
	}
	// The edge of the kept messages is still readable.
	edge := small.history(since("busy", busy.Messages[0].Offset-1, busy.Epoch, ""))
	if got := numbers(t, edge.Messages); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("after the evicted message: %v, want [1 2]", got)
	}
}

// TestHistoryOff: a hub without a log answers no_history, in a batch too.
func TestHistoryOff(t *testing.T) {
	s := newHTTPServer(t, nil)
	s.publish("lobby", `{"n":0}`)
	st, raw := s.call("history", `{"room":"lobby"}`)
	if st != http.StatusNotFound || !bytes.Contains(raw, []byte(`"code":"no_history"`)) {
		t.Errorf("HTTP %d %s, want 404 no_history", st, raw)
	}
	st, raw = s.call("batch", `{"commands":[{"method":"history","params":{"room":"lobby"}}]}`)
	if st != http.StatusOK || !bytes.Contains(raw, []byte(`{"error":{"code":"no_history"`)) {
		t.Errorf("batch: HTTP %d %s, want a no_history reply", st, raw)
	}
}

// TestHistoryMessageShapes: an emit's arguments come under "args"
// without "data", a Socket.IO sender's attachments inlined into "data",
// and empty data as null, as native clients get them.
func TestHistoryMessageShapes(t *testing.T) {
	hist := history.NewMemory(history.Config{Size: 100})
	s := newHTTPServer(t, hist)
	appendHistory(hist, historyEmit, historyBinary, chat.Message{Room: []byte("lobby"), From: "gw1000002", TS: 1})
	st, raw := s.call("history", `{"room":"lobby"}`)
	if st != http.StatusOK {
		t.Fatalf("HTTP %d %s", st, raw)
	}
	var page struct {
		Result struct {
			Messages []map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &page); err != nil || len(page.Result.Messages) != 3 {
		t.Fatalf("%s (%v), want 3 messages", raw, err)
	}
	for i, want := range []map[string]string{
		{"room": `"lobby"`, "from": `""`, "nick": `""`, "user": `""`, "ts": `1700000000000`, "offset": `1`,
			"event": `"welcome"`, "args": `[1,"two"]`},
		{"room": `"lobby"`, "from": `"gw1000001"`, "nick": `"Alice"`, "user": `"alice"`, "ts": `1700000000001`, "offset": `2`,
			"data": `{"file":{"_binary":"AQID"}}`},
		{"room": `"lobby"`, "from": `"gw1000002"`, "nick": `""`, "user": `""`, "ts": `1`, "offset": `3`,
			"data": `null`},
	} {
		got := map[string]string{}
		for k, v := range page.Result.Messages[i] {
			got[k] = string(v)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("message %d:\n got %v\nwant %v", i, got, want)
		}
	}
}
