package frame

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

func TestParseClose(t *testing.T) {
	for _, test := range []struct {
		name    string
		payload string
		code    ws.StatusCode
		reason  string
		err     error
	}{
		{
			name:    "empty",
			payload: "",
			code:    ws.StatusNoStatusRcvd,
		},
		{
			name:    "one byte",
			payload: "\x03",
			err:     ErrCloseTooShort,
		},
		{
			name:    "1000 no reason",
			payload: "\x03\xe8",
			code:    1000,
		},
		{
			name:    "1000 with reason",
			payload: "\x03\xe8bye \xe2\x82\xac",
			code:    1000,
			reason:  "bye \xe2\x82\xac",
		},
		{
			name:    "1003",
			payload: "\x03\xeb",
			code:    1003,
		},
		{
			name:    "1004 reserved",
			payload: "\x03\xec",
			err:     ErrCloseCode,
		},
		{
			name:    "1005 local only",
			payload: "\x03\xed",
			err:     ErrCloseCode,
		},
		{
			name:    "1006 local only",
			payload: "\x03\xee",
			err:     ErrCloseCode,
		},
		{
			name:    "1007",
			payload: "\x03\xef",
			code:    1007,
		},
		{
			name:    "1014",
			payload: "\x03\xf6",
			code:    1014,
		},
		{
			name:    "1015 local only",
			payload: "\x03\xf7",
			err:     ErrCloseCode,
		},
		{
			name:    "1016 unassigned",
			payload: "\x03\xf8",
			err:     ErrCloseCode,
		},
		{
			name:    "0",
			payload: "\x00\x00",
			err:     ErrCloseCode,
		},
		{
			name:    "999",
			payload: "\x03\xe7",
			err:     ErrCloseCode,
		},
		{
			name:    "2999",
			payload: "\x0b\xb7",
			err:     ErrCloseCode,
		},
		{
			name:    "3000",
			payload: "\x0b\xb8",
			code:    3000,
		},
		{
			name:    "4999",
			payload: "\x13\x87",
			code:    4999,
		},
		{
			name:    "5000",
			payload: "\x13\x88",
			err:     ErrCloseCode,
		},
		{
			name:    "65535",
			payload: "\xff\xff",
			err:     ErrCloseCode,
		},
		{
			name:    "invalid reason",
			payload: "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
			err:     ErrInvalidUTF8,
		},
		{
			name:    "invalid code wins over invalid reason",
			payload: "\x03\xed\xff",
			err:     ErrCloseCode,
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			code, reason, err := ParseClose([]byte(test.payload))
			if err != test.err {
				t.Fatalf(
					"ParseClose() error = %v; want %v",
					err, test.err)
			}
			if err != nil {
				// The Reader reports the same error for the frame.
				res := feedPieces(t, 0, "", cf(true, ws.OpClose, test.payload), nil)
				if res.err != test.err || len(res.events) != 0 {
					t.Errorf(
						"Reader: %v",
						res)
				}
				return
			}
			if code != test.code || string(reason) != test.reason {
				t.Errorf(
					"ParseClose() = %d, %q; want %d, %q",
					code, reason, test.code, test.reason)
			}
		})
	}
}

func TestAppendClose(t *testing.T) {
	euro := "\xe2\x82\xac"
	for _, test := range []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   []byte // payload
	}{
		{
			name: "normal",
			code: 1000,
			want: []byte{0x03, 0xe8},
		},
		{
			name:   "with reason",
			code:   4001,
			reason: "slow",
			want:   []byte("\x0f\xa1slow"),
		},
		{
			name:   "1005 is not sent",
			code:   ws.StatusNoStatusRcvd,
			reason: "dropped",
			want:   []byte{},
		},
		{
			name:   "long reason cut to 123 bytes",
			code:   1001,
			reason: strings.Repeat("a", 200),
			want:   append([]byte{0x03, 0xe9}, strings.Repeat("a", 123)...),
		},
		{
			name:   "long reason cut at a character boundary",
			code:   1001,
			reason: strings.Repeat("a", 122) + euro,
			want:   append([]byte{0x03, 0xe9}, strings.Repeat("a", 122)...),
		},
		{
			name:   "reason of exactly 123 bytes",
			code:   1001,
			reason: strings.Repeat("a", 120) + euro,
			want:   append([]byte{0x03, 0xe9}, strings.Repeat("a", 120)+euro...),
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			got := AppendClose([]byte("x"), test.code, test.reason)
			h, n, err := ParseHeader(got[1:])
			if err != nil || h.OpCode != ws.OpClose || !h.Fin || h.Masked {
				t.Fatalf(
					"header %+v, %v",
					h, err)
			}
			payload := got[1+n:]
			if int(h.Length) != len(payload) || !bytes.Equal(payload, test.want) {
				t.Fatalf(
					"payload = %q; want %q",
					payload, test.want)
			}
			if len(payload) > 125 || !utf8.Valid(payload[min(2, len(payload)):]) {
				t.Errorf("payload is not a valid close payload")
			}
			if len(payload) > 0 {
				if _, _, err := ParseClose(payload); err != nil {
					t.Errorf(
						"ParseClose(AppendClose()) error = %v",
						err)
				}
			}
		})
	}
}

func TestCompiledFrames(t *testing.T) {
	for _, test := range []struct {
		name  string
		frame []byte
		want  []byte
	}{
		{
			name:  "ping",
			frame: PingFrame,
			want:  bits("1 000 1001 0 0000000"),
		},
		{
			name:  "pong",
			frame: PongFrame,
			want:  bits("1 000 1010 0 0000000"),
		},
		{
			name:  "close",
			frame: CloseFrame,
			want:  bits("1 000 1000 0 0000010 00000011 11101000"),
		},
		{
			name:  "close 1009",
			frame: CompiledClose(ws.StatusMessageTooBig),
			want:  bits("1 000 1000 0 0000010 00000011 11110001"),
		},
		{
			name:  "close 4000 not precompiled",
			frame: CompiledClose(4000),
			want:  bits("1 000 1000 0 0000010 00001111 10100000"),
		},
	} {
		t.Run(test.name, func(t *testing.T) {
			if !bytes.Equal(test.frame, test.want) {
				t.Fatalf(
					"frame = %08b; want %08b",
					test.frame, test.want)
			}
			if cap(test.frame) != len(test.frame) {
				t.Errorf("compiled frame has spare capacity; an append would write into it")
			}
		})
	}
	if n := testing.AllocsPerRun(10, func() { _ = CompiledClose(CloseCode(ErrInvalidUTF8)) }); n != 0 {
		t.Errorf(
			"CompiledClose of a standard code: %v allocs",
			n)
	}
}
