package domain

import "maps"

// holdTable is a product's holds by order id. A hot product sees every
// order that buys it, and keeps the holds of those still holding stock or
// within reach of a return (Product.holds), and the handler decides on a
// copy of the product for every batch of commands: copying the holds each
// time made deciding cost more with every hold kept. The table is
// therefore immutable and shared by every copy: a two-level tree
// of holdFan×holdFan small maps, where recording a hold copies one path
// (two arrays of holdFan pointers and the one map it lands in, 1/4096 of
// the holds), and so does dropping one. Hold values are never changed in place either (evolve clones
// one before changing it).
type holdTable struct {
	root *[holdFan]*holdLeaves
}

type holdLeaves [holdFan]map[string]Hold

const holdFan = 64

// slot is where orderID's hold lives: root index, then leaf index.
func slot(orderID string) (int, int) {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(orderID); i++ {
		h = (h ^ uint32(orderID[i])) * 16777619
	}
	return int(h % holdFan), int(h / holdFan % holdFan)
}

func (t holdTable) get(orderID string) Hold {
	if t.root == nil {
		return Hold{}
	}
	i, j := slot(orderID)
	if t.root[i] == nil {
		return Hold{}
	}
	return t.root[i][j][orderID]
}

// with is t with orderID's hold set to h; t is unchanged.
func (t holdTable) with(orderID string, h Hold) holdTable {
	var root [holdFan]*holdLeaves
	if t.root != nil {
		root = *t.root
	}
	i, j := slot(orderID)
	var leaves holdLeaves
	if root[i] != nil {
		leaves = *root[i]
	}
	m := make(map[string]Hold, len(leaves[j])+1)
	maps.Copy(m, leaves[j])
	m[orderID] = h
	leaves[j] = m
	root[i] = &leaves
	return holdTable{root: &root}
}

// without is t without orderID's hold; t is unchanged. Removing a hold
// copies the same path as recording one.
func (t holdTable) without(orderID string) holdTable {
	if t.root == nil {
		return t
	}
	i, j := slot(orderID)
	if t.root[i] == nil {
		return t
	}
	if _, ok := t.root[i][j][orderID]; !ok {
		return t
	}
	root := *t.root
	leaves := *root[i]
	m := maps.Clone(leaves[j])
	delete(m, orderID)
	leaves[j] = m
	root[i] = &leaves
	return holdTable{root: &root}
}

// keep is t with only the holds keep says yes to; t is unchanged. It
// visits every hold (a sweep, not a step of every event) and builds a new
// table, sharing the maps in which it dropped nothing.
func (t holdTable) keep(keep func(Hold) bool) holdTable {
	if t.root == nil {
		return t
	}
	var root [holdFan]*holdLeaves
	changed := false
	for i, leaves := range t.root {
		if leaves == nil {
			continue
		}
		var out holdLeaves
		kept := 0
		for j, m := range leaves {
			out[j] = m
			cloned := false
			for id, h := range m {
				if keep(h) {
					continue
				}
				if !cloned {
					out[j], cloned = maps.Clone(m), true
				}
				delete(out[j], id)
				changed = true
			}
			kept += len(out[j])
		}
		if kept > 0 {
			root[i] = &out
		}
	}
	if !changed {
		return t
	}
	return holdTable{root: &root}
}

// len is the number of holds.
func (t holdTable) len() int {
	n := 0
	if t.root != nil {
		for _, leaves := range t.root {
			if leaves != nil {
				for _, m := range leaves {
					n += len(m)
				}
			}
		}
	}
	return n
}
