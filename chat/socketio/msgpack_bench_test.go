package socketio

import (
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// The msgpack codec on the broadcast path: a room message encoded once for
// every msgpack member (TestMsgpackCodecAppendMessageAllocatesNothing
// holds it to no allocation), and a client's packet translated once.

func BenchmarkMsgpackAppendMessage(b *testing.B) {
	c := MsgpackCodec{JSON: Codec{Offsets: true}}
	m := &chat.Message{Room: []byte("lobby"), From: "k1", Nick: "ann", Data: []byte(`{"text":"hello, world","n":1,"tags":["a","b"]}`), TS: 1700000000000, Offset: 7}
	buf := c.AppendMessage(nil, m)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		buf = c.AppendMessage(buf[:0], m)
	}
}

func BenchmarkParseMsgpack(b *testing.B) {
	in := mustHex(b, notepackCases[2].hex)
	var p Packet
	var text []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		text, _, _ = ParseMsgpack(in, &p, text, nil)
	}
}
