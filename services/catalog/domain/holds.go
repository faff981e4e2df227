package domain

import "maps"

// holdTable is a product's holds by order id. A hot product sees every
// order that buys it, so its holds grow with the orders, and the handler
// decides on a copy of the product for every batch of commands: copying
// the holds each time made deciding cost more with every order sold. The
// table is therefore immutable: its shards are shared by every copy, and
// recording a hold copies only the shard it lands in (1/holdShards of the
// holds) and the shard array. Hold values are never changed in place
// either (evolve clones one before changing it).
type holdTable struct {
	shards *[holdShards]map[string]Hold
}

const holdShards = 128

func shardOf(orderID string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(orderID); i++ {
		h = (h ^ uint32(orderID[i])) * 16777619
	}
	return int(h % holdShards)
}

func (t holdTable) get(orderID string) Hold {
	if t.shards == nil {
		return Hold{}
	}
	return t.shards[shardOf(orderID)][orderID]
}

// with is t with orderID's hold set to h; t is unchanged.
func (t holdTable) with(orderID string, h Hold) holdTable {
	var next [holdShards]map[string]Hold
	if t.shards != nil {
		next = *t.shards
	}
	i := shardOf(orderID)
	m := make(map[string]Hold, len(next[i])+1)
	maps.Copy(m, next[i])
	m[orderID] = h
	next[i] = m
	return holdTable{shards: &next}
}

// len is the number of holds.
func (t holdTable) len() int {
	n := 0
	if t.shards != nil {
		for _, m := range t.shards {
			n += len(m)
		}
	}
	return n
}
