package netpoll

// connChunk is the number of connections per block of a connList: 2 KiB
// of pointers, a size class of its own.
const connChunk = 256

// connList is a loop's list of its connections (for the sweeps and the
// drain), in fixed blocks rather than one slice: growing it never copies
// (an append-grown slice of 18,000 pointers leaves about four times its
// size as garbage on the way, and keeps up to a quarter unused), and it
// shrinks as connections go. Removal swaps the last connection into the
// hole, so the order is arbitrary; each conn knows its index (sweepIdx).
// On the loop only.
type connList struct {
	blocks []*[connChunk]*conn
	n      int
}

// len is the number of connections in the list.
func (l *connList) len() int { return l.n }

// at returns the connection at index i, 0 <= i < len.
func (l *connList) at(i int) *conn { return l.blocks[i/connChunk][i%connChunk] }

// set puts c at index i and records i in c.
func (l *connList) set(i int, c *conn) {
	l.blocks[i/connChunk][i%connChunk] = c
	c.sweepIdx = int32(i)
}

// add appends c.
func (l *connList) add(c *conn) {
	if l.n == len(l.blocks)*connChunk {
		l.blocks = append(l.blocks, new([connChunk]*conn))
	}
	l.n++
	l.set(l.n-1, c)
}

// remove takes c out of the list, if it is in it. A block is freed once
// the one before it is empty too: one empty block stays, so a connection
// that comes and goes at a block's edge does not allocate each time.
func (l *connList) remove(c *conn) {
	i := int(c.sweepIdx)
	if i < 0 || i >= l.n || l.at(i) != c {
		return
	}
	last := l.n - 1
	if i != last {
		l.set(i, l.at(last))
	}
	l.blocks[last/connChunk][last%connChunk] = nil
	l.n = last
	c.sweepIdx = -1
	for k := len(l.blocks); k > 1 && l.n <= (k-2)*connChunk; k-- {
		l.blocks[k-1] = nil
		l.blocks = l.blocks[:k-1]
	}
}
