package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chatgate/chatgate/api"
	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/native"
	"github.com/chatgate/chatgate/history"
	"github.com/chatgate/chatgate/payload"
	"github.com/chatgate/chatgate/rooms"
)

// newGateway serves a real api.Server over a hub with hist (nil: history
// off) and returns a Client for it.
func newGateway(t *testing.T, hist chat.History) *Client {
	t.Helper()
	hub := chat.NewHub(chat.Config{Codecs: []chat.Codec{native.Codec{}}, Node: "tst1", History: hist}, rooms.New(1))
	hub.SetTransport(dropTransport{})
	srv := api.New(api.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, hub, nil)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return New(ts.URL, "")
}

// dropTransport releases every payload: the tests have no connections.
type dropTransport struct{}

func (dropTransport) Fanout(_ *rooms.Snapshot, _ rooms.Member, p *chat.Payloads) {
	for _, pl := range p {
		if pl != nil {
			pl.Release()
		}
	}
}
func (dropTransport) Push(_ *chat.Session, p *payload.Shared)   { p.Release() }
func (dropTransport) Disconnect(*chat.Session, chat.Disconnect) {}
func (dropTransport) Exec(_ *chat.Session, fn func())           { fn() }

// TestHistory: what Publish sent, History returns oldest first with its
// offsets and position; since and limit page through it; refused
// positions are *Errors with the API's codes.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	c := newGateway(t, history.NewMemory(history.Config{Size: 100}))
	for _, d := range []string{`{"n":0}`, `{"n":1}`, `{"n":2}`} {
		if err := c.Publish(ctx, "lobby", json.RawMessage(d)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, pos, err := c.History(ctx, "lobby", nil, 0)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("History = %+v, %+v, %v; want 3 messages", msgs, pos, err)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(m.Data) != want || m.Room != "lobby" {
			t.Errorf("message %d: %+v, want data %s in lobby", i, m, want)
		}
		if i > 0 && m.Offset <= msgs[i-1].Offset {
			t.Errorf("message %d: offset %d after %d, want increasing", i, m.Offset, msgs[i-1].Offset)
		}
	}
	if pos.Offset != msgs[2].Offset || pos.Epoch == "" {
		t.Errorf("position %+v, want offset %d and an epoch", pos, msgs[2].Offset)
	}

	// since and limit: the one after the first.
	page, _, err := c.History(ctx, "lobby", &Position{msgs[0].Offset, pos.Epoch}, 1)
	if err != nil || len(page) != 1 || page[0].Offset != msgs[1].Offset {
		t.Errorf("History after the first, limit 1 = %+v, %v; want the second message", page, err)
	}
	// Read to the end: nothing newer.
	page, next, err := c.History(ctx, "lobby", &pos, 0)
	if err != nil || len(page) != 0 || next != pos {
		t.Errorf("History after the end = %+v, %+v, %v; want none at %+v", page, next, err, pos)
	}

	for _, tc := range []struct {
		name   string
		since  *Position
		limit  int
		code   string
		status int
	}{
		{"future offset", &Position{pos.Offset + 1, pos.Epoch}, 0, CodeBadOffset, 400},
		{"wrong epoch", &Position{0, "000000000000"}, 0, CodeUnrecoverable, 410},
		{"limit 5000", nil, 5000, CodeBadRequest, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.History(ctx, "lobby", tc.since, tc.limit)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Status != tc.status {
				t.Errorf("err %v, want %s (%d)", err, tc.code, tc.status)
			}
		})
	}

	off := newGateway(t, nil)
	if _, _, err := off.History(ctx, "lobby", nil, 0); !HasCode(err, CodeNoHistory) {
		t.Errorf("history off: err %v, want %s", err, CodeNoHistory)
	}
}

// TestHistoryRequest: since and limit are sent only when given.
func TestHistoryRequest(t *testing.T) {
	f, url := newFake(t, http.StatusOK, `{"result":{"messages":[{"room":"r","from":"","nick":"","user":"","data":1,"ts":5,"offset":7}],"offset":9,"epoch":"e1"}}`)
	c := New(url, "")
	msgs, pos, err := c.History(context.Background(), "r", nil, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Data) != "1" || msgs[0].Offset != 7 || pos != (Position{9, "e1"}) {
		t.Fatalf("History = %+v, %+v, %v", msgs, pos, err)
	}
	if f.path != "/api/history" || f.got != `{"room":"r"}` {
		t.Errorf("POST %s %s, want /api/history {\"room\":\"r\"}", f.path, f.got)
	}
	if _, _, err := c.History(context.Background(), "r", &Position{3, "e1"}, 2); err != nil {
		t.Fatal(err)
	}
	if want := `{"room":"r","since":{"offset":3,"epoch":"e1"},"limit":2}`; f.got != want {
		t.Errorf("body %s, want %s", f.got, want)
	}
}
