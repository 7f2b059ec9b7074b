package frame

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"
)

type readerCase struct {
	name   string
	max    int // 0: DefaultMaxMessage
	failOn string
	in     []byte
	want   []string
	err    error
}

func readerCases() []readerCase {
	long := strings.Repeat("0123456789", 30)  // 300 bytes: 16-bit length
	huge := strings.Repeat("abcdefgh", 10000) // 80000 bytes: 64-bit length
	euro := "\xe2\x82\xac"
	return []readerCase{
		{
			name: "text",
			in:   text("hello"),
			want: []string{"text:hello"},
		},
		{
			name: "binary",
			in:   bin("\x00\xff\x80"),
			want: []string{"binary:\x00\xff\x80"},
		},
		{
			name: "empty text and binary",
			in:   join(text(""), bin("")),
			want: []string{"text:", "binary:"},
		},
		{
			name: "several messages",
			in:   join(text("a"), text("bc"), bin("def"), text("ghij"), text("klmno")),
			want: []string{"text:a", "text:bc", "binary:def", "text:ghij", "text:klmno"},
		},
		{
			name: "16-bit length",
			in:   join(text(long), text("x")),
			want: []string{"text:" + long, "text:x"},
		},
		{
			name: "64-bit length",
			max:  len(huge),
			in:   join(bin(huge), ping("p")),
			want: []string{"binary:" + huge, "ping:p"},
		},
		{
			name: "length not minimally encoded",
			in: join(encode16(ws.Header{
				Fin:    true,
				OpCode: ws.OpText,
				Masked: true,
				Mask:   [4]byte{9, 8, 7, 6},
			}, "short"), text("z")),
			want: []string{"text:short", "text:z"},
		},
		{
			name: "control frames",
			in:   join(ping(""), ping("are you there"), pong("yes"), closeFrame(1000, "bye")),
			want: []string{"ping:", "ping:are you there", "pong:yes", "close:\x03\xe8bye"},
		},
		{
			name: "control frame of 125 bytes",
			in:   ping(long[:125]),
			want: []string{"ping:" + long[:125]},
		},
		{
			name: "empty close",
			in:   cf(true, ws.OpClose, ""),
			want: []string{"close:"},
		},
		{
			name: "fragmented with ping interleaved",
			in: join(
				cf(false, ws.OpText, "Hel"),
				ping("p1"),
				cf(false, ws.OpContinuation, "lo, "),
				pong("p2"),
				cf(true, ws.OpContinuation, "world"),
				text("next"),
			),
			want: []string{"ping:p1", "pong:p2", "text:Hello, world", "text:next"},
		},
		{
			name: "fragmented binary with empty fragments",
			in: join(
				cf(false, ws.OpBinary, ""),
				cf(false, ws.OpContinuation, "ab"),
				cf(false, ws.OpContinuation, ""),
				cf(true, ws.OpContinuation, ""),
			),
			want: []string{"binary:ab"},
		},
		{
			name: "all fragments empty",
			in: join(
				cf(false, ws.OpText, ""),
				cf(true, ws.OpContinuation, ""),
			),
			want: []string{"text:"},
		},
		{
			name: "last fragment carries everything",
			in: join(
				cf(false, ws.OpText, ""),
				cf(true, ws.OpContinuation, "all"),
			),
			want: []string{"text:all"},
		},
		{
			name: "open fragmented message at end of input",
			in:   join(text("a"), cf(false, ws.OpText, "b")),
			want: []string{"text:a"},
		},
		{
			name: "partial frame at end of input",
			in:   join(text("a"), text("bcdef")[:4]),
			want: []string{"text:a"},
		},
		{
			name: "valid multibyte split across fragments",
			in: join(
				cf(false, ws.OpText, euro[:1]),
				cf(false, ws.OpContinuation, euro[1:2]),
				cf(true, ws.OpContinuation, euro[2:]+"\xf0\x9f\x98\x80"),
			),
			want: []string{"text:" + euro + "\xf0\x9f\x98\x80"},
		},
		{
			name: "invalid UTF-8 in first fragment fails before FIN",
			in:   join(text("ok"), cf(false, ws.OpText, "ab\xff")),
			want: []string{"text:ok"},
			err:  ErrInvalidUTF8,
		},
		{
			name: "impossible prefix F4 90 fails before FIN",
			in:   cf(false, ws.OpText, "a\xf4\x90"),
			err:  ErrInvalidUTF8,
		},
		{
			name: "overlong E0 80 fails before FIN",
			in:   cf(false, ws.OpText, "\xe0\x80"),
			err:  ErrInvalidUTF8,
		},
		{
			name: "surrogate ED A0 fails before FIN",
			in:   cf(false, ws.OpText, "\xed\xa0"),
			err:  ErrInvalidUTF8,
		},
		{
			name: "invalid UTF-8 split across fragments",
			in: join(
				cf(false, ws.OpText, euro[:2]),
				ping("between"),
				cf(true, ws.OpContinuation, "("),
			),
			want: []string{"ping:between"},
			err:  ErrInvalidUTF8,
		},
		{
			name: "incomplete UTF-8 at end of message",
			in:   text("abc" + euro[:2]),
			err:  ErrInvalidUTF8,
		},
		{
			name: "incomplete UTF-8 at end of fragmented message",
			in: join(
				cf(false, ws.OpText, "abc"),
				cf(true, ws.OpContinuation, euro[:2]),
			),
			err: ErrInvalidUTF8,
		},
		{
			name: "invalid UTF-8 in binary is fine",
			in:   bin("\xff\xfe"),
			want: []string{"binary:\xff\xfe"},
		},
		{
			name: "continuation without start",
			in:   join(text("a"), cf(true, ws.OpContinuation, "b")),
			want: []string{"text:a"},
			err:  ErrContinuation,
		},
		{
			name: "new message inside fragmented message",
			in:   join(cf(false, ws.OpText, "a"), bin("b")),
			err:  ErrInterleaved,
		},
		{
			name: "unmasked frame",
			in: join(text("a"), encode(ws.Header{
				Fin:    true,
				OpCode: ws.OpText,
			}, []byte("b"))),
			want: []string{"text:a"},
			err:  ErrUnmasked,
		},
		{
			name: "rsv1",
			in:   withRsv(text("a"), ws.Rsv(true, false, false)),
			err:  ErrReservedBits,
		},
		{
			name: "rsv2",
			in:   withRsv(ping("a"), ws.Rsv(false, true, false)),
			err:  ErrReservedBits,
		},
		{
			name: "rsv3",
			in:   withRsv(cf(false, ws.OpBinary, "a"), ws.Rsv(false, false, true)),
			err:  ErrReservedBits,
		},
		{
			name: "reserved opcode 3",
			in:   cf(true, 3, "a"),
			err:  ErrReservedOpcode,
		},
		{
			name: "reserved opcode 7",
			in:   cf(true, 7, ""),
			err:  ErrReservedOpcode,
		},
		{
			name: "reserved opcode B",
			in:   cf(true, 0xb, ""),
			err:  ErrReservedOpcode,
		},
		{
			name: "reserved opcode F",
			in:   cf(true, 0xf, "a"),
			err:  ErrReservedOpcode,
		},
		{
			name: "control frame of 126 bytes",
			in:   ping(long[:126]),
			err:  ErrControlTooLong,
		},
		{
			name: "fragmented control frame",
			in:   cf(false, ws.OpPing, "a"),
			err:  ErrControlFragmented,
		},
		{
			name: "64-bit length MSB set",
			in:   bits("1 000 0010 1 1111111 10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"),
			err:  ErrLength,
		},
		{
			name: "message at the limit",
			max:  10,
			in:   join(text("0123456789"), cf(false, ws.OpBinary, "01234"), cf(true, ws.OpContinuation, "56789")),
			want: []string{"text:0123456789", "binary:0123456789"},
		},
		{
			name: "oversize single frame",
			max:  10,
			in:   join(text("ok"), text("0123456789a")),
			want: []string{"text:ok"},
			err:  ErrTooBig,
		},
		{
			name: "oversize 16-bit length",
			max:  100,
			in:   bin(long),
			err:  ErrTooBig,
		},
		{
			name: "oversize via fragments",
			max:  10,
			in: join(
				cf(false, ws.OpText, "012345"),
				ping("p"),
				cf(true, ws.OpContinuation, "67890"),
			),
			want: []string{"ping:p"},
			err:  ErrTooBig,
		},
		{
			name: "limit does not apply to control frames",
			max:  4,
			in:   ping("12345678"),
			want: []string{"ping:12345678"},
		},
		{
			name: "close of one byte",
			in:   cf(true, ws.OpClose, "\x03"),
			err:  ErrCloseTooShort,
		},
		{
			name: "close with code 1005",
			in:   closeFrame(1005, ""),
			err:  ErrCloseCode,
		},
		{
			name: "close with invalid reason",
			in:   closeFrame(1000, "\xc0\xaf"),
			err:  ErrInvalidUTF8,
		},
		{
			name: "close between fragments",
			in:   join(cf(false, ws.OpText, "a"), closeFrame(4000, "app")),
			want: []string{"close:\x0f\xa0app"},
		},
		{
			name:   "handler error stops feeding",
			failOn: "text:b",
			in:     join(text("a"), text("b"), text("c")),
			want:   []string{"text:a", "text:b"},
			err:    errHandler,
		},
		{
			name:   "handler error on reassembled message",
			failOn: "text:bc",
			in:     join(cf(false, ws.OpText, "b"), cf(true, ws.OpContinuation, "c"), text("d")),
			want:   []string{"text:bc"},
			err:    errHandler,
		},
		{
			name:   "handler error on control frame",
			failOn: "ping:x",
			in:     join(ping("x"), text("d")),
			want:   []string{"ping:x"},
			err:    errHandler,
		},
	}
}

// encode16 is encode with the length always in the 16-bit form.
func encode16(h ws.Header, payload string) []byte {
	f := encode(h, []byte(payload))
	out := append([]byte{f[0], f[1]&0x80 | 126, 0, byte(len(payload))}, f[2:]...)
	return out
}

// withRsv sets RSV bits in the first header of f.
func withRsv(f []byte, rsv byte) []byte {
	f[0] |= rsv << 4
	return f
}

// splits returns the ways an input of n bytes is fed in the tests: whole,
// byte by byte, in two pieces at every offset, and in three pieces at every
// pair of offsets when it is short. Long inputs get two-piece splits around
// the start and the end and at a stride.
func splits(n int) [][]int {
	out := [][]int{nil}
	bytewise := make([]int, 0, n)
	for i := 1; i < n; i++ {
		bytewise = append(bytewise, i)
	}
	out = append(out, bytewise)
	for i := 1; i < n; i++ {
		if n > 4096 && i > 64 && i < n-64 && i%997 != 0 {
			continue
		}
		out = append(out, []int{i})
	}
	if n <= 64 {
		for i := 1; i < n; i++ {
			for j := i + 1; j < n; j++ {
				out = append(out, []int{i, j})
			}
		}
	}
	return out
}

func TestReader(t *testing.T) {
	for _, test := range readerCases() {
		t.Run(test.name, func(t *testing.T) {
			want := result{events: test.want, err: test.err}
			whole := feedPieces(t, test.max, test.failOn, test.in, nil)
			// Inputs either end at a message boundary or are cut on
			// purpose; in both cases every split must agree.
			want.pending = whole.pending
			if !whole.equal(want) {
				t.Fatalf(
					"whole input: got %v; want %v",
					whole, want)
			}
			for _, cuts := range splits(len(test.in)) {
				got := feedPieces(t, test.max, test.failOn, test.in, cuts)
				if !got.equal(whole) {
					if len(cuts) > 8 {
						cuts = cuts[:8]
					}
					t.Fatalf(
						"cut at %v: got %v; want %v",
						cuts, got, whole)
				}
			}
		})
	}
}

func TestReaderPending(t *testing.T) {
	var r Reader
	h := &recorder{}
	in := join(cf(false, ws.OpText, "ab"), cf(true, ws.OpContinuation, "cd"))
	steps := []struct {
		n       int
		pending bool
	}{
		{n: 0, pending: false},
		{n: 1, pending: true},
		{n: 8, pending: true},
		{n: len(in) - 1, pending: true},
		{n: len(in), pending: false},
	}
	prev := 0
	for _, s := range steps {
		if err := r.Feed(in[prev:s.n], h); err != nil {
			t.Fatal(err)
		}
		prev = s.n
		if r.Pending() != s.pending {
			t.Errorf(
				"after %d bytes: Pending() = %v; want %v",
				s.n, r.Pending(), s.pending)
		}
	}
	if len(h.events) != 1 || h.events[0] != "text:abcd" {
		t.Errorf(
			"events = %q",
			h.events)
	}
}

// TestReaderTooBigFromHeader feeds only the header of an oversize frame,
// without its masking key or payload, and expects the error already.
func TestReaderTooBigFromHeader(t *testing.T) {
	for _, test := range []struct {
		name string
		in   []byte
	}{
		{
			name: "7-bit length",
			in:   bits("1 000 0001 1 0001011"),
		},
		{
			name: "16-bit length",
			in:   bits("1 000 0010 1 1111110 00000001 00000000"),
		},
		{
			name: "64-bit length",
			in:   bits("1 000 0010 1 1111111 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000"),
		},
		{
			name: "continuation",
			in: join(
				cf(false, ws.OpBinary, "0123456"),
				bits("1 000 0000 1 0000100"),
			),
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			var r Reader
			r.Init(10)
			h := &recorder{}
			last := len(test.in) - 1
			for i := range last {
				if err := r.Feed(bytes.Clone(test.in[i:i+1]), h); err != nil {
					t.Fatalf(
						"byte %d: Feed() error = %v",
						i, err)
				}
			}
			if err := r.Feed(bytes.Clone(test.in[last:]), h); err != ErrTooBig {
				t.Fatalf(
					"Feed(last header byte) error = %v; want ErrTooBig",
					err)
			}
			if CloseCode(ErrTooBig) != ws.StatusMessageTooBig {
				t.Errorf(
					"CloseCode(ErrTooBig) = %d",
					CloseCode(ErrTooBig))
			}
		})
	}
}

// TestReaderFailFastUTF8 feeds part of a text frame whose payload cannot
// become valid UTF-8 and expects 1007 before the rest of the frame arrives.
func TestReaderFailFastUTF8(t *testing.T) {
	for _, test := range []struct {
		name    string
		payload string
		bad     int // bytes of payload after which the text is invalid
	}{
		{
			name:    "F4 90",
			payload: "hello \xf4\x90\x80\x80 world",
			bad:     8,
		},
		{
			name:    "C0",
			payload: "\xc0\xaf0123456789",
			bad:     1,
		},
		{
			name:    "stray continuation",
			payload: "ab\x80cdefgh",
			bad:     3,
		},
		{
			name:    "F5",
			payload: "abc\xf5defgh",
			bad:     4,
		},
		{
			name:    "truncated sequence before ASCII",
			payload: "abc\xe2\x82xdefgh",
			bad:     6,
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			f := cf(true, ws.OpText, test.payload)
			hdr := len(f) - len(test.payload)
			for cut := hdr; cut < len(f); cut++ {
				var r Reader
				err := r.Feed(bytes.Clone(f[:cut]), &recorder{})
				wantBad := cut-hdr >= test.bad
				if (err == ErrInvalidUTF8) != wantBad || (err != nil && err != ErrInvalidUTF8) {
					t.Fatalf(
						"%d payload bytes: Feed() error = %v; want invalid = %v",
						cut-hdr, err, wantBad)
				}
			}
		})
	}
}

// zeroCopy checks that payloads of whole frames alias the fed bytes.
type zeroCopy struct {
	in      []byte
	aliased int
}

func (z *zeroCopy) within(p []byte) {
	if len(p) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(z.in)))
	ptr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if ptr >= start && ptr+uintptr(len(p)) <= start+uintptr(len(z.in)) {
		z.aliased++
	}
}

func (z *zeroCopy) OnMessage(op ws.OpCode, p []byte) error { z.within(p); return nil }
func (z *zeroCopy) OnControl(op ws.OpCode, p []byte) error { z.within(p); return nil }

func TestReaderZeroCopy(t *testing.T) {
	in := join(text("hello"), bin("world"), ping("ping"), closeFrame(1001, "away"))
	var r Reader
	z := &zeroCopy{in: in}
	if err := r.Feed(in, z); err != nil {
		t.Fatal(err)
	}
	if z.aliased != 4 {
		t.Errorf(
			"%d of 4 payloads alias the input",
			z.aliased)
	}
	if r.buf != nil || r.cbuf != nil {
		t.Errorf("buffers acquired on the zero-copy path")
	}
}

type discard struct{}

func (discard) OnMessage(ws.OpCode, []byte) error { return nil }
func (discard) OnControl(ws.OpCode, []byte) error { return nil }

func TestReaderAllocs(t *testing.T) {
	f := join(text("hello, world"), ping("x"), bin(strings.Repeat("b", 300)))
	in := make([]byte, len(f))
	var r Reader
	r.Init(0)
	var h Handler = discard{}
	allocs := testing.AllocsPerRun(100, func() {
		copy(in, f) // Feed unmasks in place
		if err := r.Feed(in, h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf(
			"Feed of whole frames: %v allocs; want 0",
			allocs)
	}
}

func TestReaderSize(t *testing.T) {
	size := unsafe.Sizeof(Reader{})
	t.Logf("unsafe.Sizeof(Reader{}) = %d bytes", size)
	if size > 128 {
		t.Errorf(
			"Reader is %d bytes; keep it small, it exists once per connection",
			size)
	}
}

func TestReaderReset(t *testing.T) {
	var r Reader
	r.Init(100)
	h := &recorder{}
	// Stop inside a buffered message and inside a buffered control frame.
	in := join(cf(false, ws.OpText, "abc"), ping("12345"))
	if err := r.Feed(bytes.Clone(in[:len(in)-2]), h); err != nil {
		t.Fatal(err)
	}
	if r.buf == nil || r.cbuf == nil {
		t.Fatalf("expected both buffers to be held")
	}
	r.Reset()
	r.Reset()
	if r.buf != nil || r.cbuf != nil || r.Pending() || r.max != 100 {
		t.Fatalf(
			"after Reset: %+v",
			r)
	}
	if err := r.Feed(text("again"), h); err != nil {
		t.Fatal(err)
	}
	if got := h.events[len(h.events)-1]; got != "text:again" {
		t.Errorf(
			"after Reset got %q",
			got)
	}
}

func TestCloseCode(t *testing.T) {
	for _, test := range []struct {
		name string
		err  error
		want ws.StatusCode
	}{
		{
			name: "nil",
			err:  nil,
			want: 1000,
		},
		{
			name: "protocol",
			err:  ErrUnmasked,
			want: 1002,
		},
		{
			name: "utf8",
			err:  ErrInvalidUTF8,
			want: 1007,
		},
		{
			name: "too big",
			err:  ErrTooBig,
			want: 1009,
		},
		{
			name: "wrapped custom",
			err:  wrap(&Error{Code: ws.StatusPolicyViolation, Reason: "spam"}),
			want: 1008,
		},
		{
			name: "need more",
			err:  ErrNeedMore,
			want: 1002,
		},
		{
			name: "other",
			err:  errHandler,
			want: 1011,
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			if got := CloseCode(test.err); got != test.want {
				t.Errorf(
					"CloseCode(%v) = %d; want %d",
					test.err, got, test.want)
			}
		})
	}
	if got := ErrTooBig.Error(); got != "frame: message too big" {
		t.Errorf(
			"Error() = %q",
			got)
	}
}
