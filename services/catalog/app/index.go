package app

import (
	"cmp"
	"encoding/gob"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/pkg/projection"
	"github.com/custody/custody/services/catalog/domain"
)

// ProductIndex is the read model behind ListProducts: every product, folded
// from the catalog's own events with the domain's Evolve, grouped by vendor
// in creation order. The platform restores it from its checkpoint at start
// (Save, Load) and folds the events after it.
type ProductIndex struct {
	mu       sync.Mutex
	products map[string]*listed
	byVendor map[string][]*listed // ascending by position
	progress *projection.Position // of the last event applied
}

type listed struct {
	position uint64 // of ProductCreated: the listing order and page key
	product  domain.Product
}

// NewProductIndex returns an empty index.
func NewProductIndex() *ProductIndex {
	return &ProductIndex{products: map[string]*listed{}, byVendor: map[string][]*listed{}, progress: projection.New()}
}

// Apply folds one event of the catalog store into the index. Events of
// other aggregates only move the position. The index advances its own
// progress (the runtime advances it too, harmlessly) so that it is also
// whole without one, as in `custody rebuild` and unit tests.
func (x *ProductIndex) Apply(e eventstore.RecordedEvent) error {
	defer x.progress.Advance(e.Position)
	x.mu.Lock()
	defer x.mu.Unlock()
	agg, id, err := eventstore.SplitStream(e.Stream)
	if err != nil || agg != domain.Products.Aggregate {
		return nil
	}
	ev, err := es.Decode(e)
	if err != nil {
		return fmt.Errorf("product index: %w", err)
	}
	l, ok := x.products[id]
	if !ok {
		l = &listed{position: e.Position, product: domain.Products.Initial(id)}
	}
	l.product = domain.Products.Evolve(l.product, ev.Payload).WithoutHolds() // the index lists stock, not per-order holds
	if !ok && l.product.Created {
		x.products[id] = l
		v := l.product.VendorID
		x.byVendor[v] = append(x.byVendor[v], l)
	}
	return nil
}

// Progress is the position of the last event applied, which ListProducts
// waits on to read its own writes and the runtime marks ready once the
// index has caught up.
func (x *ProductIndex) Progress() *projection.Position { return x.progress }

// List returns up to limit of vendorID's products created before position
// before (0: from the newest), newest first, and the position to pass as
// before for the next page, or 0 when there is none.
func (x *ProductIndex) List(vendorID string, limit int, before uint64) ([]domain.Product, uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	all := x.byVendor[vendorID]
	end := len(all) // all[:end] are the candidates
	if before > 0 {
		end = sort.Search(len(all), func(i int) bool { return all[i].position >= before })
	}
	var out []domain.Product
	i := end - 1
	for ; i >= 0 && len(out) < limit; i-- {
		p := all[i].product
		p.SKUs = slices.Clone(p.SKUs)
		out = append(out, p)
	}
	if i >= 0 && len(out) > 0 {
		return out, all[i+1].position
	}
	return out, 0
}

// The index's checkpoint (platform.Checkpointer): every product with the
// position it was created at, gob-encoded. The vendors' lists are rebuilt
// in that order. Products hold no holds here (Apply drops them), so the
// exported fields are the whole state.
type savedProduct struct {
	Position uint64
	Product  domain.Product
}

// Version names the checkpoint's shape; bump it when savedProduct or
// domain.Product changes.
func (x *ProductIndex) Version() string { return "products-2" }

// Save writes the index's state.
func (x *ProductIndex) Save(w io.Writer) error {
	x.mu.Lock()
	saved := make([]savedProduct, 0, len(x.products))
	for _, l := range x.products {
		saved = append(saved, savedProduct{Position: l.position, Product: l.product})
	}
	x.mu.Unlock()
	return gob.NewEncoder(w).Encode(saved)
}

// Load replaces the state of an empty index with what Save wrote; on error
// it leaves the index as it was.
func (x *ProductIndex) Load(r io.Reader) error {
	var saved []savedProduct
	if err := gob.NewDecoder(r).Decode(&saved); err != nil {
		return err
	}
	slices.SortFunc(saved, func(a, b savedProduct) int { return cmp.Compare(a.Position, b.Position) })
	products, byVendor := make(map[string]*listed, len(saved)), map[string][]*listed{}
	for _, s := range saved {
		l := &listed{position: s.Position, product: s.Product}
		products[s.Product.ID] = l
		byVendor[s.Product.VendorID] = append(byVendor[s.Product.VendorID], l)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.products, x.byVendor = products, byVendor
	return nil
}
