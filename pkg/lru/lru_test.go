package lru_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/custody/custody/pkg/lru"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1)
	c.Put("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recently used
		t.Fatalf("Get(a) = %d, %v; want 1, true", v, ok)
	}
	c.Put("c", 3) // evicts b
	if _, ok := c.Get("b"); ok {
		t.Error("b is still cached after a and c were used since")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%s) = %d, %v; want %d, true", k, v, ok, want)
		}
	}
	c.Put("a", 10) // an update, no eviction
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Errorf("after updating a: a = %d, len %d; want 10, 2", v, c.Len())
	}
	c.Clear()
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Errorf("after Clear: len %d, a cached %v", c.Len(), ok)
	}
}

func TestCacheStaysWithinItsSizeUnderConcurrentUse(t *testing.T) {
	c := lru.New[string, int](100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := fmt.Sprint(g, "/", i%300)
				c.Put(k, i)
				if v, ok := c.Get(k); ok && v%300 != i%300 {
					t.Errorf("Get(%s) = %d after Put %d", k, v, i)
				}
			}
		})
	}
	wg.Wait()
	if c.Len() != 100 {
		t.Errorf("len %d after 24,000 puts of 2,400 keys; want the size, 100", c.Len())
	}
}
