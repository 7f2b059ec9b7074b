package frame

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

var benchSizes = []int{16, 64, 512, 4096}

func benchPayload(size int) string {
	// Mostly ASCII with some multibyte characters, like chat text, cut
	// at a character boundary and padded to size.
	s := strings.Repeat("hello, w\xc3\xb6rld \xe2\x82\xac ", size/16+1)[:size]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + strings.Repeat(".", size-len(s))
}

// BenchmarkReaderFeed feeds one whole masked frame per operation: the
// zero-copy path. The copy restores the masked bytes that Feed unmasked
// in place; it is part of the measured time.
func BenchmarkReaderFeed(b *testing.B) {
	for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		for _, size := range benchSizes {
			b.Run(opName(op)+"/"+strconv.Itoa(size), func(b *testing.B) {
				f := cf(true, op, benchPayload(size))
				in := make([]byte, len(f))
				var r Reader
				r.Init(0)
				var h Handler = discard{}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					copy(in, f)
					if err := r.Feed(in, h); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReaderFeedSplit feeds each text frame in two halves, so that the
// payload goes through a pooled buffer.
func BenchmarkReaderFeedSplit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			f := cf(true, ws.OpText, benchPayload(size))
			in := make([]byte, len(f))
			half := len(f) / 2
			var r Reader
			r.Init(0)
			var h Handler = discard{}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(in, f)
				if err := r.Feed(in[:half], h); err != nil {
					b.Fatal(err)
				}
				if err := r.Feed(in[half:], h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			payload := []byte(benchPayload(size))
			dst := make([]byte, 0, size+MaxHeaderLen)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendFrame(dst[:0], ws.OpText, payload)
			}
		})
	}
}
