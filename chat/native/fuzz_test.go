package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// Decode takes whole payloads (the frame layer reassembles messages), so
// the split property of the streaming parsers does not apply here; the
// properties below compare Decode with encoding/json instead.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, s := range []string{
		`{"type":"send","room":"a","data":{"x":"\ud83d\ude00\\\"","y":[true,false,null,-0.0e+1]}}`,
		`{"\u0074ype":"nick","n\u0061me":"\u00e9\ud800\udc00\udbff\udfff"}`,
		"{\"type\":\"nick\",\"name\":\"\xed\xa0\x80\xf4\x90\x80\x80\"}",
		`{"id":1e999,"type":"ping"}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := bytes.Clone(payload)
		var req chat.Request
		err := Decode(payload, &req)
		if !bytes.Equal(payload, orig) {
			t.Fatal("Decode modified its input")
		}

		// Every failure is one of the shared sentinels.
		var ce *chat.Error
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error %#v is not a *chat.Error", err)
		}
		// bad_json exactly when encoding/json finds no object, or an id
		// that is neither a number nor a string. Raw values sidestep its
		// float64 limit on numbers.
		valid := json.Valid(payload)
		bad := !valid || payload[jsontext.SkipSpace(payload, 0)] != '{'
		if !bad {
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(payload, &raw); err != nil {
				t.Fatalf("encoding/json rejects a valid object: %v", err)
			}
			if id, ok := raw["id"]; ok && !isIDToken(id) {
				bad = true
			}
		}
		if errors.Is(err, chat.ErrBadJSON) != bad {
			t.Fatalf("Decode = %v, but json.Valid = %v and bad = %v", err, valid, bad)
		}

		// Raw values are valid JSON and appear verbatim in the payload.
		if req.ID != nil {
			if !isIDToken(req.ID) || !json.Valid(req.ID) || !within(req.ID, payload) {
				t.Fatalf("ID %q is not a number or string from the payload", req.ID)
			}
		}
		if err != nil {
			return
		}
		if req.Op == chat.OpInvalid {
			t.Fatal("success without an op")
		}
		if req.Op == chat.OpSend && req.Data == nil {
			t.Fatal("send without data")
		}
		// Names that decode are text: never U+FFFD standing for what
		// could not be decoded.
		for _, s := range [][]byte{req.Name, req.Room, req.To, req.User, req.Event} {
			if !utf8.Valid(s) {
				t.Fatalf("%q decoded from %q is not UTF-8", s, payload)
			}
		}
		if req.Data != nil && (!json.Valid(req.Data) || !within(req.Data, payload)) {
			t.Fatalf("Data %q is not a JSON value from the payload", req.Data)
		}

		// Compare with what encoding/json makes of the same object. Its
		// map decoding also lets the last duplicate key win. It fails on
		// numbers beyond float64, which Decode passes on raw.
		var m map[string]any
		if json.Unmarshal(payload, &m) != nil {
			return
		}
		if m["type"] != req.Op.String() {
			t.Fatalf("op %v, encoding/json sees type %#v", req.Op, m["type"])
		}
		checkString := func(key string, has bool, got []byte) {
			want, ok := m[key].(string)
			if has != ok {
				t.Fatalf("%s present = %v, encoding/json sees %#v", key, has, m[key])
			}
			if has && string(got) != want {
				t.Fatalf("%s = %q, encoding/json decodes %q", key, got, want)
			}
		}
		checkRaw := func(key string, got []byte) {
			if got == nil {
				return
			}
			var v any
			if err := json.Unmarshal(got, &v); err == nil && !reflect.DeepEqual(v, m[key]) {
				t.Fatalf("%s = %s decodes to %#v, encoding/json sees %#v", key, got, v, m[key])
			}
		}
		switch req.Op {
		case chat.OpNick:
			checkString("name", req.HasName, req.Name)
		case chat.OpJoin, chat.OpLeave, chat.OpMembers:
			checkString("room", req.HasRoom, req.Room)
		case chat.OpSend:
			checkString("room", req.HasRoom, req.Room)
			checkString("to", req.HasTo, req.To)
			checkRaw("data", req.Data)
		}
		checkRaw("id", req.ID)
	})
}
