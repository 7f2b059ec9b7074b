package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestOriginsAllowed(t *testing.T) {
	const list = "https://chat.example.com, https://*.example.org, http://localhost:8080, https://[::1]:8443, chrome-extension://abcdef"
	o, err := ParseOrigins(list)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin string
		want   bool
	}{
		// No Origin: not a browser.
		{"", true},
		// Exact.
		{"https://chat.example.com", true},
		{"HTTPS://CHAT.EXAMPLE.COM", true},
		{"https://Chat.Example.Com", true},
		{"https://chat.example.com:443", true}, // default port spelled out
		{"https://chat.example.com:0443", true},
		{"https://chat.example.com:8443", false},
		{"http://chat.example.com", false}, // scheme must match
		{"wss://chat.example.com", false},
		{"https://chat.example.com/", false}, // browsers never send a path
		{"https://chat.example.com/x", false},
		{"https://chat.example.com?x", false},
		{"https://chat.example.com#x", false},
		{"https://chat.example.com.", false}, // trailing dot
		{"https://chat.example.com.evil.com", false},
		{"https://evilchat.example.com", false},
		{"https://a.chat.example.com", false}, // exact entries have no subdomains
		{"https://example.com", false},
		{"https://user@chat.example.com", false},
		{"https://chat.example.com@evil.com", false},
		{"https://chat.example.com:", false},
		{"https://chat.example.com:65536", false},
		{"https://chat.example.com:-1", false},
		{" https://chat.example.com", false},
		{"https://chat.example.com ", false},
		{"https://chat%2eexample.com", false},
		{"https://chat.example.com\x00", false},
		// Wildcard subdomains.
		{"https://a.example.org", true},
		{"https://a.b.example.org", true},
		{"https://A.EXAMPLE.ORG", true},
		{"https://a.example.org:443", true},
		{"https://example.org", false}, // the bare domain is not a subdomain
		{"https://.example.org", false},
		{"https://a..example.org", false},
		{"https://evil-example.org", false},
		{"https://aexample.org", false},
		{"https://example.org.evil.com", false},
		{"https://a.example.org.evil.com", false},
		{"https://a.example.org:8443", false},
		{"http://a.example.org", false},
		// Ports and other schemes.
		{"http://localhost:8080", true},
		{"http://localhost", false},
		{"http://localhost:80", false},
		{"http://LOCALHOST:8080", true},
		{"https://[::1]:8443", true},
		{"https://[::1]", false},
		{"https://[::2]:8443", false},
		{"https://[::1]8443", false},
		{"https://[::1", false},
		{"chrome-extension://abcdef", true},
		{"chrome-extension://abcdeg", false},
		// Not origins at all.
		{"null", false},
		{"NULL", false},
		{"file://", false},
		{"https://", false},
		{"://chat.example.com", false},
		{"chat.example.com", false},
		{"*", false},
		{"https://*.example.org", false},
		{"1https://chat.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			if got := o.Allowed([]byte(tt.origin)); got != tt.want {
				t.Fatalf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

func TestOriginsAllowAll(t *testing.T) {
	for _, list := range []string{"", " ", ",", "*", "https://a.example.com,*"} {
		o, err := ParseOrigins(list)
		if err != nil {
			t.Fatalf("%q: %v", list, err)
		}
		if !o.AllowAll() {
			t.Errorf("%q: AllowAll = false", list)
		}
		for _, origin := range []string{"https://evil.com", "null", "garbage", ""} {
			if !o.Allowed([]byte(origin)) {
				t.Errorf("%q: Allowed(%q) = false", list, origin)
			}
		}
	}
	var o *Origins
	if !o.Allowed([]byte("https://evil.com")) || !o.AllowAll() || o.String() != "*" {
		t.Error("a nil *Origins must allow everything")
	}
}

func TestParseOriginsErrors(t *testing.T) {
	tests := []struct {
		list string
		want string
	}{
		{"null", "null"},
		{"chat.example.com", "scheme://host"},
		{"https://chat.example.com/", "trailing slash"},
		{"https://chat.example.com/path", "without path"},
		{"https://user@chat.example.com", "user info"},
		{"https://*.com", "two labels"},
		{"https://*", "without path"},
		{"https://*.", "without path"},
		{"https://a.*.example.com", "without path"},
		{"https://*example.com", "without path"},
		{"https://**.example.com", "without path"},
		{"https://chat.example.com:99999", "without path"},
		{"https://chat.example.com,https://", "without path"},
		{"https://bücher.example", "without path"},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			o, err := ParseOrigins(tt.list)
			if err == nil {
				t.Fatalf("ParseOrigins(%q) = %v, want an error", tt.list, o)
			}
			if !errors.Is(err, ErrBadOrigin) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrBadOrigin mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOriginsAllowedNoAlloc(t *testing.T) {
	o, err := ParseOrigins("https://chat.example.com,https://*.example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"https://chat.example.com", "https://a.b.example.org", "https://evil.com:8443", "null"} {
		b := []byte(h)
		if n := testing.AllocsPerRun(100, func() { o.Allowed(b) }); n != 0 {
			t.Errorf("Allowed(%q) allocates %v times", h, n)
		}
	}
}
