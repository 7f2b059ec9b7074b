package socketio

import "testing"

// TestAppendWithAckID: the id goes right after the header (type,
// attachment count, namespace) of an encoded event, and every other byte
// is kept; anything that is not an encoded event without an id is
// refused and dst left as it was.
func TestAppendWithAckID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`42["greet","hi"]`, `427["greet","hi"]`},
		{`42["message",{"from":"","data":1}]`, `427["message",{"from":"","data":1}]`},
		{`42/admin,["f"]`, `42/admin,7["f"]`},
		{`451-["f",{"_placeholder":true,"num":0}]`, `451-7["f",{"_placeholder":true,"num":0}]`},
		{`451-/a,["f",{"_placeholder":true,"num":0}]`, `451-/a,7["f",{"_placeholder":true,"num":0}]`},
	} {
		got, ok := AppendWithAckID([]byte("x"), []byte(c.in), 7)
		if !ok || string(got) != "x"+c.want {
			t.Errorf("AppendWithAckID(%q) = %q, %v; want %q", c.in, got, ok, "x"+c.want)
		}
		// The result parses as the same event, now with the id.
		var p Packet
		if err := ParsePacket(got[2:], &p); err != nil || !p.HasID || p.ID != 7 {
			t.Errorf("AppendWithAckID(%q) = %q: parsed %+v, %v; want ack id 7", c.in, got, p, err)
		}
	}
	for _, in := range []string{``, `4`, `42`, `2["f"]`, `43["a"]`, `40`, `423["f"]`, `45-["f"]`, `451["f"]`,
		`42/admin["f"]`, `42/admin`, `3["f"]`} {
		got, ok := AppendWithAckID([]byte("x"), []byte(in), 7)
		if ok || string(got) != "x" {
			t.Errorf("AppendWithAckID(%q) = %q, %v; want refused, dst unchanged", in, got, ok)
		}
	}
	if got, _ := AppendWithAckID(nil, []byte(`42["f"]`), 1<<62); string(got) != `424611686018427387904["f"]` {
		t.Errorf("large id: %q", got)
	}
}
