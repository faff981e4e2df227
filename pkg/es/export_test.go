package es

// WaitSnapshots waits for the snapshots h is writing in the background, so
// a test can tell what was written without sleeping.
func WaitSnapshots[S, C any](h *Handler[S, C]) { h.writing.Wait() }

// Cached reports whether h holds aggregate id in memory.
func Cached[S, C any](h *Handler[S, C], id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.roots[id]
	return ok
}
