package socketio

import (
	"encoding/base64"
	"encoding/json"

	"github.com/chatgate/chatgate/chat/internal/jsontext"
)

// Binary attachments (socket.io-protocol v5, "Packet encoding"): a
// BINARY_EVENT or BINARY_ACK replaces each binary value of its payload by a
// placeholder object
//
//	{"_placeholder":true,"num":<index>}
//
// and sends the values themselves as that many binary messages after the
// packet, in index order.
//
// What this package counts as a placeholder: an object with a member
// "_placeholder" whose value is true, and no member whose value is an object
// or an array. Its "num" must then be a non-negative integer written without
// fraction or exponent. Objects whose "_placeholder" is anything but true
// are ordinary data, as in the reference parser. One difference from the
// reference parser, which looks at every object's "_placeholder": an object
// is inspected only up to its first nested value, so an object with a
// nested value before its "_placeholder" member is ordinary data (and one
// with a nested value after "_placeholder":true is an error). Stopping there
// keeps the scan linear in the payload's length however deep it nests; no
// client library writes such objects.

// placeholderScan walks the placeholders of raw JSON in document order.
type placeholderScan struct {
	data []byte
	pos  int
}

// next returns the span and num of the next placeholder. ok is false at
// the end of the data or on error; err is ErrPlaceholder for an object
// that is marked as a placeholder but is not a well-formed one.
func (s *placeholderScan) next() (start, end, num int, ok bool, err error) {
	d := s.data
	for i := s.pos; i < len(d); {
		switch d[i] {
		case '"':
			j := jsontext.SkipString(d, i)
			if j < 0 {
				s.pos = len(d)
				return 0, 0, 0, false, nil
			}
			i = j
			continue
		case '{':
			e, n, k := probePlaceholder(d, i)
			switch k {
			case isPlaceholder:
				s.pos = e
				return i, e, n, true, nil
			case badPlaceholder:
				s.pos = len(d)
				return 0, 0, 0, false, ErrPlaceholder
			}
		}
		i++
	}
	s.pos = len(d)
	return 0, 0, 0, false, nil
}

// probe results.
const (
	notPlaceholder = iota
	isPlaceholder
	badPlaceholder
)

// probePlaceholder inspects the object that starts at d[i], up to its end
// or its first nested value. For a placeholder it returns the index just
// past the object and its num.
func probePlaceholder(d []byte, i int) (end, num, kind int) {
	j := jsontext.SkipSpace(d, i+1)
	if j < len(d) && d[j] == '}' {
		return 0, 0, notPlaceholder
	}
	marked := false
	var numRaw []byte
	for {
		if j >= len(d) || d[j] != '"' {
			return 0, 0, notPlaceholder
		}
		kend := jsontext.SkipString(d, j)
		if kend < 0 {
			return 0, 0, notPlaceholder
		}
		key := d[j+1 : kend-1]
		j = jsontext.SkipSpace(d, kend)
		if j >= len(d) || d[j] != ':' {
			return 0, 0, notPlaceholder
		}
		j = jsontext.SkipSpace(d, j+1)
		if j >= len(d) {
			return 0, 0, notPlaceholder
		}
		if d[j] == '{' || d[j] == '[' {
			if marked {
				return 0, 0, badPlaceholder
			}
			return 0, 0, notPlaceholder
		}
		vend := jsontext.SkipValue(d, j)
		if vend < 0 {
			return 0, 0, notPlaceholder
		}
		// With duplicate keys the last one wins, as with JSON.parse.
		switch {
		case nameIs(key, "_placeholder"):
			marked = string(d[j:vend]) == "true"
		case nameIs(key, "num"):
			numRaw = d[j:vend]
		}
		j = jsontext.SkipSpace(d, vend)
		if j >= len(d) {
			return 0, 0, notPlaceholder
		}
		if d[j] == ',' {
			j = jsontext.SkipSpace(d, j+1)
			continue
		}
		if d[j] != '}' {
			return 0, 0, notPlaceholder
		}
		end = j + 1
		break
	}
	if !marked {
		return 0, 0, notPlaceholder
	}
	// A num beyond len(d) cannot index an attachment of this payload: the
	// limit also keeps the conversion to int safe.
	n, k, ok := parseUint(numRaw, 0, uint64(len(d)))
	if !ok || k != len(numRaw) {
		return 0, 0, badPlaceholder
	}
	return end, int(n), isPlaceholder
}

// CountPlaceholders returns the number of binary placeholders in the raw
// JSON data, the payload of a BINARY_EVENT or BINARY_ACK, after checking
// that their nums are 0..n-1, each exactly once. It fails with ErrJSON if
// data is not valid JSON and ErrPlaceholder if the placeholders are
// malformed or misnumbered. A packet is consistent when the count equals
// its Attachments.
//
// It is safe for concurrent use and allocates only when a num is 512 or
// more, that is, for packets with more than 512 attachments.
func CountPlaceholders(data []byte) (int, error) {
	if !json.Valid(data) {
		return 0, ErrJSON
	}
	return countPlaceholders(data)
}

// countPlaceholders is CountPlaceholders on data known to be valid JSON.
func countPlaceholders(data []byte) (int, error) {
	// One bit per num seen. Most packets carry a few attachments: the
	// array on the stack covers them, and a larger set is allocated only
	// when a num needs it.
	var small [8]uint64
	seen := small[:]
	count, maxNum := 0, -1
	s := placeholderScan{data: data}
	for {
		_, _, num, ok, err := s.next()
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		w := num / 64
		if w >= len(seen) {
			grown := make([]uint64, max(w+1, 2*len(seen)))
			copy(grown, seen)
			seen = grown
		}
		if seen[w]&(1<<(num%64)) != 0 {
			return 0, ErrPlaceholder
		}
		seen[w] |= 1 << (num % 64)
		count++
		maxNum = max(maxNum, num)
	}
	// count distinct nums that all lie below count are exactly 0..count-1.
	if maxNum >= count {
		return 0, ErrPlaceholder
	}
	return count, nil
}

// InlineAttachments appends to dst a copy of the raw JSON data in which
// every binary placeholder is replaced by the attachment it refers to,
// as an object holding its standard base64 encoding:
//
//	{"_placeholder":true,"num":0}  →  {"_binary":"AQIDBA=="}
//
// Everything else is copied byte for byte. This is how a text-only
// protocol (chat/native) delivers a Socket.IO sender's binary data. It
// fails with ErrPlaceholder, returning dst unchanged, if a placeholder is
// malformed or its num has no attachment. data must be valid JSON (as
// Message.Data always is): other input gives unspecified output but never
// panics. It is safe for concurrent use and allocates only if dst must
// grow.
func InlineAttachments(dst, data []byte, attachments [][]byte) ([]byte, error) {
	orig := len(dst)
	s := placeholderScan{data: data}
	copied := 0
	for {
		start, end, num, ok, err := s.next()
		if err != nil {
			return dst[:orig], err
		}
		if !ok {
			break
		}
		if num >= len(attachments) {
			return dst[:orig], ErrPlaceholder
		}
		dst = append(dst, data[copied:start]...)
		dst = append(dst, `{"_binary":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, attachments[num])
		dst = append(dst, '"', '}')
		copied = end
	}
	return append(dst, data[copied:]...), nil
}
