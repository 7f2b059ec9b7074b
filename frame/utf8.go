package frame

import "unicode/utf8"

// UTF8 validates UTF-8 (RFC 3629) incrementally, for text that arrives in
// chunks split at arbitrary bytes. It fails fast: Feed reports an error as
// soon as the bytes seen so far cannot be the start of valid UTF-8, so a
// text message is rejected before the rest of it arrives (RFC 6455 §8.1).
//
// The zero value is ready to use. It is three bytes: the number of
// continuation bytes still expected and the range the next one must fall in.
type UTF8 struct {
	need   uint8 // continuation bytes still expected; utf8Failed once invalid
	lo, hi uint8 // range of the next continuation byte
}

// utf8Failed marks a validator that has seen invalid input.
const utf8Failed = 0xff

// Feed validates the next chunk p of the text. It returns false if the text
// seen so far, p included, is not a prefix of any valid UTF-8 string; the
// validator then stays failed until Reset.
func (v *UTF8) Feed(p []byte) bool {
	if v.need == utf8Failed {
		return false
	}
	// Finish the sequence left open by the previous chunk.
	i := 0
	for v.need > 0 {
		if i == len(p) {
			return true
		}
		if !v.step(p[i]) {
			return false
		}
		i++
	}
	p = p[i:]

	// Split p into a run of whole sequences, checked by utf8.Valid (fast on
	// ASCII, which dominates chat), and the last sequence when it may be
	// cut by the end of the chunk, which goes through the state machine.
	// A cut sequence has at most 3 bytes, so its lead byte is among the
	// last 3. p[cut] is never a continuation byte, so utf8.Valid(p[:cut])
	// fails iff p[:cut] has a bad sequence or an unfinished one followed
	// by a non-continuation byte: either way p is no valid prefix.
	cut := len(p)
	for j := len(p) - 1; j >= 0 && j >= len(p)-3; j-- {
		if c := p[j]; c&0xc0 != 0x80 {
			if c >= 0xc0 {
				cut = j
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		v.need = utf8Failed
		return false
	}
	for _, c := range p[cut:] {
		if !v.step(c) {
			return false
		}
	}
	return true
}

// step advances the state machine by one byte. The ranges are those of the
// well-formed byte sequences table in RFC 3629 §4, which excludes overlong
// forms, surrogates and code points above U+10FFFF.
func (v *UTF8) step(c byte) bool {
	if v.need > 0 {
		if c < v.lo || c > v.hi {
			v.need = utf8Failed
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xbf
		return true
	}
	switch {
	case c < 0x80:
		return true
	case c >= 0xc2 && c <= 0xdf:
		v.need, v.lo, v.hi = 1, 0x80, 0xbf
	case c == 0xe0:
		v.need, v.lo, v.hi = 2, 0xa0, 0xbf
	case c == 0xed:
		v.need, v.lo, v.hi = 2, 0x80, 0x9f
	case c >= 0xe1 && c <= 0xef:
		v.need, v.lo, v.hi = 2, 0x80, 0xbf
	case c == 0xf0:
		v.need, v.lo, v.hi = 3, 0x90, 0xbf
	case c >= 0xf1 && c <= 0xf3:
		v.need, v.lo, v.hi = 3, 0x80, 0xbf
	case c == 0xf4:
		v.need, v.lo, v.hi = 3, 0x80, 0x8f
	default:
		v.need = utf8Failed
		return false
	}
	return true
}

// Done reports whether the text fed so far is complete valid UTF-8: no
// invalid byte was seen and it does not end inside a sequence. Call it at
// the end of the message.
func (v *UTF8) Done() bool { return v.need == 0 }

// Reset prepares v for a new text.
func (v *UTF8) Reset() { *v = UTF8{} }
