package main

import (
	"encoding/json"
	"testing"
)

// fakeClient registers a client with no connection: the hub only ever
// queues bytes on its send channel.
func fakeClient(h *hub) *client {
	c := &client{hub: h, send: make(chan []byte, 16), rooms: make(map[string]struct{})}
	h.nextID++
	c.id = "c" + string(rune('0'+h.nextID))
	h.clients[c.id] = c
	return c
}

// next pops the next queued message of c, or "" if none.
func next(c *client) string {
	select {
	case m, ok := <-c.send:
		if !ok {
			return "<closed>"
		}
		return string(m)
	default:
		return ""
	}
}

func req(h *hub, c *client, js string) {
	var in inbound
	r := request{c: c}
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		r.bad = true
	}
	r.in = in
	h.handle(r)
}

func TestHubProtocol(t *testing.T) {
	tests := []struct {
		name     string
		presence bool
		steps    func(t *testing.T, h *hub, a, b, c *client)
	}{
		{"join counts and acks", false, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `{"type":"join","id":1,"room":"lobby"}`)
			req(h, b, `{"type":"join","id":"x","room":"lobby"}`)
			want(t, next(a), `{"type":"ack","id":1,"room":"lobby","count":1}`)
			want(t, next(b), `{"type":"ack","id":"x","room":"lobby","count":2}`)
			want(t, next(a), "")
		}},
		{"send reaches other members byte for byte", false, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `{"type":"nick","id":1,"name":"alice"}`)
			req(h, a, `{"type":"join","room":"r"}`)
			req(h, b, `{"type":"join","room":"r"}`)
			next(a)
			next(a)
			next(b)
			req(h, a, `{"type":"send","id":7,"room":"r","data":{"t": 1, "x":[1,2]}}`)
			got := next(b)
			var m struct {
				Type, Room, From, Nick string
				Data                   json.RawMessage
				TS                     int64
			}
			if err := json.Unmarshal([]byte(got), &m); err != nil {
				t.Fatalf("%q: %v", got, err)
			}
			if m.Type != "message" || m.Room != "r" || m.From != a.id || m.Nick != "alice" || string(m.Data) != `{"t": 1, "x":[1,2]}` || m.TS == 0 {
				t.Fatalf("message %q", got)
			}
			want(t, next(a), `{"type":"ack","id":7}`)
			want(t, next(c), "")
		}},
		{"direct send", false, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `{"type":"send","to":"`+c.id+`","data":"hi"}`)
			got := next(c)
			if got == "" || got[:17] != `{"type":"message"` {
				t.Fatalf("direct message %q", got)
			}
			want(t, next(a), `{"type":"ack"}`)
			req(h, a, `{"type":"send","id":2,"to":"nobody","data":1}`)
			want(t, next(a), `{"type":"error","id":2,"code":"no_such_client","message":"no connection with this id"}`)
		}},
		{"errors", false, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `not json`)
			want(t, next(a), `{"type":"error","code":"bad_request","message":"request is not a JSON object"}`)
			req(h, a, `{"type":"send","id":3,"room":"r","data":1}`)
			want(t, next(a), `{"type":"error","id":3,"code":"not_joined","message":"not a member of this room"}`)
			req(h, a, `{"type":"dance","id":4}`)
			want(t, next(a), `{"type":"error","id":4,"code":"unknown_type","message":"unknown request type"}`)
		}},
		{"leave and presence", true, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `{"type":"join","room":"r"}`)
			req(h, b, `{"type":"join","room":"r"}`)
			next(a)
			want(t, next(a), `{"type":"presence","room":"r","event":"join","id":"`+b.id+`","nick":"","count":2}`)
			next(b)
			req(h, b, `{"type":"leave","id":5,"room":"r"}`)
			want(t, next(a), `{"type":"presence","room":"r","event":"leave","id":"`+b.id+`","nick":"","count":1}`)
			want(t, next(b), `{"type":"ack","id":5,"room":"r","count":1}`)
			if len(h.rooms["r"]) != 1 {
				t.Fatalf("room has %d members", len(h.rooms["r"]))
			}
		}},
		{"slow client is dropped", false, func(t *testing.T, h *hub, a, b, c *client) {
			req(h, a, `{"type":"join","room":"r"}`)
			req(h, b, `{"type":"join","room":"r"}`)
			next(a)
			for i := 0; i < cap(b.send)+1; i++ {
				req(h, a, `{"type":"send","room":"r","data":1}`)
				next(a)
			}
			if _, ok := h.clients[b.id]; ok || h.dropped.Load() != 1 || len(h.rooms["r"]) != 1 {
				t.Fatalf("slow client kept: dropped=%d members=%d", h.dropped.Load(), len(h.rooms["r"]))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(tt.presence, 16)
			a, b, c := fakeClient(h), fakeClient(h), fakeClient(h)
			tt.steps(t, h, a, b, c)
		})
	}
}

func want(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\x01", `"\u000a\u0001"`},
		{"héllo", `"héllo"`},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, tt.in), &back); err != nil || back != tt.in {
			t.Errorf("%q does not round-trip: %q %v", tt.in, back, err)
		}
	}
}
