package app

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"syscall"
	"testing"

	"github.com/custody/custody/pkg/es"
	"github.com/custody/custody/pkg/eventstore"
	"github.com/custody/custody/services/audit/domain"
	"github.com/custody/custody/services/audit/internal/story"
)

// BenchmarkIndex folds b.N orders' stories (22 events each, in five
// stores) into the stored index and, for comparison, the heap index, and
// reports the time and the CPU (the store's background work included) per
// event and the live heap each keeps per order once
// everything is folded (after a GC; the events are made on the fly and
// dropped). go test ./services/audit/app -run '^$' -bench Index -benchtime 30000x
func BenchmarkIndex(b *testing.B) {
	for _, kind := range []string{"stored", "heap"} {
		b.Run(kind, func(b *testing.B) {
			var s *stored
			var heap *domain.Index
			apply := func(svc string, e eventstore.RecordedEvent) { heap.Add(svc, e, domain.DecodePayload(e)) }
			if kind == "stored" {
				s = openStored(b, b.TempDir())
				defer s.close(b)
				apply = func(svc string, e eventstore.RecordedEvent) { s.feeds[svc].Apply(e) }
			} else {
				heap = domain.NewIndex()
			}
			pos := map[string]uint64{}
			rev := map[string]uint64{}
			live := func() uint64 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapAlloc
			}
			base := live()
			events := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				st := story.New(t0, fmt.Sprintf("o%07d", i))
				for _, ev := range st.Events {
					ed, err := es.Encode(ev.Payload)
					if err != nil {
						b.Fatal(err)
					}
					pos[ev.Service]++
					r := rev[ev.Stream]
					rev[ev.Stream]++
					h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", ev.Stream, r))
					apply(ev.Service, eventstore.RecordedEvent{EventData: ed, Stream: ev.Stream, Revision: r, Position: pos[ev.Service],
						RecordedAt: st.T0.Add(ev.At), Hash: h[:]})
					events++
				}
				clear(rev) // stories never share a stream: keep the benchmark's own map small
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(events), "cpu-ns/event")
			b.ReportMetric(float64(int64(live())-int64(base))/float64(b.N), "heap-B/order")
			runtime.KeepAlive(heap)
		})
	}
}

// cpuTime is the CPU time the process has used (user and system, every
// thread: the store's compactions count), in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
