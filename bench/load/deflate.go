package load

import (
	"bytes"
	"compress/flate"
	"errors"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
)

// permessage-deflate on the client side (Config.Compression): the offer,
// the check that the server took it, and compressed client frames.

// errNoDeflate: -compression was asked for and the server did not accept
// permessage-deflate (is the gateway running with -compression?).
var errNoDeflate = errors.New("load: the server did not accept permessage-deflate")

// deflateOffer is the client's offer: permessage-deflate without
// parameters, as Node's ws and browsers offer it (with
// client_max_window_bits), so that client_no_context_takeover in the
// answer is the server's own choice (RFC 7692 §7.1.1.1).
var deflateOffer = httphead.Option{Name: []byte("permessage-deflate")}

// acceptedDeflate reports whether the server's answer accepts
// permessage-deflate.
func acceptedDeflate(exts []httphead.Option) bool {
	for _, o := range exts {
		if bytes.Equal(o.Name, deflateOffer.Name) {
			return true
		}
	}
	return false
}

// appendDeflatedFrame appends payload as one masked client frame,
// compressed on its own (RSV1 set): deflate with a sync flush, without the
// flush's 4-byte tail (RFC 7692 §7.2.1).
func appendDeflatedFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed) // the level is valid
	_, _ = fw.Write(payload)
	_ = fw.Flush()
	z := bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
	start := len(dst)
	dst = appendFrame(dst, op, z)
	dst[start] |= 0x40 // RSV1: compressed
	return dst
}
