// Package bloom is a scalable Bloom filter (Almeida et al., 2007): a set
// of strings that answers "never added" for certain and "maybe added"
// otherwise, growing with what is added. The event store's index and the
// scratch read-model store put one in front of Pebble, whose memtables
// have no filter, so looking up a key that was never written costs no
// search.
package bloom

import "hash/maphash"

// Filter is the set. The zero value is not usable: call New. It is not
// safe for concurrent use.
//
// A level holds up to its capacity of keys at bitsPerKey bits
// each; a full level is kept and a new one twice its size opened, so the
// filter grows with what is added (2 to 3.5 bytes a key in all) and a
// key may be in any level. Each level's false positive rate is about 0.1 %,
// so the filter's stays under 2 % however many levels there are.
type Filter struct {
	seed   maphash.Seed
	levels []*level
}

type level struct {
	bits     []uint64
	n, limit int
}

const (
	first      = 4096 // keys of the first level
	bitsPerKey = 14
	hashes     = 10
)

// New returns an empty filter.
func New() *Filter { return &Filter{seed: maphash.MakeSeed()} }

// Add records key.
func (p *Filter) Add(key string) {
	last := len(p.levels) - 1
	if last < 0 || p.levels[last].n >= p.levels[last].limit {
		limit := first << len(p.levels)
		p.levels = append(p.levels, &level{bits: make([]uint64, (limit*bitsPerKey+63)/64), limit: limit})
		last++
	}
	l := p.levels[last]
	h1, h2 := p.hash(key)
	m := uint32(len(l.bits) * 64)
	for i := range uint32(hashes) {
		b := (h1 + i*h2) % m
		l.bits[b/64] |= 1 << (b % 64)
	}
	l.n++
}

// MayHave is false when key was never added.
func (p *Filter) MayHave(key string) bool {
	h1, h2 := p.hash(key)
	for _, l := range p.levels {
		m := uint32(len(l.bits) * 64)
		in := true
		for i := range uint32(hashes) {
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
func (p *Filter) hash(key string) (uint32, uint32) {
	h := maphash.String(p.seed, key)
	return uint32(h), uint32(h>>32) | 1
}

// Bytes is the filter's size.
func (p *Filter) Bytes() int {
	n := 0
	for _, l := range p.levels {
		n += len(l.bits) * 8
	}
	return n
}
