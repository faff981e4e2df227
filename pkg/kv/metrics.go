package kv

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// observe publishes the store's Pebble figures as metrics, read from
// Pebble's own counters at each collection (nothing is counted on the
// write or read paths): the block cache's hits and misses, the bytes
// flushed and compacted, the memtables' size and the writes pending
// (Write-behind). The cache hit rate is the figure to watch: a cache too
// small for its memtables' reservation keeps no block at all, and every
// read of a table is a read of the disk.
func (d *DB) observe() (metric.Registration, error) {
	meter := otel.Meter("github.com/custody/custody/pkg/kv")
	hits, err := meter.Int64ObservableCounter("custody.readmodels.block_cache.hits",
		metric.WithDescription("Reads of the read-model store's tables answered by its block cache"))
	if err != nil {
		return nil, err
	}
	misses, err := meter.Int64ObservableCounter("custody.readmodels.block_cache.misses",
		metric.WithDescription("Reads of the read-model store's tables that read the disk"))
	if err != nil {
		return nil, err
	}
	written, err := meter.Int64ObservableCounter("custody.readmodels.table_bytes_written", metric.WithUnit("By"),
		metric.WithDescription("Bytes the read-model store wrote to its tables, by cause (flush of a memtable, compaction)"))
	if err != nil {
		return nil, err
	}
	memory, err := meter.Int64ObservableGauge("custody.readmodels.memory", metric.WithUnit("By"),
		metric.WithDescription("The read-model store's memory, by part: memtables, block cache, writes pending"))
	if err != nil {
		return nil, err
	}
	flush, compaction := metric.WithAttributes(attribute.String("cause", "flush")), metric.WithAttributes(attribute.String("cause", "compaction"))
	memtables, blocks, pending := metric.WithAttributes(attribute.String("part", "memtables")),
		metric.WithAttributes(attribute.String("part", "block_cache")), metric.WithAttributes(attribute.String("part", "pending"))
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if d.closed.Load() {
			return nil
		}
		m := d.db.Metrics()
		o.ObserveInt64(hits, m.BlockCache.Hits)
		o.ObserveInt64(misses, m.BlockCache.Misses)
		total := m.Total()
		o.ObserveInt64(written, int64(total.TableBytesFlushed), flush)
		o.ObserveInt64(written, int64(total.TableBytesCompacted), compaction)
		o.ObserveInt64(memory, int64(m.MemTable.Size), memtables)
		o.ObserveInt64(memory, m.BlockCache.Size, blocks)
		d.w.mu.RLock()
		o.ObserveInt64(memory, int64(d.w.bytes), pending)
		d.w.mu.RUnlock()
		return nil
	}, hits, misses, written, memory)
}
