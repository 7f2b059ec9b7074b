package native

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/chatgate/chatgate/chat"
)

// decodeCase is one Decode input and what it must produce. Byte fields of
// want are compared with bytes.Equal, so nil and empty are alike there; the
// Has flags tell them apart.
type decodeCase struct {
	name string
	in   string
	want chat.Request
	err  *chat.Error
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

var decodeCases = []decodeCase{
	// Every request type.
	{name: "nick", in: `{"type":"nick","name":"alice"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("alice"), HasName: true}},
	{name: "join", in: `{"type":"join","room":"lobby"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("lobby"), HasRoom: true}},
	{name: "leave", in: `{"type":"leave","room":"lobby"}`,
		want: chat.Request{Op: chat.OpLeave, Room: []byte("lobby"), HasRoom: true}},
	{name: "members", in: `{"type":"members","room":"lobby"}`,
		want: chat.Request{Op: chat.OpMembers, Room: []byte("lobby"), HasRoom: true}},
	{name: "send to room", in: `{"type":"send","room":"lobby","data":{"text":"hi"}}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("lobby"), HasRoom: true, Data: []byte(`{"text":"hi"}`)}},
	{name: "send to connection", in: `{"type":"send","to":"c42","data":"hi"}`,
		want: chat.Request{Op: chat.OpSend, To: []byte("c42"), HasTo: true, Data: []byte(`"hi"`)}},
	{name: "send with room and to", in: `{"type":"send","room":"r","to":"c","data":1}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, To: []byte("c"), HasTo: true, Data: []byte(`1`)}},
	{name: "rooms", in: `{"type":"rooms"}`, want: chat.Request{Op: chat.OpRooms}},
	{name: "ping", in: `{"type":"ping"}`, want: chat.Request{Op: chat.OpPing}},
	{name: "type last", in: `{"room":"lobby","id":3,"type":"join"}`,
		want: chat.Request{Op: chat.OpJoin, ID: []byte(`3`), Room: []byte("lobby"), HasRoom: true}},
	{name: "empty room is present", in: `{"type":"join","room":""}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte{}, HasRoom: true}},
	{name: "empty name is present", in: `{"type":"nick","name":""}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte{}, HasName: true}},
	{name: "unused fields ignored whatever their kind", in: `{"type":"ping","room":5,"name":null,"to":[],"data":{}}`,
		want: chat.Request{Op: chat.OpPing}},
	{name: "unused room not returned", in: `{"type":"nick","name":"a","room":"r"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("a"), HasName: true}},
	{name: "unknown keys ignored", in: `{"x":{"type":"nick"},"type":"rooms","y":[1,{"z":"}"}],"w":"\"type\""}`,
		want: chat.Request{Op: chat.OpRooms}},
	{name: "empty key ignored", in: `{"":1,"type":"ping"}`, want: chat.Request{Op: chat.OpPing}},

	// Duplicate keys: the last one wins.
	{name: "duplicate room", in: `{"type":"join","room":"a","room":"b"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("b"), HasRoom: true}},
	{name: "duplicate type", in: `{"type":"ping","type":"join","room":"x"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("x"), HasRoom: true}},
	{name: "duplicate wrong kind then string", in: `{"type":"join","room":5,"room":"ok"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("ok"), HasRoom: true}},
	{name: "duplicate string then wrong kind", in: `{"type":"join","room":"ok","room":5}`,
		want: chat.Request{Op: chat.OpJoin}, err: chat.ErrMissingRoom},
	{name: "duplicate id", in: `{"id":1,"type":"ping","id":"two"}`,
		want: chat.Request{Op: chat.OpPing, ID: []byte(`"two"`)}},

	// Keys and type are exact and case-sensitive, but may be escaped.
	{name: "escaped keys", in: `{"ty\u0070e":"join","\u0072\u006f\u006f\u006d":"x"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("x"), HasRoom: true}},
	{name: "escaped type value", in: `{"type":"j\u006Fin","room":"x"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("x"), HasRoom: true}},
	{name: "fully escaped members", in: `{"type":"\u006d\u0065\u006d\u0062\u0065\u0072\u0073","room":"x"}`,
		want: chat.Request{Op: chat.OpMembers, Room: []byte("x"), HasRoom: true}},
	{name: "escaped key too long", in: `{"type":"ping","\u0072oom\u0072oom\u0072oom\u0072oom\u0072oom":1}`,
		want: chat.Request{Op: chat.OpPing}},
	{name: "key case matters", in: `{"Type":"join"}`, err: chat.ErrMissingType},
	{name: "type case matters", in: `{"type":"JOIN","room":"x"}`, err: chat.ErrUnknownType},
	{name: "key with escaped quote", in: `{"t\"ype":"join","type":"ping"}`, want: chat.Request{Op: chat.OpPing}},

	// Unquoting.
	{name: "escape latin", in: `{"type":"nick","name":"caf\u00e9"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("café"), HasName: true}},
	{name: "escape surrogate pair", in: `{"type":"nick","name":"\ud83d\ude00!"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("😀!"), HasName: true}},
	{name: "escape uppercase hex", in: `{"type":"nick","name":"\uD83D\uDE00"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("😀"), HasName: true}},
	{name: "short escapes", in: `{"type":"nick","name":"a\nb\"c\\d\/e\bf\fg\rh\ti"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("a\nb\"c\\d/e\bf\fg\rh\ti"), HasName: true}},
	{name: "escaped backslash before quote", in: `{"type":"join","room":"a\\"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte(`a\`), HasRoom: true}},
	{name: "escaped quotes", in: `{"type":"join","room":"\"\\\""}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte(`"\"`), HasRoom: true}},
	// Strings that are not text are refused, not collapsed to U+FFFD:
	// "\ud800" must not name what "\ufffd" names.
	{name: "lone high surrogate", in: `{"type":"nick","name":"a\ud800b"}`,
		want: chat.Request{Op: chat.OpNick}, err: chat.ErrNickText},
	{name: "lone low surrogate", in: `{"type":"nick","name":"\udc00"}`,
		want: chat.Request{Op: chat.OpNick}, err: chat.ErrNickText},
	{name: "high surrogate then escape", in: `{"type":"nick","name":"\ud800\u0041"}`,
		want: chat.Request{Op: chat.OpNick}, err: chat.ErrNickText},
	{name: "two high surrogates then low", in: `{"type":"nick","name":"\ud800\ud83d\ude00"}`,
		want: chat.Request{Op: chat.OpNick}, err: chat.ErrNickText},
	{name: "reversed pair", in: `{"type":"join","room":"\ude00\ud83d"}`,
		want: chat.Request{Op: chat.OpJoin}, err: chat.ErrRoomText},
	{name: "lone surrogate room", in: `{"type":"join","room":"\ud800"}`,
		want: chat.Request{Op: chat.OpJoin}, err: chat.ErrRoomText},
	{name: "lone surrogate send room", in: `{"type":"send","room":"\udfff","data":1}`,
		want: chat.Request{Op: chat.OpSend}, err: chat.ErrRoomText},
	{name: "lone surrogate to", in: `{"type":"send","to":"\ud800","data":1}`,
		want: chat.Request{Op: chat.OpSend}, err: chat.ErrBadText},
	{name: "lone surrogate user", in: `{"type":"send","user":"u\udbff","data":1}`,
		want: chat.Request{Op: chat.OpSend}, err: chat.ErrBadText},
	{name: "lone surrogate event", in: `{"type":"rpc","event":"\ud800"}`,
		want: chat.Request{Op: chat.OpRPC}, err: chat.ErrBadText},
	{name: "escaped pair", in: `{"type":"nick","name":"\ud83d\ude00"}`,
		want: chat.Request{Op: chat.OpNick, Name: []byte("😀"), HasName: true}},
	{name: "real U+FFFD", in: `{"type":"join","room":"\ufffd"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("\uFFFD"), HasRoom: true}},
	{name: "raw U+FFFD", in: "{\"type\":\"join\",\"room\":\"\uFFFD\"}",
		want: chat.Request{Op: chat.OpJoin, Room: []byte("\uFFFD"), HasRoom: true}},
	{name: "surrogate in data kept", in: `{"type":"send","room":"r","data":"\ud800"}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`"\ud800"`)}},
	{name: "raw utf8", in: `{"type":"join","room":"café 😀"}`,
		want: chat.Request{Op: chat.OpJoin, Room: []byte("café 😀"), HasRoom: true}},
	{name: "raw invalid utf8", in: "{\"type\":\"join\",\"room\":\"a\xffb\xe2\x82\"}",
		want: chat.Request{Op: chat.OpJoin}, err: chat.ErrRoomText},
	{name: "escaped to", in: `{"type":"send","to":"c\u0031","data":0}`,
		want: chat.Request{Op: chat.OpSend, To: []byte("c1"), HasTo: true, Data: []byte("0")}},

	// Whitespace anywhere JSON allows it; data comes back without it.
	{name: "whitespace", in: " \t\r\n{ \"type\" :\n\"send\" , \"room\"\t: \"r\" ,\r\n\"data\" : \n {\"a\" : 1} \n } \n",
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`{"a" : 1}`)}},
	{name: "empty object with space", in: ` { } `, err: chat.ErrMissingType},

	// Every kind of data, byte for byte.
	{name: "data object", in: `{"type":"send","room":"r","data":{"a":[1,{"b":null}],"c":"}]"}}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`{"a":[1,{"b":null}],"c":"}]"}`)}},
	{name: "data array", in: `{"type":"send","room":"r","data":[1, "two", [3], {"4":4}]}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`[1, "two", [3], {"4":4}]`)}},
	{name: "data empty object", in: `{"type":"send","room":"r","data":{}}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`{}`)}},
	{name: "data empty array", in: `{"type":"send","room":"r","data":[]}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`[]`)}},
	{name: "data string", in: `{"type":"send","room":"r","data":"a \"q\" \\ \u00e9 ]}"}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`"a \"q\" \\ \u00e9 ]}"`)}},
	{name: "data string ending in backslash", in: `{"type":"send","room":"r","data":"\\"}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`"\\"`)}},
	{name: "data number", in: `{"type":"send","room":"r","data":-12.5e+3}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`-12.5e+3`)}},
	{name: "data true", in: `{"type":"send","room":"r","data":true}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`true`)}},
	{name: "data false", in: `{"type":"send","room":"r","data":false}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`false`)}},
	{name: "data null is present", in: `{"type":"send","room":"r","data":null}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`null`)}},
	{name: "data first", in: `{"data":[{"room":"x"}],"room":"r","type":"send"}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(`[{"room":"x"}]`)}},
	{name: "deep nesting", in: `{"type":"send","room":"r","data":` + nested(9000) + `}`,
		want: chat.Request{Op: chat.OpSend, Room: []byte("r"), HasRoom: true, Data: []byte(nested(9000))}},
	// encoding/json's validator bounds nesting at 10000 levels.
	{name: "too deep", in: `{"type":"send","room":"r","data":` + nested(20000) + `}`, err: chat.ErrBadJSON},

	// id.
	{name: "id number", in: `{"type":"ping","id":42}`, want: chat.Request{Op: chat.OpPing, ID: []byte(`42`)}},
	{name: "id negative float", in: `{"type":"ping","id":-1.5e2}`, want: chat.Request{Op: chat.OpPing, ID: []byte(`-1.5e2`)}},
	{name: "id string", in: `{"type":"ping","id":"abc"}`, want: chat.Request{Op: chat.OpPing, ID: []byte(`"abc"`)}},
	{name: "id string raw with escapes", in: `{"type":"ping","id":"a\"b\u00e9"}`,
		want: chat.Request{Op: chat.OpPing, ID: []byte(`"a\"b\u00e9"`)}},
	{name: "id empty string", in: `{"type":"ping","id":""}`, want: chat.Request{Op: chat.OpPing, ID: []byte(`""`)}},
	{name: "id absent", in: `{"type":"ping"}`, want: chat.Request{Op: chat.OpPing}},
	{name: "id null", in: `{"type":"ping","id":null}`, err: chat.ErrBadJSON},
	{name: "id true", in: `{"type":"ping","id":true}`, err: chat.ErrBadJSON},
	{name: "id object", in: `{"type":"ping","id":{"n":1}}`, err: chat.ErrBadJSON},
	{name: "id array", in: `{"type":"ping","id":[1]}`, err: chat.ErrBadJSON},
	{name: "id before bad id wins over type", in: `{"id":null}`, err: chat.ErrBadJSON},

	// Errors keep the id so the reply can echo it.
	{name: "missing type", in: `{"id":7}`, want: chat.Request{ID: []byte(`7`)}, err: chat.ErrMissingType},
	{name: "empty object", in: `{}`, err: chat.ErrMissingType},
	{name: "type number", in: `{"type":1,"id":"x"}`, want: chat.Request{ID: []byte(`"x"`)}, err: chat.ErrMissingType},
	{name: "type null", in: `{"type":null}`, err: chat.ErrMissingType},
	{name: "type array", in: `{"type":["join"]}`, err: chat.ErrMissingType},
	{name: "type object", in: `{"type":{"join":1}}`, err: chat.ErrMissingType},
	{name: "unknown type", in: `{"id":7,"type":"nope"}`, want: chat.Request{ID: []byte(`7`)}, err: chat.ErrUnknownType},
	{name: "empty type", in: `{"type":""}`, err: chat.ErrUnknownType},
	{name: "type with escapes too long", in: `{"type":"` + strings.Repeat(`\u0061`, 20) + `"}`, err: chat.ErrUnknownType},
	{name: "type invalid", in: `{"type":"invalid"}`, err: chat.ErrUnknownType},
	{name: "missing name", in: `{"type":"nick","id":1}`, want: chat.Request{Op: chat.OpNick, ID: []byte(`1`)}, err: chat.ErrMissingName},
	{name: "name number", in: `{"type":"nick","name":5}`, want: chat.Request{Op: chat.OpNick}, err: chat.ErrMissingName},
	{name: "name null", in: `{"type":"nick","name":null}`, want: chat.Request{Op: chat.OpNick}, err: chat.ErrMissingName},
	{name: "missing room join", in: `{"type":"join","id":"j"}`, want: chat.Request{Op: chat.OpJoin, ID: []byte(`"j"`)}, err: chat.ErrMissingRoom},
	{name: "missing room leave", in: `{"type":"leave"}`, want: chat.Request{Op: chat.OpLeave}, err: chat.ErrMissingRoom},
	{name: "missing room members", in: `{"type":"members"}`, want: chat.Request{Op: chat.OpMembers}, err: chat.ErrMissingRoom},
	{name: "room object", in: `{"type":"join","room":{"name":"x"}}`, want: chat.Request{Op: chat.OpJoin}, err: chat.ErrMissingRoom},
	{name: "room array", in: `{"type":"members","room":["x"]}`, want: chat.Request{Op: chat.OpMembers}, err: chat.ErrMissingRoom},
	{name: "missing dest", in: `{"type":"send","data":1,"id":2}`, want: chat.Request{Op: chat.OpSend, ID: []byte(`2`)}, err: chat.ErrMissingDest},
	{name: "to number", in: `{"type":"send","to":5,"data":1}`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingDest},
	{name: "send room wrong kind", in: `{"type":"send","room":true,"to":"c","data":1}`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingRoom},
	{name: "missing data", in: `{"type":"send","room":"r","id":3}`, want: chat.Request{Op: chat.OpSend, ID: []byte(`3`)}, err: chat.ErrMissingData},
	{name: "missing data direct", in: `{"type":"send","to":"c"}`, want: chat.Request{Op: chat.OpSend}, err: chat.ErrMissingData},

	// Not one JSON object.
	{name: "empty payload", in: ``, err: chat.ErrBadJSON},
	{name: "only whitespace", in: " \n\t", err: chat.ErrBadJSON},
	{name: "top-level array", in: `[{"type":"ping"}]`, err: chat.ErrBadJSON},
	{name: "top-level string", in: `"ping"`, err: chat.ErrBadJSON},
	{name: "top-level number", in: `42`, err: chat.ErrBadJSON},
	{name: "top-level null", in: `null`, err: chat.ErrBadJSON},
	{name: "top-level true", in: `true`, err: chat.ErrBadJSON},
	{name: "unclosed object", in: `{"type":"ping"`, err: chat.ErrBadJSON},
	{name: "only brace", in: `{`, err: chat.ErrBadJSON},
	{name: "unclosed string", in: `{"type":"ping`, err: chat.ErrBadJSON},
	{name: "unclosed key", in: `{"ty`, err: chat.ErrBadJSON},
	{name: "missing colon", in: `{"type" "ping"}`, err: chat.ErrBadJSON},
	{name: "missing value", in: `{"type":}`, err: chat.ErrBadJSON},
	{name: "missing comma", in: `{"type":"ping" "id":1}`, err: chat.ErrBadJSON},
	{name: "trailing comma", in: `{"type":"ping",}`, err: chat.ErrBadJSON},
	{name: "trailing garbage", in: `{"type":"ping"} x`, err: chat.ErrBadJSON},
	{name: "two objects", in: `{"type":"ping"}{"type":"ping"}`, err: chat.ErrBadJSON},
	{name: "trailing brace", in: `{"type":"ping"}}`, err: chat.ErrBadJSON},
	{name: "single quotes", in: `{'type':'ping'}`, err: chat.ErrBadJSON},
	{name: "unquoted key", in: `{type:"ping"}`, err: chat.ErrBadJSON},
	{name: "control char in string", in: "{\"type\":\"pi\nng\"}", err: chat.ErrBadJSON},
	{name: "bad escape", in: `{"type":"ping","x":"\q"}`, err: chat.ErrBadJSON},
	{name: "short unicode escape", in: `{"type":"ping","x":"\u12"}`, err: chat.ErrBadJSON},
	{name: "bad literal", in: `{"type":"ping","x":tru}`, err: chat.ErrBadJSON},
	{name: "leading zero", in: `{"type":"ping","x":01}`, err: chat.ErrBadJSON},
	{name: "mismatched brackets", in: `{"type":"send","room":"r","data":[1}`, err: chat.ErrBadJSON},
	{name: "unclosed data", in: `{"type":"send","room":"r","data":{"a":1}`, err: chat.ErrBadJSON},
	{name: "NUL byte", in: "{\"type\":\"ping\"}\x00", err: chat.ErrBadJSON},
	{name: "byte order mark", in: "\ufeff{\"type\":\"ping\"}", err: chat.ErrBadJSON},

	// Invalid JSON still yields an id read before the error, if that id is
	// itself valid JSON.
	{name: "bad json keeps id", in: `{"id":9,"type":"send","room":"a","data":{bad}}`,
		want: chat.Request{ID: []byte(`9`)}, err: chat.ErrBadJSON},
	{name: "bad json keeps string id", in: `{"type":"ping","id":"ok"} trailing`,
		want: chat.Request{ID: []byte(`"ok"`)}, err: chat.ErrBadJSON},
	{name: "bad json invalid id token", in: `{"id":09,"type":"ping"}`, err: chat.ErrBadJSON},
	{name: "bad json invalid id string", in: `{"id":"a\q","type":"ping"}`, err: chat.ErrBadJSON},
	{name: "bad json id after error", in: `{"x":tru e,"id":1}`, err: chat.ErrBadJSON},
}

func TestDecode(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range decodeCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			var req chat.Request
			// Garbage from a previous use must not leak through.
			req.Room, req.HasTo, req.Data = []byte("stale"), true, []byte("1")
			err := Decode([]byte(tc.in), &req)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want nil", tc.in, err)
				}
			} else if err != tc.err {
				t.Fatalf("Decode(%q) = %v, want %v", tc.in, err, tc.err)
			}
			checkRequest(t, &req, &tc.want, err == nil)
		})
	}
}

// checkRequest compares got with want; after an error only ID and Op are
// specified.
func checkRequest(t *testing.T, got, want *chat.Request, full bool) {
	t.Helper()
	if !bytes.Equal(got.ID, want.ID) || (got.ID == nil) != (want.ID == nil) {
		t.Errorf("ID = %q, want %q", got.ID, want.ID)
	}
	if got.Op != want.Op {
		t.Errorf("Op = %v, want %v", got.Op, want.Op)
	}
	if !full {
		return
	}
	if !bytes.Equal(got.Name, want.Name) || got.HasName != want.HasName {
		t.Errorf("Name = %q (%v), want %q (%v)", got.Name, got.HasName, want.Name, want.HasName)
	}
	if !bytes.Equal(got.Room, want.Room) || got.HasRoom != want.HasRoom {
		t.Errorf("Room = %q (%v), want %q (%v)", got.Room, got.HasRoom, want.Room, want.HasRoom)
	}
	if !bytes.Equal(got.To, want.To) || got.HasTo != want.HasTo {
		t.Errorf("To = %q (%v), want %q (%v)", got.To, got.HasTo, want.To, want.HasTo)
	}
	if !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		t.Errorf("Data = %q, want %q", got.Data, want.Data)
	}
}

// within reports whether sub lies inside p's backing array.
func within(sub, p []byte) bool {
	if len(sub) == 0 {
		return true
	}
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(p))
}

func TestDecodeAliasesPayload(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		alias bool // whether Name, Room and To must alias the payload
	}{
		{name: "plain", in: `{"type":"send","id":"i","room":"lobby","to":"c1","data":{"a":1}}`, alias: true},
		{name: "raw utf8", in: `{"type":"send","id":1,"room":"café","to":"😀","data":[]}`, alias: true},
		{name: "escapes", in: `{"type":"send","id":1,"room":"caf\u00e9","to":"a\nb","data":[]}`, alias: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := []byte(tc.in)
			var req chat.Request
			if err := Decode(p, &req); err != nil {
				t.Fatal(err)
			}
			if !within(req.ID, p) || !within(req.Data, p) {
				t.Errorf("ID or Data does not alias the payload")
			}
			for _, s := range [][]byte{req.Room, req.To} {
				if within(s, p) != tc.alias {
					t.Errorf("%q aliases payload: %v, want %v", s, !tc.alias, tc.alias)
				}
			}
		})
	}
}

func TestDecodeErrorsAreChatErrors(t *testing.T) {
	for _, tc := range decodeCases {
		if tc.err == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var req chat.Request
			err := Decode([]byte(tc.in), &req)
			var ce *chat.Error
			if !errors.As(err, &ce) || ce != tc.err || !errors.Is(err, tc.err) {
				t.Fatalf("Decode(%q) = %#v, want the sentinel %v", tc.in, err, tc.err)
			}
		})
	}
}

func TestDecodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	tests := []struct {
		name string
		in   string
	}{
		{name: "send", in: `{"type":"send","id":12,"room":"lobby","data":{"text":"hello","n":[1,2,3]}}`},
		{name: "direct", in: `{"type":"send","id":"x","to":"c1","data":"hi"}`},
		{name: "nick raw utf8", in: `{"type":"nick","name":"José 😀"}`},
		{name: "escaped key and type", in: `{"ty\u0070e":"j\u006fin","room":"r"}`},
		{name: "bad json", in: `{"type":"send","id":1,"data":[}`},
		{name: "unknown type", in: `{"type":"nope"}`},
		{name: "deep data", in: `{"type":"send","room":"r","data":` + nested(500) + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := []byte(tc.in)
			var req chat.Request
			Decode(p, &req) // warm json.Valid's scanner pool
			if n := testing.AllocsPerRun(100, func() { Decode(p, &req) }); n != 0 {
				t.Errorf("Decode allocates %v times per call, want 0", n)
			}
		})
	}
}
