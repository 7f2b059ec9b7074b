package chat_test

import (
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/names"
)

// Identity text (chat/names): what every path that sets a nickname or
// names a room refuses, and the -room-nfc and -max-json-depth options.

// badText are names the rule refuses, one per kind of character.
var badText = map[string]string{
	"NUL":               "a\x00b",
	"ANSI escape":       "\x1b[31mred\x1b[0m",
	"tab":               "a\tb",
	"newline":           "a\nb",
	"DEL":               "a\x7fb",
	"C1 NEL":            "a\u0085b",
	"C1 CSI":            "a\u009b31mb",
	"RLO":               "\u202eevil",
	"LRE":               "\u202aa",
	"PDF":               "a\u202c",
	"RLI isolate":       "\u2067a",
	"PDI":               "a\u2069",
	"LRM":               "a\u200e",
	"RLM":               "a\u200f",
	"ALM":               "a\u061c",
	"zero width space":  "a\u200bb",
	"ZWNJ":              "a\u200cb",
	"ZWJ":               "a\u200db",
	"word joiner":       "a\u2060b",
	"BOM":               "\ufeffa",
	"soft hyphen":       "a\u00adb",
	"line separator":    "a\u2028b",
	"paragraph sep":     "a\u2029b",
	"tag character":     "a\U000E0041",
	"interlinear":       "a\ufff9b",
	"invalid UTF-8":     "a\xffb",
	"encoded surrogate": "\xed\xa0\x80",
}

// goodText are names it allows.
var goodText = []string{"alice", "a b", "café", "caf\u0065\u0301", "😀", "\ufffd", "ник", "名前", "עברית", "\ue000", "a\ufe0f"}

func TestIdentityTextNick(t *testing.T) {
	f := newHub(t, chat.Config{})
	a := f.open(0)
	f.must(a, reqNick("before"))
	for what, nick := range badText {
		r := f.do(a, withID(reqNick(nick), "1"))
		r.wantErr(t, chat.CodeInvalidName)
		if a.s.Nick() != "before" {
			t.Fatalf("%s: nick %q taken", what, a.s.Nick())
		}
	}
	for _, nick := range goodText {
		if r := f.must(a, reqNick(nick)); r.Name != nick {
			t.Errorf("nick %q: reply %q", nick, r.Name)
		}
	}
}

func TestIdentityTextRoom(t *testing.T) {
	f := newHub(t, chat.Config{})
	a := f.open(0)
	for what, room := range badText {
		for _, req := range []chat.Request{reqJoin(room), reqLeave(room), reqMembers(room), reqSendRoom(t, room, "1")} {
			if r := f.do(a, req); r.Err == nil || r.Err.Code != chat.CodeInvalidRoom {
				t.Errorf("%s: %v %q: reply %s, want invalid_room", what, req.Op, room, r.Raw)
			}
		}
	}
	if n := len(f.hub.RoomsLocal("")); n != 0 {
		t.Fatalf("%d rooms exist after refused joins", n)
	}
	for _, room := range goodText {
		f.must(a, reqJoin(room))
	}
}

// TestRoomNFC: with RoomNFC, "é" written precomposed and decomposed is one
// room, named in NFC; without it, two.
func TestRoomNFC(t *testing.T) {
	const composed, decomposed = "caf\u00e9", "cafe\u0301"
	for _, nfc := range []bool{false, true} {
		f := newHub(t, chat.Config{RoomNFC: nfc})
		a, b := f.open(0), f.open(1)
		f.must(a, reqJoin(composed))
		r := f.must(b, reqJoin(decomposed))
		rooms := f.hub.RoomsLocal("")
		if !nfc {
			if len(rooms) != 2 || r.Count != 1 {
				t.Fatalf("without RoomNFC: rooms %v, count %d; want two rooms", rooms, r.Count)
			}
			continue
		}
		if len(rooms) != 1 || rooms[0].Room != composed || r.Count != 2 || string(r.Room) != composed {
			t.Fatalf("RoomNFC: rooms %v, reply room %q count %d; want one room %q of 2", rooms, r.Room, r.Count, composed)
		}
		f.tr.reset()
		f.must(b, reqSendRoom(t, decomposed, `"hi"`))
		if d := f.tr.onlyTo(t, a); d.str(t, "room") != composed {
			t.Errorf("message room %q, want %q", d.str(t, "room"), composed)
		}
		f.must(a, reqLeave(decomposed))
	}
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// TestMaxJSONDepth: data nested deeper than MaxJSONDepth (default 64) is
// bad_json; brackets in strings do not count; less than 0 is no bound.
func TestMaxJSONDepth(t *testing.T) {
	cases := []struct {
		max, depth int
		ok         bool
	}{
		{0, chat.DefaultMaxJSONDepth, true},
		{0, chat.DefaultMaxJSONDepth + 1, false},
		{3, 3, true},
		{3, 4, false},
		{-1, 1000, true},
	}
	for _, c := range cases {
		f := newHub(t, chat.Config{MaxJSONDepth: c.max})
		a, b := f.open(0), f.open(1)
		f.must(a, reqJoin("r"))
		f.must(b, reqJoin("r"))
		r := f.do(a, reqSendRoom(t, "r", nested(c.depth)))
		if c.ok {
			r.wantAck(t)
		} else {
			r.wantErr(t, chat.CodeBadJSON)
			if r.Err.Message != chat.ErrTooDeep.Message {
				t.Errorf("max %d depth %d: %v, want ErrTooDeep", c.max, c.depth, r.Err)
			}
		}
		f.must(a, reqSendRoom(t, "r", `{"a":"`+strings.Repeat("[{", 100)+`"}`))
		f.do(a, reqSendTo(t, b.id(), nested(c.depth)))
	}
}

func TestNameLimitsAgree(t *testing.T) {
	if chat.MaxNickLen != names.MaxNickLen || chat.MaxRoomLen != names.MaxRoomLen {
		t.Fatalf("chat limits %d/%d, names %d/%d", chat.MaxNickLen, chat.MaxRoomLen, names.MaxNickLen, names.MaxRoomLen)
	}
}

// syncBackend answers every call at once with answer.
type syncBackend struct {
	kind   chat.CallKind
	answer chat.BackendAnswer
}

func (b *syncBackend) Handles(k chat.CallKind) bool { return k == b.kind }
func (b *syncBackend) Call(k chat.CallKind, body []byte, done func(chat.BackendAnswer)) {
	done(b.answer)
}
func (b *syncBackend) Disconnected([]byte) {}

// TestIdentityTextBackendCommands: a backend's commands are held to the
// same rule: one bad room or nick refuses the whole list (backend_error),
// and nothing runs.
func TestIdentityTextBackendCommands(t *testing.T) {
	for _, cmd := range []string{
		`{"join":"a\u0000b"}`,
		`{"leave":"\u202eevil"}`,
		`{"emit":{"event":"e","to":{"room":"a\u200bb"}}}`,
		`{"set":{"nick":"\u001b[31mred"}}`,
		`{"set":{"nick":"a\u2066b"}}`,
	} {
		f := newHub(t, chat.Config{})
		f.hub.SetBackend(&syncBackend{kind: chat.CallEvent, answer: chat.BackendAnswer{
			Result: []byte(`{"commands":[{"join":"ok"},` + cmd + `]}`)}})
		a := f.open(0)
		r := f.do(a, chat.Request{Op: chat.OpRPC, ID: []byte("1"), Event: []byte("e"), Args: []byte("[]")})
		r.wantErr(t, chat.CodeBackendError)
		if len(a.s.Rooms()) != 0 || a.s.Nick() != "" {
			t.Errorf("%s: rooms %v nick %q after a refused list", cmd, a.s.Rooms(), a.s.Nick())
		}
	}
	// With RoomNFC the commands' rooms are normalised.
	f := newHub(t, chat.Config{RoomNFC: true})
	f.hub.SetBackend(&syncBackend{kind: chat.CallEvent, answer: chat.BackendAnswer{
		Result: []byte(`{"commands":[{"join":"cafe\u0301"}]}`)}})
	a := f.open(0)
	f.must(a, chat.Request{Op: chat.OpRPC, ID: []byte("1"), Event: []byte("e"), Args: []byte("[]")})
	if rooms := a.s.Rooms(); len(rooms) != 1 || rooms[0] != "caf\u00e9" {
		t.Errorf("RoomNFC: rooms %q, want the NFC name", rooms)
	}
}

// TestIdentityTextConnect: the connect answer's nick and rooms follow the
// rule too (backend_error, the client is not accepted).
func TestIdentityTextConnect(t *testing.T) {
	for _, res := range []string{
		`{"nick":"a\u0000"}`,
		`{"nick":"\u202eevil"}`,
		`{"rooms":["ok","a\u200db"]}`,
		`{"rooms":["\u0085"]}`,
	} {
		f := newHub(t, chat.Config{})
		f.hub.SetBackend(&syncBackend{kind: chat.CallConnect, answer: chat.BackendAnswer{Result: []byte(res)}})
		s := f.hub.OpenPending(&fakePeer{}, 0, kindNative, nil)
		var got *chat.Error
		called := false
		f.hub.Connect(s, chat.ConnectInfo{}, func(err *chat.Error, d *chat.Disconnect) { got, called = err, true })
		if !called || got == nil || got.Code != chat.CodeBackendError {
			t.Errorf("%s: called %v, error %v; want backend_error", res, called, got)
		}
		f.hub.Close(s)
	}
	f := newHub(t, chat.Config{RoomNFC: true})
	f.hub.SetBackend(&syncBackend{kind: chat.CallConnect, answer: chat.BackendAnswer{Result: []byte(`{"nick":"\ufffd","rooms":["cafe\u0301"]}`)}})
	s := f.hub.OpenPending(&fakePeer{}, 0, kindNative, nil)
	f.hub.Connect(s, chat.ConnectInfo{}, func(err *chat.Error, d *chat.Disconnect) {
		if err != nil {
			t.Errorf("accepted answer refused: %v", err)
		}
	})
	if rooms := s.Rooms(); len(rooms) != 1 || rooms[0] != "caf\u00e9" || s.Nick() != "\ufffd" {
		t.Errorf("rooms %q nick %q, want the NFC room and U+FFFD", rooms, s.Nick())
	}
}
