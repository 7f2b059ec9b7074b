package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgate/chatgate/chat"
)

// call makes one call and waits (bounded) for its answer.
func call(t *testing.T, c *Client, kind chat.CallKind, body string) chat.BackendAnswer {
	t.Helper()
	got := make(chan chat.BackendAnswer, 1)
	c.Call(kind, []byte(body), func(a chat.BackendAnswer) { got <- a })
	select {
	case a := <-got:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10 s")
	}
	return chat.BackendAnswer{}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Each way a backend can answer becomes the documented answer for the
// client.
func TestAnswers(t *testing.T) {
	big := `{"result":{"ack":["` + strings.Repeat("x", MaxAnswer) + `"]}}`
	tests := []struct {
		name   string
		status int
		answer string
		check  func(t *testing.T, a chat.BackendAnswer)
	}{
		{"result", 200, `{"result":{"ack":[1,"two"]}}`, func(t *testing.T, a chat.BackendAnswer) {
			if a.Err != nil || string(a.Result) != `{"ack":[1,"two"]}` {
				t.Fatalf("got %+v", a)
			}
		}},
		{"backend error passes through", 200, `{"error":{"code":"moderated","message":"no swearing"}}`, func(t *testing.T, a chat.BackendAnswer) {
			if a.Err == nil || a.Err.Code != "moderated" || a.Err.Message != "no swearing" {
				t.Fatalf("got %+v", a)
			}
		}},
		{"disconnect", 200, `{"disconnect":{"code":4003,"reason":"banned"}}`, func(t *testing.T, a chat.BackendAnswer) {
			if a.Disconnect == nil || a.Disconnect.Code != 4003 || a.Disconnect.Reason != "banned" {
				t.Fatalf("got %+v", a)
			}
		}},
		{"disconnect with a code out of range", 200, `{"disconnect":{"code":1000}}`, func(t *testing.T, a chat.BackendAnswer) {
			if a.Disconnect == nil || a.Disconnect.Code != 4000 {
				t.Fatalf("got %+v", a)
			}
		}},
		{"not JSON", 200, `<html>oops</html>`, wantErr(chat.CodeBackendError)},
		{"empty object", 200, `{}`, wantErr(chat.CodeBackendError)},
		{"non-2xx", 500, `{"result":{}}`, wantErr(chat.CodeBackendError)},
		{"answer over 1 MiB", 200, big, wantErr(chat.CodeBackendError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.answer)
			}))
			defer srv.Close()
			c := newClient(t, Config{EventURL: srv.URL})
			tt.check(t, call(t, c, chat.CallEvent, `{"event":"x"}`))
		})
	}
}

func wantErr(code string) func(t *testing.T, a chat.BackendAnswer) {
	return func(t *testing.T, a chat.BackendAnswer) {
		t.Helper()
		if a.Err == nil || a.Err.Code != code {
			t.Fatalf("got %+v, want error %s", a, code)
		}
	}
}

// A backend that never answers gives backend_timeout; one that is down
// gives backend_unavailable.
func TestTimeoutAndUnavailable(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	c := newClient(t, Config{EventURL: slow.URL, Timeout: 200 * time.Millisecond})
	wantErr(chat.CodeBackendTimeout)(t, call(t, c, chat.CallEvent, `{}`))

	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	c2 := newClient(t, Config{EventURL: url})
	wantErr(chat.CodeBackendUnavailable)(t, call(t, c2, chat.CallEvent, `{}`))
}

// Calls past the queue are refused at once, not queued without bound.
func TestQueueBound(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
		io.WriteString(w, `{"result":{}}`)
	}))
	defer srv.Close()
	c := newClient(t, Config{EventURL: srv.URL, Concurrency: 1, Queue: 2})
	var wg sync.WaitGroup
	answers := make(chan chat.BackendAnswer, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		c.Call(chat.CallEvent, []byte(`{}`), func(a chat.BackendAnswer) { answers <- a; wg.Done() })
	}
	// With one worker busy and two queued, at least seven were refused
	// at once.
	refused := 0
	for refused < 7 {
		select {
		case a := <-answers:
			if a.Err != chat.ErrBackendUnavailable {
				t.Fatalf("early answer %+v", a)
			}
			refused++
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d calls refused", refused)
		}
	}
	close(block)
	wg.Wait()
}

// With a secret every request carries the HMAC of its body.
func TestSignature(t *testing.T) {
	got := make(chan [2]string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- [2]string{r.Header.Get(SignatureHeader), string(b)}
		io.WriteString(w, `{"result":{}}`)
	}))
	defer srv.Close()
	c := newClient(t, Config{PublishURL: srv.URL, Secret: "s3cret"})
	call(t, c, chat.CallPublish, `{"room":"r"}`)
	h := <-got
	if h[1] != `{"room":"r"}` || h[0] != Sign("s3cret", []byte(h[1])) || !strings.HasPrefix(h[0], "sha256=") {
		t.Fatalf("signature %q of body %q", h[0], h[1])
	}
	if Sign("other", []byte(h[1])) == h[0] {
		t.Fatal("signature does not depend on the secret")
	}
}

// Disconnect reports arrive in batches.
func TestDisconnectBatches(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Disconnects []struct {
				Client string `json:"client"`
			} `json:"disconnects"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		for _, d := range b.Disconnects {
			seen = append(seen, d.Client)
		}
		mu.Unlock()
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := newClient(t, Config{DisconnectURL: srv.URL})
	if !c.Handles(chat.CallDisconnect) || c.Handles(chat.CallEvent) {
		t.Fatal("Handles does not follow the configured URLs")
	}
	for i := 0; i < 300; i++ {
		c.Disconnected([]byte(`{"client":"c` + string(rune('a'+i%26)) + `"}`))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 300 disconnects reported", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
