package metrics

// Reconnect-storm metrics (docs/deploy.md, "Reconnect storms"). The
// handshake-rate refusals are a reason of chatgate_handshakes_failed_total
// (HandshakeRateLimited).

func (m *Metrics) newRecoveryReads(f factory) {
	reads := f.counterVec("recovery_reads_total",
		"History reads of resuming sessions, per room: merged=\"false\" read the log, merged=\"true\" were served from another resume's read of the same room (a reconnect storm).",
		"merged")
	m.recoveryReads[0] = reads.WithLabelValues("false")
	m.recoveryReads[1] = reads.WithLabelValues("true")
}

// RecoveryRead counts one room's recovery read of a resuming session:
// merged when it was served from another session's read.
func (m *Metrics) RecoveryRead(merged bool) {
	if m == nil {
		return
	}
	if merged {
		m.recoveryReads[1].Inc()
	} else {
		m.recoveryReads[0].Inc()
	}
}
