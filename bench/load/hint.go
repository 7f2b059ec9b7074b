package load

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"
)

// A draining chatgate closes every WebSocket with 1012 (service restart)
// and the reason "server restarting; reconnect=<ms>": the window over
// which its clients should spread their reconnects (docs/disconnects.md).
// The load tool's reconnecting clients honour it as /client.js does: a
// random wait in [0, ms] before the first attempt.

// closeRestart is the close code of a drain (RFC 6455 §7.4.1, IANA).
const closeRestart = 1012

var hintKey = []byte("reconnect=")

// closeInfo returns the status code of a close frame's payload (0 when it
// has none) and the reconnect hint of its reason (0 when it has none).
func closeInfo(payload []byte) (code int, hint time.Duration) {
	if len(payload) < 2 {
		return 0, 0
	}
	code = int(binary.BigEndian.Uint16(payload))
	reason := payload[2:]
	i := bytes.Index(reason, hintKey)
	if i < 0 || (i > 0 && reason[i-1] != ' ' && reason[i-1] != ';') {
		return code, 0
	}
	digits := reason[i+len(hintKey):]
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	ms, err := strconv.ParseInt(string(digits[:n]), 10, 64)
	if err != nil || ms <= 0 {
		return code, 0
	}
	// A hint longer than a minute is a server's mistake, not a plan.
	return code, min(time.Duration(ms)*time.Millisecond, time.Minute)
}

// jitter returns a random wait in [0, hint].
func jitter(hint time.Duration) time.Duration {
	if hint <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(hint) + 1))
}
