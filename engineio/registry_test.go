package engineio

import "testing"

func newTestRegistry() *registry {
	return &registry{m: make(map[string]*session), closed: make(map[string]lingerEntry)}
}

// TestClaimUpgrade: the first WebSocket for a session claims it; any
// other while the claim holds (probing or upgraded) finds it taken, and
// one for a session that has ended finds it gone.
func TestClaimUpgrade(t *testing.T) {
	r := newTestRegistry()
	ss := &session{rare: &sessionRare{sid: "a"}}
	r.put(ss)
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"first WebSocket", nil, upgradeClaimed},
		{"second while the first holds it", nil, upgradeTaken},
		{"after the first's probe failed", func() { r.releaseUpgrade(ss) }, upgradeClaimed},
		{"after the session ended", func() { r.remove(ss) }, upgradeGone},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		if got := r.claimUpgrade(ss); got != st.want {
			t.Errorf("%s: claimUpgrade = %d, want %d", st.name, got, st.want)
		}
	}
}

// TestLinger: the sid of a session its client closed answers one GET
// until its deadline, and the sweep forgets it after.
func TestLinger(t *testing.T) {
	const until = 1000
	cases := []struct {
		name string
		run  func(r *registry, ss *session) bool
		want bool
	}{
		{"one GET in time", func(r *registry, ss *session) bool {
			return r.takeLinger(ss, until)
		}, true},
		{"a second GET", func(r *registry, ss *session) bool {
			r.takeLinger(ss, until)
			return r.takeLinger(ss, until)
		}, false},
		{"a GET too late", func(r *registry, ss *session) bool {
			return r.takeLinger(ss, until+1)
		}, false},
		{"a GET after the sweep expired it", func(r *registry, ss *session) bool {
			if !r.expireLinger(ss, until+1) {
				t.Error("expireLinger after the deadline: not over")
			}
			return r.lingering(ss.sid()) != nil || r.takeLinger(ss, until)
		}, false},
		{"still lingering for the sweep before its deadline", func(r *registry, ss *session) bool {
			return !r.expireLinger(ss, until) && r.lingering(ss.sid()) == ss
		}, true},
		{"a session of the same sid", func(r *registry, ss *session) bool {
			return r.takeLinger(&session{rare: &sessionRare{sid: ss.sid()}}, until)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRegistry()
			ss := &session{rare: &sessionRare{sid: "a"}}
			r.linger(ss, until)
			if got := tc.run(r, ss); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
