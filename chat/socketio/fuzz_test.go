package socketio

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/chatgate/chatgate/chat"
	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// isText reports whether the raw JSON string raw is text: strings that
// are not (invalid UTF-8, lone surrogate escapes) are refused where
// encoding/json decodes them with U+FFFD.
func isText(raw []byte) bool {
	_, ok := jsontext.UnquoteText(raw)
	return ok
}

// The parsers here take whole messages (the frame layer reassembles them),
// so the split property of the streaming parsers does not apply; the
// properties below are round trips and agreement with encoding/json.

var packetErrors = []error{ErrEmpty, ErrPacketType, ErrAttachments, ErrNamespace, ErrAckID, ErrJSON, ErrPayload}

func FuzzParsePacket(f *testing.F) {
	for _, tc := range packetCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range eventCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var p Packet
		err := ParsePacket(b, &p)
		if !bytes.Equal(b, orig) {
			t.Fatal("ParsePacket modified its input")
		}
		if err != nil {
			if !isOneOf(err, packetErrors) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p.Type < Connect || p.Type > BinaryAck {
			t.Fatalf("type %q", p.Type)
		}
		if !within(p.Data, b) || p.Data != nil && len(p.Data) == 0 {
			t.Fatalf("Data %q does not alias the input", p.Data)
		}
		if !bytes.Equal(p.Namespace, rootNamespace) && (!within(p.Namespace, b) || p.Namespace[0] != '/' || bytes.IndexByte(p.Namespace, ',') >= 0) {
			t.Fatalf("Namespace %q", p.Namespace)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("Data %q is not JSON", p.Data)
		}
		if p.ID < 0 || !p.HasID && (p.ID != 0 || p.rawID != nil) {
			t.Fatalf("ID %d/%v", p.ID, p.HasID)
		}
		if p.HasID && (string(p.rawID) != strconv.FormatInt(p.ID, 10)) {
			t.Fatalf("raw id %q for id %d", p.rawID, p.ID)
		}
		if !p.Type.binary() && p.Attachments != 0 {
			t.Fatalf("attachments %d on %v", p.Attachments, p.Type)
		}
		if (p.Type == Event || p.Type == BinaryEvent) != (p.EventName() != nil) {
			t.Fatalf("EventName %q for %v", p.EventName(), p.Type)
		}

		// Re-encoding the parts yields a packet with the same fields.
		out := AppendPacket(nil, &p)
		var q Packet
		if err := ParsePacket(out[1:], &q); err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", out, err)
		}
		checkPacket(t, &q, &p)

		// Whatever encoding/json makes of the payload agrees with the
		// type's rule.
		var v any
		if p.Data != nil {
			if err := json.Unmarshal(p.Data, &v); err != nil {
				return // numbers beyond float64
			}
		}
		switch p.Type {
		case Connect:
			if _, ok := v.(map[string]any); v != nil && !ok {
				t.Fatalf("CONNECT with %T", v)
			}
		case ConnectError:
			if _, ok := v.(map[string]any); !ok {
				t.Fatalf("CONNECT_ERROR with %T", v)
			}
		case Disconnect:
			if v != nil {
				t.Fatalf("DISCONNECT with %T", v)
			}
		case Event, BinaryEvent:
			if a, ok := v.([]any); !ok || len(a) == 0 {
				t.Fatalf("event with %#v", v)
			} else if _, ok := a[0].(string); !ok {
				t.Fatalf("event name %#v", a[0])
			}
		case Ack, BinaryAck:
			if _, ok := v.([]any); !ok {
				t.Fatalf("ack with %T", v)
			}
		}
	})
}

func isOneOf(err error, list []error) bool {
	for _, e := range list {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func FuzzParseEIO(f *testing.F) {
	for _, s := range []string{"", "0{}", "1", "2", "2probe", "3probe", `42["a"]`, "5", "6", "7", "b", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, data, err := ParseEIO(b)
		if err != nil {
			if !isOneOf(err, []error{ErrEmpty, ErrEIOType}) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(b) > 0 && '0' <= b[0] && b[0] <= '6' {
				t.Fatalf("%q rejected", b)
			}
			return
		}
		if byte(typ) != b[0] || typ.String() == "invalid" || !bytes.Equal(data, b[1:]) || !within(data, b) {
			t.Fatalf("ParseEIO(%q) = %v, %q", b, typ, data)
		}
		if out := AppendEIO(nil, typ, data); !bytes.Equal(out, b) {
			t.Fatalf("AppendEIO = %q, want %q", out, b)
		}
	})
}

func FuzzSplitPayload(f *testing.F) {
	for _, s := range []string{"4hello", "4hello\x1ebAQID", "42[\"hello\"]\x1e42[\"world\"]", "", "\x1e", "4a\x1e",
		"b", "bAQIDBA==\x1e6", "b!!", "bAQ\nID", "2\x1e\x1e3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var packets [][]byte
		var rebuilt []byte
		err := SplitPayload(body, func(p []byte) error {
			if len(p) == 0 || bytes.IndexByte(p, RecordSeparator) >= 0 || !within(p, body) {
				t.Fatalf("packet %q", p)
			}
			packets = append(packets, p)
			rebuilt = AppendPayloadPacket(rebuilt, p, false)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.HasPrefix(body, rebuilt) {
				t.Fatalf("packets before the error %q are not a prefix of %q", packets, body)
			}
			return
		}
		if !bytes.Equal(rebuilt, body) {
			t.Fatalf("rejoined %q, want %q", rebuilt, body)
		}
		for _, p := range packets {
			bin, data, err := DecodePollingPacket(p)
			if err != nil {
				if !errors.Is(err, ErrBase64) || !bin {
					t.Fatalf("DecodePollingPacket(%q): %v", p, err)
				}
				continue
			}
			if !bin {
				if !bytes.Equal(data, p) {
					t.Fatalf("text packet %q came back as %q", p, data)
				}
				continue
			}
			// A binary packet re-encodes to one that decodes to the same
			// bytes (the base64 text itself may differ: the decoder skips
			// newlines).
			enc := AppendPayloadPacket(nil, data, true)
			_, again, err := DecodePollingPacket(enc)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("binary %q: re-encoded %q decodes to %q, %v", data, enc, again, err)
			}
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, tc := range eventCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		`2["message",{"room":"a","data":{"x":"\ud83d\ude00\\\"","y":[true,false,null,-0.0e+1]}}]`,
		`2["\u006eick","\u00e9\ud800\udc00\udbff\udfff"]`,
		"2[\"nick\",\"\xed\xa0\x80\xf4\x90\x80\x80\"]",
		`52-["message",{"to":"k","data":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]}]`,
	} {
		f.Add([]byte(s))
	}
	protocolErrors := []error{ErrNotEvent, ErrOtherNamespace, ErrAttachments, ErrPlaceholder}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if ParsePacket(b, &p) != nil {
			return
		}
		// As many attachments as announced, each unique.
		var att [][]byte
		for i := range p.Attachments {
			att = append(att, []byte{byte(i)})
		}
		var req chat.Request
		err := DecodeEvent(&p, att, &req)
		var ce *chat.Error
		if err != nil && !errors.As(err, &ce) {
			if !isOneOf(err, protocolErrors) {
				t.Fatalf("unexpected error %v", err)
			}
			if p.Type == Event && isRoot(p.Namespace) {
				t.Fatalf("text event on / failed with %v", err)
			}
			return
		}
		if p.Type != Event && p.Type != BinaryEvent || !isRoot(p.Namespace) {
			t.Fatalf("%v on %q accepted", p.Type, p.Namespace)
		}
		if p.Type == BinaryEvent {
			if n, err := CountPlaceholders(p.Data); err != nil || n != p.Attachments {
				t.Fatalf("accepted with %d placeholders (%v) for %d attachments", n, err, p.Attachments)
			}
		}
		if p.HasID != (req.ID != nil) || p.HasID && string(req.ID) != strconv.FormatInt(p.ID, 10) {
			t.Fatalf("ID %q for %d/%v", req.ID, p.ID, p.HasID)
		}
		if req.Data != nil && (!json.Valid(req.Data) || !within(req.Data, b)) {
			t.Fatalf("Data %q is not a JSON value from the packet", req.Data)
		}

		// Compare with what encoding/json makes of the same array.
		var arr []json.RawMessage
		var name string
		if json.Unmarshal(p.Data, &arr) != nil || json.Unmarshal(arr[0], &name) != nil {
			return
		}
		wantOp := map[string]chat.Op{"nick": chat.OpNick, "join": chat.OpJoin, "leave": chat.OpLeave, "message": chat.OpSend,
			"rooms": chat.OpRooms, "members": chat.OpMembers, "ping": chat.OpPing}[name]
		if wantOp == chat.OpInvalid {
			// An application event: its name and its arguments, which
			// must be the array without its first element.
			if !isText(arr[0]) {
				if err != chat.ErrBadText || req.Op != chat.OpRPC {
					t.Fatalf("event %s: op %v err %v, want bad text", arr[0], req.Op, err)
				}
				return
			}
			if err != nil || req.Op != chat.OpRPC || string(req.Event) != name {
				t.Fatalf("event %q: op %v event %q err %v", name, req.Op, req.Event, err)
			}
			var args []json.RawMessage
			if json.Unmarshal(req.Args, &args) != nil || len(args) != len(arr)-1 {
				t.Fatalf("event %q: args %q from %q", name, req.Args, p.Data)
			}
			return
		}
		if req.Op != wantOp {
			t.Fatalf("event %q: op %v", name, req.Op)
		}
		var arg json.RawMessage
		if len(arr) > 1 {
			arg = arr[1]
		}
		str := func(raw json.RawMessage) (string, bool) {
			var s string
			return s, raw != nil && raw[0] == '"' && json.Unmarshal(raw, &s) == nil
		}
		checkString := func(field string, has bool, got []byte, raw json.RawMessage, missing, notText error) {
			want, ok := str(raw)
			if !ok {
				if err != missing {
					t.Fatalf("%s: err %v for %s", field, err, raw)
				}
				return
			}
			if !isText(raw) {
				if err != notText {
					t.Fatalf("%s: err %v for %s, want %v", field, err, raw, notText)
				}
				return
			}
			if err != nil || !has || string(got) != want {
				t.Fatalf("%s = %q (present %v, err %v), encoding/json decodes %q", field, got, has, err, want)
			}
		}
		switch wantOp {
		case chat.OpNick:
			checkString("name", req.HasName, req.Name, arg, chat.ErrMissingName, chat.ErrNickText)
		case chat.OpJoin, chat.OpLeave, chat.OpMembers:
			if wantOp == chat.OpMembers && len(arr) > 2 && (err == chat.ErrBadLimit || err == chat.ErrBadCursor) {
				break // the list's options (arr[2]), as chat.Request.SetList reads them
			}
			checkString("room", req.HasRoom, req.Room, arg, chat.ErrMissingRoom, chat.ErrRoomText)
		case chat.OpSend:
			var m map[string]json.RawMessage
			if arg == nil || arg[0] != '{' || json.Unmarshal(arg, &m) != nil {
				if err != chat.ErrMissingDest {
					t.Fatalf("message with %s: err %v", arg, err)
				}
				return
			}
			room, hasRoom := str(m["room"])
			to, hasTo := str(m["to"])
			switch {
			case m["room"] != nil && !hasRoom:
				if err != chat.ErrMissingRoom {
					t.Fatalf("room %s: err %v", m["room"], err)
				}
			case hasRoom && !isText(m["room"]):
				if err != chat.ErrRoomText {
					t.Fatalf("room %s: err %v", m["room"], err)
				}
			case m["to"] != nil && !hasTo:
				if err != chat.ErrMissingDest {
					t.Fatalf("room %s to %s: err %v", m["room"], m["to"], err)
				}
			case hasTo && !isText(m["to"]):
				if err != chat.ErrBadText {
					t.Fatalf("to %s: err %v", m["to"], err)
				}
			case !hasRoom && !hasTo:
				if err != chat.ErrMissingDest {
					t.Fatalf("room %s to %s: err %v", m["room"], m["to"], err)
				}
			case m["data"] == nil:
				if err != chat.ErrMissingData {
					t.Fatalf("no data: err %v", err)
				}
			default:
				if err != nil || req.HasRoom != hasRoom || req.HasTo != hasTo || string(req.Room) != room || string(req.To) != to ||
					!bytes.Equal(req.Data, m["data"]) || len(req.Attachments) != len(att) {
					t.Fatalf("message %s: got %+v, %v", arg, req, err)
				}
			}
		}
	})
}

func FuzzPlaceholders(f *testing.F) {
	for _, tc := range countCases {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := CountPlaceholders(data)
		if err != nil {
			if !isOneOf(err, []error{ErrJSON, ErrPlaceholder}) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		att := make([][]byte, n)
		for i := range att {
			att[i] = []byte{byte(i), '"'}
		}
		out, err := InlineAttachments(nil, data, att)
		if err != nil {
			t.Fatalf("InlineAttachments after a count of %d: %v", n, err)
		}
		if !json.Valid(out) {
			t.Fatalf("InlineAttachments(%q) = %q is not JSON", data, out)
		}
		if m, err := CountPlaceholders(out); m != 0 || err != nil {
			t.Fatalf("%d placeholders (%v) left in %q", m, err, out)
		}
		if n == 0 && !bytes.Equal(out, data) {
			t.Fatalf("no placeholders, yet %q became %q", data, out)
		}
	})
}

// FuzzRecoveryFields checks the reading of a CONNECT payload's pid and
// offset against encoding/json: for any valid JSON object, a string pid is
// found exactly when encoding/json finds one, with the same value (when
// the key is written once and the text is valid).
func FuzzRecoveryFields(f *testing.F) {
	for _, s := range []string{`{"pid":"a.b","offset":"12"}`, `{"pid":"x"}`, `{"pid":1}`, `{"offset":"3"}`, `{}`, `[]`, `{"pid":"\u0061"}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, offset, ok := RecoveryFields(b)
		var v map[string]json.RawMessage
		if json.Unmarshal(b, &v) != nil || bytes.Count(b, []byte(`"pid"`)) > 1 || bytes.Count(b, []byte(`"offset"`)) > 1 || bytes.Contains(b, []byte(`\`)) {
			return // only well-formed, unambiguous objects are compared
		}
		var want string
		wantOK := json.Unmarshal(v["pid"], &want) == nil && len(v["pid"]) > 0 && v["pid"][0] == '"'
		if ok != wantOK || ok && pid != want {
			t.Fatalf("RecoveryFields(%q) = %q, %v; encoding/json: %q, %v", b, pid, ok, want, wantOK)
		}
		var wantOff string
		if raw := v["offset"]; ok && len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &wantOff) == nil && offset != wantOff {
			t.Fatalf("RecoveryFields(%q) offset %q, want %q", b, offset, wantOff)
		}
	})
}

// FuzzMsgpackPacket: ParseMsgpack never panics, fails only with its
// errors, and what it accepts is a valid text packet with as many
// attachments as placeholders; translating that back to msgpack and
// parsing it again is stable (the server's msgpack is what its parser
// reads).
func FuzzMsgpackPacket(f *testing.F) {
	for _, tc := range notepackCases {
		b, _ := hex.DecodeString(tc.hex)
		f.Add(b)
	}
	f.Add([]byte("\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1m\xd4\x05\x00"))
	f.Add([]byte("\xdf\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		var p Packet
		text, atts, err := ParseMsgpack(b, &p, nil, nil)
		if !bytes.Equal(b, orig) {
			t.Fatal("ParseMsgpack modified its input")
		}
		if err != nil {
			if !isOneOf(err, append([]error{ErrMsgpack, ErrMsgpackField}, packetErrors...)) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(text) > 8*len(b)+64 {
			t.Fatalf("text of %d bytes from %d", len(text), len(b))
		}
		if p.Attachments != len(atts) {
			t.Fatalf("%d attachments, %d values", p.Attachments, len(atts))
		}
		if n, err := CountPlaceholders(p.Data); p.Attachments > 0 && (err != nil || n != len(atts)) {
			t.Fatalf("placeholders %d, %v", n, err)
		}
		pkt := AppendPacket(nil, &p)
		m, err := AppendMsgpackPacket(nil, pkt, atts)
		if err != nil {
			t.Fatalf("translating %q back: %v", pkt, err)
		}
		var p2 Packet
		_, atts2, err := ParseMsgpack(m, &p2, nil, nil)
		if err != nil {
			t.Fatalf("parsing the translation of %q: %v", pkt, err)
		}
		m2, err := AppendMsgpackPacket(nil, AppendPacket(nil, &p2), atts2)
		if err != nil || !bytes.Equal(m, m2) {
			t.Fatalf("not stable: %q -> % x -> % x (%v)", pkt, m, m2, err)
		}
	})
}
