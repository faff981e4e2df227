package jetstream

import "hash/maphash"

// presence tells, without reading the kv, that the index never wrote a
// key there: a scalable Bloom filter (Almeida et al., 2007) of every key
// the index has set since its Space was emptied. Every append of a new
// stream looks its stream up first (Absent, plan); the kv answered "not
// there" only after searching Pebble's memtables, which have no filter of
// their own (4 % of the all-in-one's CPU under load). The kv is written
// by this index alone and emptied with it (index.reset), so a key the
// filter never saw is not there: no false negatives. A false positive
// only costs the read it would have cost anyway.
//
// A level holds up to its capacity of keys at presenceBitsPerKey bits
// each; a full level is kept and a new one twice its size opened, so the
// filter grows with the streams (about 3.5 bytes per stream in all) and a
// key may be in any level. Each level's false positive rate is about 0.1 %,
// so the filter's stays under 2 % however many levels there are.
type presence struct {
	seed   maphash.Seed
	levels []*presenceLevel
}

type presenceLevel struct {
	bits     []uint64
	n, limit int
}

const (
	presenceFirst      = 4096 // keys of the first level
	presenceBitsPerKey = 14
	presenceHashes     = 10
)

func newPresence() *presence { return &presence{seed: maphash.MakeSeed()} }

// add records key.
func (p *presence) add(key string) {
	last := len(p.levels) - 1
	if last < 0 || p.levels[last].n >= p.levels[last].limit {
		limit := presenceFirst << len(p.levels)
		p.levels = append(p.levels, &presenceLevel{bits: make([]uint64, (limit*presenceBitsPerKey+63)/64), limit: limit})
		last++
	}
	l := p.levels[last]
	h1, h2 := p.hash(key)
	m := uint32(len(l.bits) * 64)
	for i := range uint32(presenceHashes) {
		b := (h1 + i*h2) % m
		l.bits[b/64] |= 1 << (b % 64)
	}
	l.n++
}

// mayHave is false when key was never added.
func (p *presence) mayHave(key string) bool {
	h1, h2 := p.hash(key)
	for _, l := range p.levels {
		m := uint32(len(l.bits) * 64)
		in := true
		for i := range uint32(presenceHashes) {
			b := (h1 + i*h2) % m
			if l.bits[b/64]&(1<<(b%64)) == 0 {
				in = false
				break
			}
		}
		if in {
			return true
		}
	}
	return false
}

// hash gives the two hashes of double hashing (Kirsch and Mitzenmacher):
// the i-th probe is h1 + i·h2.
func (p *presence) hash(key string) (uint32, uint32) {
	h := maphash.String(p.seed, key)
	return uint32(h), uint32(h>>32) | 1
}

// bytes is the filter's size.
func (p *presence) bytes() int {
	n := 0
	for _, l := range p.levels {
		n += len(l.bits) * 8
	}
	return n
}
