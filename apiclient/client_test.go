package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeAPI answers every request with status and body, and records the
// last request's method path, headers and body.
type fakeAPI struct {
	status int
	body   string
	path   string
	header http.Header
	got    string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.path, f.header, f.got = r.URL.Path, r.Header.Clone(), string(b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

func newFake(t *testing.T, status int, body string) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{status: status, body: body}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// TestRequestShape: a call is POST /api/<method> with the params as its
// JSON body, Content-Type application/json and the key as "apikey".
func TestRequestShape(t *testing.T) {
	f, url := newFake(t, 200, `{"result":{"delivered":2}}`)
	c := New(url+"/", "s3cret")
	n, err := c.Send(context.Background(), UserTarget("alice"), json.RawMessage(`{"a":1}`), WithEvent("ev"))
	if err != nil || n != 2 {
		t.Fatalf("Send = %d, %v; want 2, nil", n, err)
	}
	if f.path != "/api/send" {
		t.Errorf("path %q", f.path)
	}
	if got := f.header.Get("Authorization"); got != "apikey s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := f.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if want := `{"user":"alice","data":{"a":1},"event":"ev"}`; f.got != want {
		t.Errorf("body %s, want %s", f.got, want)
	}

	// No key: no Authorization header; no params: {}.
	c = New(strings.TrimPrefix(url, "http://"), "")
	f.body = `{"result":{"nodes":[{"node":"n1","version":"v","uptime":1.5,"connections":3,"rooms":2}]}}`
	nodes, err := c.Info(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0] != (NodeInfo{"n1", "v", 1.5, 3, 2}) {
		t.Fatalf("Info = %+v, %v", nodes, err)
	}
	if _, ok := f.header["Authorization"]; ok || f.got != "{}" {
		t.Errorf("Authorization %q, body %q; want none, {}", f.header.Get("Authorization"), f.got)
	}
}

// TestErrors: an API error answer is an *Error with the status, code and
// message; an answer that is not the API's is an *Error without a code.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Error
	}{
		{"api error", 404, `{"error":{"code":"not_found","message":"no such client or user"}}`, Error{404, CodeNotFound, "no such client or user"}},
		{"proxy page", 502, "<html>bad gateway</html>", Error{502, "", "<html>bad gateway</html>"}},
		{"empty body", 503, "", Error{503, "", "Service Unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newFake(t, tc.status, tc.body)
			err := New(url, "").Join(context.Background(), ClientTarget("x"), "r")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v (%T), want *Error", err, err)
			}
			if *e != tc.want {
				t.Fatalf("got %+v, want %+v", *e, tc.want)
			}
			if HasCode(err, CodeNotFound) != (tc.want.Code == CodeNotFound) {
				t.Errorf("HasCode wrong for %v", err)
			}
		})
	}
	t.Run("200 without result", func(t *testing.T) {
		_, url := newFake(t, 200, `{}`)
		if err := New(url, "").Publish(context.Background(), "r", 1); err == nil {
			t.Fatal("no error")
		}
	})
}

// TestBatchReplies: replies decode in order, each to its result or error.
func TestBatchReplies(t *testing.T) {
	f, url := newFake(t, 200, `{"result":{"replies":[{"result":{}},{"error":{"code":"unknown_method","message":"unknown method"}},{"result":{"rooms":[{"room":"a","count":1}]}}]}}`)
	replies, err := New(url, "").Batch(context.Background(),
		Command{Method: "publish", Params: PublishParams{Room: "a", Data: 1}},
		Command{Method: "nope"},
		Command{Method: "rooms"})
	if err != nil || len(replies) != 3 {
		t.Fatalf("Batch = %v, %v", replies, err)
	}
	if want := `{"commands":[{"method":"publish","params":{"room":"a","data":1}},{"method":"nope"},{"method":"rooms"}]}`; f.got != want {
		t.Errorf("body %s, want %s", f.got, want)
	}
	if err := replies[0].Decode(nil); err != nil {
		t.Errorf("reply 0: %v", err)
	}
	if err := replies[1].Decode(nil); !HasCode(err, CodeUnknownMethod) {
		t.Errorf("reply 1: %v", err)
	}
	var rooms struct{ Rooms []Room }
	if err := replies[2].Decode(&rooms); err != nil || len(rooms.Rooms) != 1 || rooms.Rooms[0] != (Room{Room: "a", Count: 1}) {
		t.Errorf("reply 2: %+v, %v", rooms, err)
	}
}

// TestContext: a cancelled context ends the call with the context's error.
func TestContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := New(srv.URL, "").Rooms(ctx, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	// The client's own timeout bounds a call without a deadline.
	_, err = New(srv.URL, "", WithTimeout(50*time.Millisecond)).Rooms(context.Background(), "")
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
}

// TestSendWithAck: the call is send with "ack" and the timeout in
// milliseconds, returns the "ack" arguments, and outlives a client bound
// shorter than the ack's timeout; the gateway's codes come back as
// *Error.
func TestSendWithAck(t *testing.T) {
	f, url := newFake(t, 200, `{"result":{"delivered":1,"ack":[{"ok":true},2]}}`)
	c := New(url, "")
	args, err := c.SendWithAck(context.Background(), "c1", 1, 1500*time.Millisecond, WithEvent("ev"))
	if err != nil || string(args) != `[{"ok":true},2]` {
		t.Fatalf("SendWithAck = %s, %v", args, err)
	}
	if want := `{"client":"c1","data":1,"event":"ev","ack":true,"timeout":1500}`; f.path != "/api/send" || f.got != want {
		t.Errorf("%s %s, want /api/send %s", f.path, f.got, want)
	}
	f.status, f.body = 504, `{"error":{"code":"ack_timeout","message":"the client did not acknowledge in time"}}`
	_, err = c.SendWithAck(context.Background(), "c1", 1, 0)
	if !HasCode(err, CodeAckTimeout) || f.got != `{"client":"c1","data":1,"ack":true}` {
		t.Fatalf("err %v for %s, want ack_timeout for a send without timeout", err, f.got)
	}

	// A gateway that answers after 300 ms, to a client bound to 100 ms:
	// the ack's wait raises the bound for this call only.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond): // the client's slow answer
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":{"delivered":1,"ack":[]}}`)
	}))
	defer slow.Close()
	sc := New(slow.URL, "", WithTimeout(100*time.Millisecond))
	if args, err := sc.SendWithAck(context.Background(), "c1", 1, time.Second); err != nil || string(args) != `[]` {
		t.Fatalf("slow ack: %s, %v; want [] within the raised bound", args, err)
	}
	if _, err := sc.Rooms(context.Background(), ""); err == nil {
		t.Fatal("Rooms on the slow gateway succeeded: the client's own bound was changed")
	}
}
