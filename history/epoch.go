package history

import (
	"crypto/rand"
	"encoding/hex"
)

// randomEpoch returns 16 lowercase hex digits from 8 random bytes: an
// in-memory log starts afresh with each process, and a new epoch is what
// tells clients holding old positions that their history is gone.
func randomEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// roomEpochLen is the length of a room's epoch: 12 hex digits, the top 48
// bits of FNV-1a 64, enough that a position from another room matches by
// chance once in 2^48.
const roomEpochLen = 12

// roomEpoch derives the epoch of room from the log's epoch: the first 12
// hex digits of FNV-1a 64 over logEpoch, a zero byte and room. It returns
// an array so that a comparison needs no allocation.
func roomEpoch(logEpoch string, room []byte) [roomEpochLen]byte {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
		digits   = "0123456789abcdef"
	)
	h := uint64(offset64)
	for i := 0; i < len(logEpoch); i++ {
		h ^= uint64(logEpoch[i])
		h *= prime64
	}
	h *= prime64 // the zero byte: h ^= 0 leaves h unchanged
	for _, c := range room {
		h ^= uint64(c)
		h *= prime64
	}
	var e [roomEpochLen]byte
	for i := range e {
		e[i] = digits[h>>(60-4*i)&0xf]
	}
	return e
}
