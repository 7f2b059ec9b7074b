package clientip

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseTrusted(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // String() of the result
		wantErr bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "blanks and commas", in: " , ,", want: ""},
		{name: "ipv4 cidr", in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{name: "bare ipv4", in: "127.0.0.1", want: "127.0.0.1"},
		{name: "list with spaces", in: " 10.0.0.0/8 , 192.0.2.7,2001:db8::/32 ", want: "10.0.0.0/8,192.0.2.7,2001:db8::/32"},
		{name: "bare ipv6", in: "::1", want: "::1"},
		{name: "host bits masked", in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{name: "mapped address unmapped", in: "::ffff:10.0.0.1", want: "10.0.0.1"},
		{name: "mapped prefix unmapped", in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{name: "garbage", in: "10.0.0.0/8,nope", wantErr: true},
		{name: "bad bits", in: "10.0.0.0/33", wantErr: true},
		{name: "hostname", in: "proxy.internal", wantErr: true},
		{name: "zone", in: "fe80::1%eth0", wantErr: true},
		{name: "mapped prefix too short", in: "::ffff:0:0/64", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := ParseTrusted(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadTrusted) {
					t.Fatalf("err = %v, want ErrBadTrusted", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTrustedContains(t *testing.T) {
	tr, err := ParseTrusted("10.0.0.0/8, 127.0.0.1, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::ffff:10.9.9.9", true}, // dual-stack sockets report IPv4 peers mapped
		{"2001:db8::5", true},
		{"2001:db9::5", false},
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := tr.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		if tr.Contains(netip.Addr{}) {
			t.Fatal("the zero Addr is trusted")
		}
	})
	t.Run("nil trusts nobody", func(t *testing.T) {
		var nilT *Trusted
		if nilT.Contains(netip.MustParseAddr("127.0.0.1")) || nilT.Len() != 0 || nilT.String() != "" {
			t.Fatal("nil *Trusted trusts someone")
		}
	})
	t.Run("empty trusts nobody", func(t *testing.T) {
		e, _ := ParseTrusted("")
		if e.Contains(netip.MustParseAddr("127.0.0.1")) {
			t.Fatal("empty set trusts 127.0.0.1")
		}
	})
}
