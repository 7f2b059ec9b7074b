package frame

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/valyala/bytebufferpool"
)

// permessage-deflate (RFC 7692), always without context takeover in both
// directions: every message is compressed and inflated on its own, so no
// connection holds a compressor's or decompressor's state (tens of KiB of
// zlib window) between messages. Compressors and decompressors come from
// pools and go back as soon as the message is done; a broadcast can be
// compressed once and the same bytes sent to every member that negotiated
// the extension.

// bitRsv1 is the RSV1 bit of the first header byte: "Per-Message
// Compressed" on the first frame of a message (RFC 7692 §6).
const bitRsv1 = 0x40

// DeflateLevel is the compression level of outgoing messages. BestSpeed:
// chat messages are short, where higher levels gain a few bytes for much
// more CPU (docs/benchmarks.md, "permessage-deflate").
const DeflateLevel = flate.BestSpeed

// DeflateMin is the smallest payload worth compressing. Below it the
// deflate block overhead and the CPU are not paid back, and RFC 7692 lets
// a sender leave any message uncompressed (RSV1 clear).
const DeflateMin = 128

var (
	// ErrInvalidDeflate: a compressed message that does not inflate
	// (RFC 7692 §8.2.3.4 asks to fail the connection), reported with 1007
	// like any payload that is not what its frame claims.
	ErrInvalidDeflate = &Error{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid compressed data"}

	// ErrCompressedBit: RSV1 on a control frame or on a continuation
	// frame, where RFC 7692 §6.1 forbids it.
	ErrCompressedBit = &Error{Code: ws.StatusProtocolError, Reason: "compression bit on a control or continuation frame"}
)

// deflater is one pooled compressor with its output scratch.
type deflater struct {
	w   *wsflate.Writer
	out appendWriter
}

// appendWriter appends what is written to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var deflaters = sync.Pool{New: func() any {
	d := new(deflater)
	d.w = wsflate.NewWriter(&d.out, func(w io.Writer) wsflate.Compressor {
		fw, _ := flate.NewWriter(w, DeflateLevel) // the level is valid
		return fw
	})
	return d
}}

// AppendDeflatedFrame appends payload to dst as one final server frame
// with opcode op, compressed (RSV1 set) when op is a data opcode, payload
// is at least DeflateMin bytes and compression makes it smaller; otherwise
// as AppendFrame does. Each call compresses on its own (no context
// takeover).
func AppendDeflatedFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	if len(payload) < DeflateMin || !op.IsData() || op == ws.OpContinuation {
		return AppendFrame(dst, op, payload)
	}
	d := deflaters.Get().(*deflater)
	d.out.b = d.out.b[:0]
	d.w.Reset(&d.out)
	_, err := d.w.Write(payload)
	if err == nil {
		err = d.w.Flush() // ends on a sync flush whose tail Writer drops (§7.2.1)
	}
	if err != nil || len(d.out.b) >= len(payload) {
		dst = AppendFrame(dst, op, payload)
	} else {
		start := len(dst)
		dst = AppendHeader(dst, op, len(d.out.b))
		dst[start] |= bitRsv1
		dst = append(dst, d.out.b...)
	}
	if cap(d.out.b) > 64<<10 {
		d.out.b = nil // do not pool a rare huge buffer
	}
	deflaters.Put(d)
	return dst
}

// inflater is one pooled decompressor with its input reader.
type inflater struct {
	r   *wsflate.Reader
	src bytes.Reader
}

// flateReader adapts flate's reader to wsflate's ReadResetter, so that a
// pooled inflater resets its decompressor instead of making a new one.
type flateReader struct{ io.ReadCloser }

func (f flateReader) Reset(r io.Reader) { _ = f.ReadCloser.(flate.Resetter).Reset(r, nil) }

var inflaters = sync.Pool{New: func() any {
	in := new(inflater)
	in.r = wsflate.NewReader(&in.src, func(r io.Reader) wsflate.Decompressor {
		return flateReader{flate.NewReader(r)}
	})
	return in
}}

// inflate decompresses the payload of a compressed message into a pooled
// buffer: ErrTooBig once the output passes max bytes (the message size
// limit applies to what the message inflates to), ErrInvalidDeflate when
// the data is not a valid deflate stream.
func inflate(p []byte, limit int) (*bytebufferpool.ByteBuffer, error) {
	in := inflaters.Get().(*inflater)
	defer inflaters.Put(in)
	in.src.Reset(p)
	in.r.Reset(&in.src)
	out := msgPool.Get()
	out.B = out.B[:0]
	for {
		if len(out.B) == cap(out.B) {
			// Grow, but never past what decides the limit: max bytes
			// plus one to see that there is more.
			n := min(max(2*cap(out.B), 512), limit+1)
			if n <= len(out.B) {
				msgPool.Put(out)
				return nil, ErrTooBig
			}
			out.B = slices.Grow(out.B, n-len(out.B))
		}
		n, err := in.r.Read(out.B[len(out.B):cap(out.B)])
		out.B = out.B[:len(out.B)+n]
		if len(out.B) > limit {
			msgPool.Put(out)
			return nil, ErrTooBig
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			msgPool.Put(out)
			return nil, ErrInvalidDeflate
		}
	}
}
