package netpoll

import "testing"

func TestNotModified(t *testing.T) {
	tag := []byte(`"abc"`)
	tests := []struct {
		name, inm string
		want      bool
	}{
		{"exact", `"abc"`, true},
		{"weak", `W/"abc"`, true},
		{"list", `"x", "abc"`, true},
		{"spaces", ` "x" ,  "abc" `, true},
		{"star", `*`, true},
		{"other", `"abd"`, false},
		{"unquoted", `abc`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Head: []byte("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + tt.inm + "\r\n\r\n")}
			if got := r.NotModified(tag); got != tt.want {
				t.Errorf("If-None-Match %q: NotModified = %v, want %v", tt.inm, got, tt.want)
			}
		})
	}
	t.Run("no header", func(t *testing.T) {
		r := &Request{Head: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
		if r.NotModified(tag) {
			t.Error("NotModified = true without If-None-Match")
		}
	})
}
