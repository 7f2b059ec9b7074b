package native

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chatgate/chatgate/chat"
)

// benchData returns a JSON object of exactly n bytes (n >= 16), shaped like
// a chat message: a few short fields and one long text.
func benchData(n int) []byte {
	const head = `{"kind":"text","seq":42,"text":"`
	const tail = `"}`
	if n < len(head)+len(tail) {
		return []byte(`{"t":"` + strings.Repeat("x", n-8) + `"}`)
	}
	return []byte(head + strings.Repeat("lorem ipsum ", n)[:n-len(head)-len(tail)] + tail)
}

var benchSizes = []int{64, 1024}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func BenchmarkDecodeSend(b *testing.B) {
	for _, size := range benchSizes {
		payload := []byte(`{"type":"send","id":17,"room":"lobby","data":` + string(benchData(size)) + `}`)
		b.Run(sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var req chat.Request
			for b.Loop() {
				if err := Decode(payload, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeSmall(b *testing.B) {
	tests := []struct{ name, in string }{
		{name: "join", in: `{"type":"join","id":1,"room":"lobby"}`},
		{name: "ping", in: `{"type":"ping","id":2}`},
		{name: "nick escaped", in: `{"type":"nick","id":3,"name":"Jos\u00e9"}`},
	}
	for _, tc := range tests {
		payload := []byte(tc.in)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var req chat.Request
			for b.Loop() {
				if err := Decode(payload, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	for _, size := range benchSizes {
		m := chat.Message{Room: []byte("lobby"), From: "c0000000042", Nick: "alice", Data: benchData(size), TS: 1700000000000}
		b.Run(sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Data)))
			var dst []byte
			for b.Loop() {
				dst = Codec{}.AppendMessage(dst[:0], &m)
			}
		})
	}
}

func BenchmarkAppendPresence(b *testing.B) {
	p := chat.Presence{Room: []byte("lobby"), Event: chat.PresenceJoin, ID: "c0000000042", Nick: "alice", Count: 1234}
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		dst = Codec{}.AppendPresence(dst[:0], &p)
	}
}
