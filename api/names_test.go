package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRoomNamesFollowTheRule: the server API refuses the room names the
// hub refuses (package chat/names) with bad_request, on every method that
// takes a room.
func TestRoomNamesFollowTheRule(t *testing.T) {
	s := newSpecServer(t, "")
	sess := s.open(nil, 0)
	for _, room := range []string{"a\x00b", "\x1b[31mred", "\u202eevil", "a\u200bb", "\ufeff", "a\u0085", "a\u2066b"} {
		r, _ := json.Marshal(room)
		for method, body := range map[string]string{
			"publish":   `{"room":` + string(r) + `,"data":1}`,
			"broadcast": `{"rooms":["ok",` + string(r) + `],"data":1}`,
			"join":      `{"client":"` + sess.ID() + `","room":` + string(r) + `}`,
			"leave":     `{"client":"` + sess.ID() + `","room":` + string(r) + `}`,
			"members":   `{"room":` + string(r) + `}`,
			"history":   `{"room":` + string(r) + `}`,
		} {
			st, out := s.post(method, []byte(body))
			if st != 400 || !strings.Contains(string(out), `"bad_request"`) {
				t.Errorf("%s %q: HTTP %d %s, want 400 bad_request", method, room, st, out)
			}
		}
	}
	for _, room := range []string{"\ufffd", "café", "😀"} {
		r, _ := json.Marshal(room)
		if st, out := s.post("publish", []byte(`{"room":`+string(r)+`,"data":1}`)); st != 200 {
			t.Errorf("publish to %q: HTTP %d %s", room, st, out)
		}
	}
}
