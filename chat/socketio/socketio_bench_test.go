package socketio

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

var benchSizes = []int{64, 1024, 16384}

// BenchmarkParseDecode is the read path of one chat message: a WebSocket
// text payload through ParseEIO, ParsePacket and DecodeEvent.
func BenchmarkParseDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("data=%d", size), func(b *testing.B) {
			payload := []byte(`4212["message",{"room":"r","data":"` + strings.Repeat("x", size) + `"}]`)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			var p Packet
			var req chat.Request
			for b.Loop() {
				_, data, err := ParseEIO(payload)
				if err != nil {
					b.Fatal(err)
				}
				if err := ParsePacket(data, &p); err != nil {
					b.Fatal(err)
				}
				if err := DecodeEvent(&p, nil, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseDecodeBinary adds a BINARY_EVENT's placeholder check.
func BenchmarkParseDecodeBinary(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("data=%d", size), func(b *testing.B) {
			payload := []byte(`451-12["message",{"room":"r","data":{"text":"` + strings.Repeat("x", size) +
				`","img":{"_placeholder":true,"num":0}}}]`)
			att := [][]byte{make([]byte, size)}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			var p Packet
			var req chat.Request
			for b.Loop() {
				if err := ParsePacket(payload[1:], &p); err != nil {
					b.Fatal(err)
				}
				if err := DecodeEvent(&p, att, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendMessage is the broadcast encode, once per room and wire
// encoding, with a reused buffer.
func BenchmarkAppendMessage(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("data=%d", size), func(b *testing.B) {
			m := chat.Message{Room: []byte("lobby"), From: "k3x90000001", Nick: "alice",
				Data: []byte(`"` + strings.Repeat("x", size) + `"`), TS: 1732380000000}
			var c Codec
			buf := c.AppendMessage(nil, &m)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = c.AppendMessage(buf[:0], &m)
			}
		})
	}
}

func BenchmarkAppendReply(b *testing.B) {
	r := chat.Reply{ID: []byte("12"), Op: chat.OpJoin, Room: []byte("lobby"), Count: 42}
	var c Codec
	buf := c.AppendReply(nil, &r)
	b.ReportAllocs()
	for b.Loop() {
		buf = c.AppendReply(buf[:0], &r)
	}
}

func BenchmarkInlineAttachments(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("attachment=%d", size), func(b *testing.B) {
			data := []byte(`{"text":"hi","img":{"_placeholder":true,"num":0}}`)
			att := [][]byte{make([]byte, size)}
			buf, _ := InlineAttachments(nil, data, att)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = InlineAttachments(buf[:0], data, att)
			}
		})
	}
}
