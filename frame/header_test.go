package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

func TestParseHeader(t *testing.T) {
	for _, test := range []struct {
		name string
		in   []byte
		want ws.Header
		err  error
	}{
		{
			name: "text 7-bit length unmasked",
			in:   bits("1 000 0001 0 0000101"),
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
		},
		{
			name: "text 7-bit length masked",
			in:   bits("1 000 0001 1 0000101 00000001 00000010 00000011 00000100"),
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5, Masked: true, Mask: [4]byte{1, 2, 3, 4}},
		},
		{
			name: "continuation not final",
			in:   bits("0 000 0000 1 0000000 11111111 00000000 11111111 00000000"),
			want: ws.Header{OpCode: ws.OpContinuation, Masked: true, Mask: [4]byte{0xff, 0, 0xff, 0}},
		},
		{
			name: "binary length 125",
			in:   bits("1 000 0010 1 1111101 00000000 00000000 00000000 00000000"),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 125, Masked: true},
		},
		{
			name: "16-bit length 126",
			in:   bits("1 000 0010 1 1111110 00000000 01111110 00000001 00000010 00000011 00000100"),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 126, Masked: true, Mask: [4]byte{1, 2, 3, 4}},
		},
		{
			name: "16-bit length 65535",
			in:   bits("1 000 0010 0 1111110 11111111 11111111"),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65535},
		},
		{
			name: "16-bit length not minimal",
			in:   bits("1 000 0001 0 1111110 00000000 00000101"),
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5},
		},
		{
			name: "64-bit length 65536",
			in: bits("1 000 0010 1 1111111" +
				"00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000" +
				"00001111 11110000 10101010 01010101"),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536, Masked: true, Mask: [4]byte{0x0f, 0xf0, 0xaa, 0x55}},
		},
		{
			name: "64-bit length max",
			in: bits("1 000 0010 0 1111111" +
				"01111111 11111111 11111111 11111111 11111111 11111111 11111111 11111111"),
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1<<63 - 1},
		},
		{
			name: "64-bit length MSB set",
			in: bits("1 000 0010 1 1111111" +
				"10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"),
			err: ErrLength,
		},
		{
			name: "rsv bits",
			in:   bits("1 101 1001 0 0000000"),
			want: ws.Header{Fin: true, Rsv: ws.Rsv(true, false, true), OpCode: ws.OpPing},
		},
		{
			name: "reserved opcode is parsed",
			in:   bits("1 000 1011 0 0000000"),
			want: ws.Header{Fin: true, OpCode: 0xb},
		},
		{
			name: "close",
			in:   bits("1 000 1000 1 0000010 00000000 00000000 00000000 00000000"),
			want: ws.Header{Fin: true, OpCode: ws.OpClose, Length: 2, Masked: true},
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			h, n, err := ParseHeader(test.in)
			if err != test.err {
				t.Fatalf(
					"ParseHeader() error = %v; want %v",
					err, test.err)
			}
			if err != nil {
				// Every prefix of the length field needs more.
				for i := range 10 {
					if _, _, err := ParseHeader(test.in[:i]); !errors.Is(err, ErrNeedMore) {
						t.Errorf(
							"ParseHeader(%d bytes) error = %v; want ErrNeedMore",
							i, err)
					}
				}
				return
			}
			if h != test.want || n != len(test.in) {
				t.Fatalf(
					"ParseHeader() = %+v, %d; want %+v, %d",
					h, n, test.want, len(test.in))
			}
			// Trailing bytes are not part of the header.
			if h2, n2, err := ParseHeader(append(bytes.Clone(test.in), 0xff, 0x00)); h2 != h || n2 != n || err != nil {
				t.Errorf(
					"ParseHeader() with trailing bytes = %+v, %d, %v",
					h2, n2, err)
			}
			// Need more at every truncation.
			for i := range len(test.in) {
				if _, n, err := ParseHeader(test.in[:i]); !errors.Is(err, ErrNeedMore) || n != 0 {
					t.Errorf(
						"ParseHeader(%d of %d bytes) = %d, %v; want ErrNeedMore",
						i, len(test.in), n, err)
				}
			}
			// The same bytes as gobwas/ws reads.
			wh, werr := ws.ReadHeader(bytes.NewReader(test.in))
			if werr != nil || wh != h {
				t.Errorf(
					"ws.ReadHeader() = %+v, %v",
					wh, werr)
			}
		})
	}
}

func TestAppendHeader(t *testing.T) {
	for _, test := range []struct {
		name   string
		op     ws.OpCode
		length int
		want   []byte
	}{
		{
			name:   "empty ping",
			op:     ws.OpPing,
			length: 0,
			want:   bits("1 000 1001 0 0000000"),
		},
		{
			name:   "text 125",
			op:     ws.OpText,
			length: 125,
			want:   bits("1 000 0001 0 1111101"),
		},
		{
			name:   "text 126",
			op:     ws.OpText,
			length: 126,
			want:   bits("1 000 0001 0 1111110 00000000 01111110"),
		},
		{
			name:   "binary 65535",
			op:     ws.OpBinary,
			length: 65535,
			want:   bits("1 000 0010 0 1111110 11111111 11111111"),
		},
		{
			name:   "binary 65536",
			op:     ws.OpBinary,
			length: 65536,
			want: bits("1 000 0010 0 1111111" +
				"00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000"),
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			prefix := []byte("xy")
			got := AppendHeader(prefix, test.op, test.length)
			if !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], test.want) {
				t.Fatalf(
					"AppendHeader() = %08b; want %08b",
					got[2:], test.want)
			}
			if n := HeaderLen(test.length); n != len(test.want) {
				t.Errorf(
					"HeaderLen() = %d; want %d",
					n, len(test.want))
			}
			room := make([]byte, MaxHeaderLen)
			n := putHeader(room, test.op, test.length)
			if !bytes.Equal(room[MaxHeaderLen-n:], test.want) {
				t.Errorf(
					"putHeader() = %08b; want %08b",
					room[MaxHeaderLen-n:], test.want)
			}
			h, hn, err := ParseHeader(got[2:])
			want := ws.Header{Fin: true, OpCode: test.op, Length: int64(test.length)}
			if err != nil || hn != len(test.want) || h != want {
				t.Errorf(
					"ParseHeader(AppendHeader()) = %+v, %d, %v",
					h, hn, err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'a'}, size)
		got := AppendFrame(nil, ws.OpBinary, payload)
		r := bytes.NewReader(got)
		h, err := ws.ReadHeader(r)
		if err != nil {
			t.Fatalf("size %d: ws.ReadHeader() error = %v", size, err)
		}
		body := make([]byte, h.Length)
		if _, err := io.ReadFull(r, body); err != nil || r.Len() != 0 {
			t.Fatalf("size %d: payload: %v, %d bytes left over", size, err, r.Len())
		}
		if !h.Fin || h.Masked || h.OpCode != ws.OpBinary || !bytes.Equal(body, payload) {
			t.Errorf("size %d: frame %+v", size, h)
		}
	}
}
