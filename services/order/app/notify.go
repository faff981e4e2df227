package app

import "sync"

// notifier wakes the callers waiting for an order to change (PlaceOrder
// with wait_timeout). It only knows what this process sees; waiters also
// poll, because another process may have consumed the catalog's answer.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch chan struct{}
	n  int
}

func newNotifier() *notifier { return &notifier{waiters: map[string]*waiter{}} }

// watch returns a channel closed at the next notify(id), and a release func
// to call when done waiting.
func (n *notifier) watch(id string) (<-chan struct{}, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w, ok := n.waiters[id]
	if !ok {
		w = &waiter{ch: make(chan struct{})}
		n.waiters[id] = w
	}
	w.n++
	return w.ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		w.n--
		if w.n == 0 && n.waiters[id] == w {
			delete(n.waiters, id)
		}
	}
}

// notify wakes everyone watching id.
func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.waiters[id]; ok {
		close(w.ch)
		delete(n.waiters, id)
	}
}
