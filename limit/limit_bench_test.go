package limit

import (
	"net/netip"
	"testing"
)

func BenchmarkBucketAllow(b *testing.B) {
	var bk Bucket
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		bk.Allow(now, 1, 20, 40)
	}
}

func BenchmarkConnMessage(b *testing.B) {
	cfg := Config{}.WithDefaults()
	var c Conn
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 50_000_000 // 20 messages/s: always passes
		if c.Message(now, 512, &cfg) != Pass {
			b.Fatal("refused")
		}
	}
}

func BenchmarkStrikesHit(b *testing.B) {
	var s Strikes
	r := StrikeRule{Max: 100, Window: 10e9}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 200_000_000
		s.Hit(now, r)
	}
}

func BenchmarkPerIP(b *testing.B) {
	ips := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("2001:db8::1"),
	}
	for _, ip := range ips {
		b.Run(ip.String(), func(b *testing.B) {
			var p PerIP
			p.Acquire(ip, 0) // create the shard's map
			p.Release(ip)
			b.ReportAllocs()
			for b.Loop() {
				if !p.Acquire(ip, 1000) {
					b.Fatal("refused")
				}
				p.Release(ip)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		var p PerIP
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := uint32(0)
			for pb.Next() {
				i++
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				p.Acquire(ip, 1000)
				p.Release(ip)
			}
		})
	})
}

func BenchmarkTotal(b *testing.B) {
	var t Total
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if t.Acquire(1 << 30) {
				t.Release()
			}
		}
	})
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	cfg := Config{}.WithDefaults()
	var c Conn
	var bk Bucket
	var s Strikes
	var p PerIP
	var tot Total
	ip := netip.MustParseAddr("192.0.2.1")
	now := t0
	checks := map[string]func(){
		"Bucket.Allow":  func() { now++; bk.Allow(now, 1, 20, 40) },
		"Conn.Message":  func() { now++; c.Message(now, 100, &cfg) },
		"Strikes.Hit":   func() { now++; s.Hit(now, cfg.Strikes) },
		"PerIP.Acquire": func() { p.Acquire(ip, 10); p.Release(ip) },
		"Total.Acquire": func() { tot.Acquire(10); tot.Release() },
	}
	p.Acquire(ip, 10) // warm the shard map
	p.Release(ip)
	for name, fn := range checks {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}
