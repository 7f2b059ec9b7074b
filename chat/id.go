package chat

import (
	"crypto/rand"
	"sort"
	"sync/atomic"
)

// idAlphabet is Crockford-style base32 in lower case: ids are URL-safe and
// unambiguous when read aloud.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// idGen makes connection ids: a node tag followed by a per-process counter,
// so ids never repeat within a node and nodes with different tags never
// collide.
type idGen struct {
	node string
	seq  atomic.Uint64
}

func (g *idGen) init(node string) {
	if node == "" {
		node = RandomNodeTag()
	}
	g.node = node
}

// RandomNodeTag returns a fresh random node tag: four characters of the id
// alphabet, which prefix every connection id the node hands out.
func RandomNodeTag() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	buf := make([]byte, 4)
	for i := range buf {
		buf[i] = idAlphabet[b[i]&31]
	}
	return string(buf)
}

func (g *idGen) next() string {
	n := g.seq.Add(1)
	var buf [32]byte
	i := len(buf)
	// At least 6 digits so ids have a uniform look in logs.
	for d := 0; d < 6 || n > 0; d++ {
		i--
		buf[i] = idAlphabet[n&31]
		n >>= 5
	}
	return g.node + string(buf[i:])
}

func sortMembers(m []MemberInfo) {
	sort.Slice(m, func(i, j int) bool { return m[i].ID < m[j].ID })
}

func sortConns(c []ConnInfo) {
	sort.Slice(c, func(i, j int) bool { return c[i].Client < c[j].Client })
}
