package cluster

import (
	"bytes"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	m := &Message{From: "a000001", Nick: "ann", User: "u1", Data: []byte(`{"x":1}`), TS: 1700000000123,
		Attachments: [][]byte{{0, 1, 2}, {}}}
	emit := &Message{Event: "news", EventArgs: true, Data: []byte(`[1]`), Except: "b000009"}
	// optional says where a message's optional trailing fields (event,
	// flags, except) start: each of them may be cut off whole.
	optional := map[string]int{
		"emit except one connection": len(appendMessage(nil, kindRoom, "a", []byte("r"), &Message{Data: emit.Data})),
	}
	tests := []struct {
		name  string
		enc   []byte
		check func(t *testing.T, w *wireMsg)
	}{
		{"room", appendMessage(nil, kindRoom, "a", []byte("lobby 1.*"), m), func(t *testing.T, w *wireMsg) {
			if w.kind != kindRoom || string(w.room) != "lobby 1.*" || string(w.from) != m.From || string(w.nick) != m.Nick ||
				string(w.user) != m.User || !bytes.Equal(w.data, m.Data) || w.ts != m.TS || len(w.atts) != 2 ||
				!bytes.Equal(w.atts[0], m.Attachments[0]) || len(w.atts[1]) != 0 {
				t.Fatalf("got %+v", w)
			}
		}},
		{"direct", appendMessage(nil, kindDirect, "a", []byte("b000009"), &Message{From: "x", TS: -5}), func(t *testing.T, w *wireMsg) {
			if w.kind != kindDirect || string(w.room) != "b000009" || w.ts != -5 || len(w.atts) != 0 {
				t.Fatalf("got %+v", w)
			}
		}},
		{"emit except one connection", appendMessage(nil, kindRoom, "a", []byte("r"), emit), func(t *testing.T, w *wireMsg) {
			if string(w.event) != "news" || w.mflag != msgEventArgs || string(w.except) != "b000009" {
				t.Fatalf("got %+v", w)
			}
		}},
		{"state", appendState(nil, "a", 77, 300, opJoin, "a000001", "ann", "u", "r"), func(t *testing.T, w *wireMsg) {
			if w.kind != kindState || w.epoch != 77 || w.seq != 300 || w.op != opJoin || string(w.id) != "a000001" ||
				string(w.nick) != "ann" || string(w.user) != "u" || string(w.room) != "r" {
				t.Fatalf("got %+v", w)
			}
		}},
		{"heartbeat", appendHB(nil, "a", 9, 12, hbBye), func(t *testing.T, w *wireMsg) {
			if w.kind != kindHB || w.epoch != 9 || w.seq != 12 || w.flags != hbBye {
				t.Fatalf("got %+v", w)
			}
		}},
		{"snapshot", appendSession(appendSnapHeader(nil, "a", 5, 6, 1, 3, 1), "a1", "n", "u", []string{"r1", "r2"}), func(t *testing.T, w *wireMsg) {
			if w.kind != kindSnap || w.part != 1 || w.parts != 3 || w.nsess != 1 {
				t.Fatalf("got %+v", w)
			}
			ss, err := w.decodeSessions()
			if err != nil || len(ss) != 1 || ss[0].id != "a1" || len(ss[0].rooms) != 2 || ss[0].rooms[1] != "r2" {
				t.Fatalf("sessions %+v, %v", ss, err)
			}
		}},
		{"syncreq", appendSyncReq(nil, "a"), func(t *testing.T, w *wireMsg) {
			if w.kind != kindSyncReq || string(w.origin) != "a" {
				t.Fatalf("got %+v", w)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w wireMsg
			if err := decode(tt.enc, &w); err != nil {
				t.Fatal(err)
			}
			tt.check(t, &w)
			// Every proper prefix is truncated, never a panic or a success
			// that reads past the end — but a message's optional trailing
			// fields (event, flags, except) may be cut off whole.
			for i := 0; i < len(tt.enc); i++ {
				if o := optional[tt.name]; o > 0 && i >= o {
					break // the optional fields' own prefixes: checked whole above
				}
				if err := decode(tt.enc[:i], &w); err == nil && tt.name != "snapshot" {
					t.Fatalf("prefix of %d bytes decoded", i)
				}
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version", []byte{2, 1, 0}},
		{"kind", []byte{1, 99, 0}},
		{"huge length", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		// origin "a", room "r", empty from/nick/user, ts 0, empty data,
		// then 65535 attachments in a payload of no more bytes.
		{"attachment count lies", []byte{1, 1, 1, 'a', 1, 'r', 0, 0, 0, 0, 0, 0xff, 0xff, 0x03}},
		{"part beyond parts", appendSnapHeader(nil, "a", 1, 1, 3, 3, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w wireMsg
			if err := decode(tt.in, &w); err == nil {
				t.Fatalf("decoded %+v", w)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	m := &Message{From: "a1", Nick: "n", Data: []byte(`"hi"`), TS: 3, Attachments: [][]byte{{1, 2}}}
	f.Add(appendMessage(nil, kindRoom, "a", []byte("room"), m))
	f.Add(appendMessage(nil, kindDirect, "a", []byte("b1"), m))
	f.Add(appendState(nil, "a", 1, 2, opLeave, "a1", "n", "u", "r"))
	f.Add(appendHB(nil, "a", 1, 2, 0))
	f.Add(appendSession(appendSnapHeader(nil, "a", 1, 2, 0, 1, 2), "a1", "n", "u", []string{"r"}))
	f.Add(appendSyncReq(nil, "a"))
	f.Add(appendMessage(nil, kindRoom, "a", []byte("r"), &Message{From: "a000001", Data: []byte(` [1,{"a":null}]`), Event: "e", EventArgs: true}))
	f.Add(appendAPI(nil, kindAPIReq, "a", []byte(`{}`)))
	f.Add([]byte{1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var w wireMsg
		if err := decode(b, &w); err != nil {
			return
		}
		// The limits take whatever decodes, without a panic.
		_ = check(&w, "b", 1024, strictIDs)
		if w.kind == kindSnap {
			if ss, err := w.decodeSessions(); err == nil {
				_ = checkSessions(string(w.origin), ss, strictIDs)
			}
		}
		// What decodes re-encodes to a payload that decodes the same way.
		if w.kind == kindRoom {
			m := Message{From: string(w.from), Nick: string(w.nick), User: string(w.user), Data: w.data, TS: w.ts, Attachments: w.atts}
			var w2 wireMsg
			if err := decode(appendMessage(nil, kindRoom, string(w.origin), w.room, &m), &w2); err != nil {
				t.Fatalf("re-encoded payload fails: %v", err)
			}
			if !bytes.Equal(w2.room, w.room) || !bytes.Equal(w2.data, w.data) || len(w2.atts) != len(w.atts) || w2.ts != w.ts {
				t.Fatal("re-encoded payload differs")
			}
		}
	})
}

func TestRoomToken(t *testing.T) {
	for _, room := range []string{"a", "with space", "a.b", "*", ">", "ünï", string(make([]byte, 128))} {
		tok := roomToken([]byte(room))
		for _, c := range tok {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("room %q: token %q has %q", room, tok, c)
			}
		}
		if len(tok) > 171 {
			t.Fatalf("token too long: %d", len(tok))
		}
	}
}
