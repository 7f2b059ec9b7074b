package limit

import "syscall"

// The open-files limit as a ceiling on MaxConnections.
//
// Every connection is a file descriptor. When the process runs out of
// them, accept(2) fails with EMFILE, and gnet treats any accept error
// but EAGAIN/EINTR/ECONNRESET/ECONNABORTED as fatal: the whole engine
// stops, and with it every connection of the node (scripts/scale.sh saw a
// failover cascade through five nodes this way). Refusing connections a
// little before the limit keeps a full node serving the ones it has.

// MinFileReserve is the fewest descriptors CapByOpenFiles leaves for
// what is not a client connection: listeners, the NATS connection, API
// and admin clients, backend calls, history files, and the connection
// being accepted and refused.
const MinFileReserve = 256

// CapByOpenFiles returns the connection limit to use given max (the
// configured MaxConnections; negative for unlimited) and nofile, the
// process's open-files limit: max, or nofile less a reserve (a fiftieth
// of it, at least MinFileReserve, at most half) when max is unlimited or
// above that. capped reports whether max was lowered.
func CapByOpenFiles(max int, nofile uint64) (limit int, capped bool) {
	reserve := max64(nofile/50, MinFileReserve)
	if reserve > nofile/2 {
		reserve = nofile / 2
	}
	ceiling := nofile - reserve
	if ceiling > uint64(^uint(0)>>1) {
		return max, false // no practical limit
	}
	if max < 0 || uint64(max) > ceiling {
		return int(ceiling), true
	}
	return max, false
}

// OpenFiles returns the process's open-files limit (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start), and false
// when it cannot be read or is unlimited.
func OpenFiles() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) {
		return 0, false
	}
	return rl.Cur, true
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
