package frame

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maskStream turns a stream of unmasked frames into masked client frames,
// so that the fuzzer can write payloads in plain text: each header gets the
// mask bit and a key, and each payload is masked with it. Bytes after the
// first header that does not parse are copied unchanged.
func maskStream(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(in)/2+4)
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for len(in) > 0 {
		h, n, err := ParseHeader(in)
		if err != nil || h.Masked {
			return append(out, in...)
		}
		out = append(out, in[0], in[1]|bitMask)
		out = append(out, in[2:n]...)
		out = append(out, key[:]...)
		end := n + int(min(h.Length, int64(len(in)-n)))
		start := len(out)
		out = append(out, in[n:end]...)
		ws.Cipher(out[start:], key, 0)
		in = in[end:]
		key[0]++
	}
	return out
}

// unmaskStream is the inverse of maskStream for well-formed input, used to
// turn the readerCases into seeds the fuzzer can read.
func unmaskStream(in []byte) []byte {
	in = bytes.Clone(in)
	var out []byte
	for len(in) > 0 {
		h, n, err := ParseHeader(in)
		if err != nil || !h.Masked {
			return append(out, in...)
		}
		out = append(out, in[0], in[1]&^bitMask)
		out = append(out, in[2:n-4]...)
		end := n + int(min(h.Length, int64(len(in)-n)))
		p := in[n:end]
		ws.Cipher(p, h.Mask, 0)
		out = append(out, p...)
		in = in[end:]
	}
	return out
}

// FuzzReader checks that any split of an input gives the same messages,
// control frames, error and final state as the whole input, that the
// Reader never panics, and that what it delivers obeys the rules.
func FuzzReader(f *testing.F) {
	for _, c := range readerCases() {
		if len(c.in) > 4096 {
			continue
		}
		f.Add(c.in, uint16(len(c.in)/2), uint16(len(c.in)/3), uint16(c.max), false)
		f.Add(unmaskStream(c.in), uint16(1), uint16(5), uint16(c.max), true)
	}
	f.Add([]byte("\x01\x03abc\x80\x03def"), uint16(4), uint16(9), uint16(0), true)
	f.Add([]byte("\x01\x02\xe2\x82\x89\x01\x0a\x80\x01\xac"), uint16(3), uint16(7), uint16(0), true)
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16, maxMessage uint16, mask bool) {
		if mask {
			data = maskStream(data)
		}
		if len(data) > 4096 {
			return // long inputs only slow the fuzzer down; tests cover them
		}
		limit := int(maxMessage)
		if limit == 0 {
			limit = DefaultMaxMessage
		}
		whole := feedPieces(t, limit, "", data, nil)
		for _, e := range whole.events {
			op, payload, _ := strings.Cut(e, ":")
			if op == "text" && !utf8.ValidString(payload) {
				t.Fatalf(
					"invalid UTF-8 text delivered: %q",
					payload)
			}
			if (op == "text" || op == "binary") && len(payload) > limit {
				t.Fatalf(
					"message of %d bytes delivered with limit %d",
					len(payload), limit)
			}
			if op == "close" {
				if _, _, err := ParseClose([]byte(payload)); err != nil {
					t.Fatalf(
						"invalid close delivered: %q",
						payload)
				}
			}
		}
		var e *Error
		if whole.err != nil && !errors.As(whole.err, &e) {
			t.Fatalf(
				"error %v is not an *Error",
				whole.err)
		}

		var cuts [][]int
		if n := len(data); n > 1 {
			i, j := 1+int(a)%(n-1), 1+int(b)%(n-1)
			cuts = append(cuts, []int{i}, []int{min(i, j), max(i, j)})
			if n <= 256 {
				cuts = append(cuts, splits(n)[1])
			}
		}
		for _, c := range cuts {
			got := feedPieces(t, limit, "", data, c)
			if !got.equal(whole) {
				if len(c) > 8 {
					c = c[:8]
				}
				t.Fatalf(
					"%q cut at %v: got %v; want %v",
					data, c, got, whole)
			}
		}
	})
}

// FuzzParseHeader checks ParseHeader against ws.ReadHeader and the need
// more result against every truncation.
func FuzzParseHeader(f *testing.F) {
	f.Add(bits("1 000 0001 1 0000101 00000001 00000010 00000011 00000100"))
	f.Add(bits("1 000 0010 1 1111110 00000001 00000000 00000001 00000010 00000011 00000100"))
	f.Add(bits("1 000 0010 0 1111111 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000"))
	f.Add(bits("1 000 0010 0 1111111 10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"))
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		r := bytes.NewReader(b)
		wh, werr := ws.ReadHeader(r)
		switch {
		case err == nil:
			if werr != nil || wh != h || n != len(b)-r.Len() {
				t.Fatalf(
					"ParseHeader(% x) = %+v, %d; ws.ReadHeader = %+v, %d, %v",
					b, h, n, wh, len(b)-r.Len(), werr)
			}
			if n < 2 || n > maxClientHeaderLen {
				t.Fatalf(
					"header size %d",
					n)
			}
			for i := range n {
				if _, _, err := ParseHeader(b[:i]); err != ErrNeedMore {
					t.Fatalf(
						"ParseHeader(% x) error = %v; want ErrNeedMore",
						b[:i], err)
				}
			}
		case err == ErrNeedMore:
			if werr == nil {
				t.Fatalf(
					"ParseHeader(% x) needs more; ws.ReadHeader = %+v",
					b, wh)
			}
		case err == ErrLength:
			// Reported before the masking key, unlike ws.ReadHeader.
			if werr == nil {
				t.Fatalf(
					"ParseHeader(% x) = ErrLength; ws.ReadHeader = %+v",
					b, wh)
			}
		default:
			t.Fatalf(
				"ParseHeader(% x) error = %v",
				b, err)
		}
	})
}

// FuzzUTF8 checks that the incremental validator agrees with utf8.Valid for
// the whole input and fails exactly when the bytes seen so far stop being
// a prefix of valid UTF-8, for any chunking.
func FuzzUTF8(f *testing.F) {
	for _, s := range []string{
		"",
		"hello",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
		"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
		"\xf4\x90\x80\x80",
		"\xe0\x80\xaf",
		"\xed\xa0\x80",
		"ab\xc0\xaf",
		"0123456789abcdef\xe2\x82\xac0123456789abcdef",
	} {
		f.Add([]byte(s), uint16(1), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		checkUTF8(t, data, nil)
		if n := len(data); n > 1 {
			i, j := 1+int(a)%(n-1), 1+int(b)%(n-1)
			checkUTF8(t, data, []int{i})
			checkUTF8(t, data, []int{min(i, j), max(i, j)})
			if n <= 256 {
				checkUTF8(t, data, splits(n)[1])
			}
		}
	})
}
