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
	for d := 0; d < idMinDigits || n > 0; d++ {
		i--
		buf[i] = idAlphabet[n&31]
		n >>= 5
	}
	return g.node + string(buf[i:])
}

// idMinDigits is the fewest base-32 digits of an id's sequence: shorter
// numbers are padded with zeros so ids have a uniform look in logs.
const idMinDigits = 6

// idDigit maps a byte of the id alphabet to its value, -1 for others.
var idDigit = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(idAlphabet) {
		t[idAlphabet[i]] = int8(i)
	}
	return t
}()

// parseSeq returns the sequence number of id when id is exactly what
// idGen.next of a node tagged node returns for it: the tag, then at
// least idMinDigits digits, zero-padded only up to idMinDigits. Every
// other text (another node's id, a padded or overlong number) is not
// this node's, so each id text maps to at most one number and back.
func parseSeq[S ~string | ~[]byte](node string, id S) (uint64, bool) {
	if len(id) < len(node)+idMinDigits || string(id[:len(node)]) != node {
		return 0, false
	}
	d := id[len(node):]
	if len(d) > idMinDigits && d[0] == idAlphabet[0] {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(d); i++ {
		v := idDigit[d[i]]
		if v < 0 || n>>59 != 0 {
			return 0, false // not a digit, or past 64 bits
		}
		n = n<<5 | uint64(v)
	}
	return n, true
}

func sortMembers(m []MemberInfo) {
	sort.Slice(m, func(i, j int) bool { return m[i].ID < m[j].ID })
}

func sortConns(c []ConnInfo) {
	sort.Slice(c, func(i, j int) bool { return c[i].Client < c[j].Client })
}
