package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	esjs "github.com/custody/custody/pkg/eventstore/jetstream"
	"github.com/custody/custody/pkg/natsembed"
)

// probeRead is `custody probe --read`: the ceiling `custody rebuild`
// works under. It reads the event streams of a stopped all-in-one (the
// embedded NATS in dataDir) as rebuild does — each stream once, all in
// parallel, with an ordered consumer — but does nothing with the messages
// beyond counting them and their events (the Custody-Count header; no
// decoding, no hash checks, no read models). Rebuild's events/s against
// this one's says what share of the read is rebuild's own work.
func probeRead(dataDir string, stdout io.Writer) error {
	js, done, err := embeddedJetStream(natsembed.Config{DataDir: filepath.Join(dataDir, "nats")})
	if err != nil {
		return err
	}
	defer done()
	ctx := context.Background()
	type read struct {
		stream       jetstream.Stream
		name         string
		last         uint64
		msgs, events uint64
		err          error
	}
	var reads []*read
	for _, m := range modules() {
		name := esjs.StreamNameFor(m.Name)
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // a service without events of its own (audit)
		}
		if err != nil {
			return err
		}
		reads = append(reads, &read{stream: st, name: name, last: st.CachedInfo().State.LastSeq})
	}
	if len(reads) == 0 {
		return fmt.Errorf("probe --read: no event streams in %s", dataDir)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range reads {
		wg.Go(func() { r.msgs, r.events, r.err = readStream(ctx, r.stream, r.last) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	var msgs, events uint64
	var names []string
	for _, r := range reads {
		if r.err != nil {
			return fmt.Errorf("probe --read: %s: %w", r.name, r.err)
		}
		msgs, events = msgs+r.msgs, events+r.events
		names = append(names, fmt.Sprintf("%s %d", r.name, r.msgs))
	}
	fmt.Fprintf(stdout, "probe --read: %d streams, one ordered consumer each, in parallel (messages: %s)\n", len(reads), strings.Join(names, ", "))
	fmt.Fprintf(stdout, "%d messages, %d events in %s: %.0f messages/s, %.0f events/s\n",
		msgs, events, elapsed.Round(time.Millisecond), float64(msgs)/elapsed.Seconds(), float64(events)/elapsed.Seconds())
	return nil
}

// readStream reads messages 1 to last of st with a bare ordered consumer,
// pulling continuously a thousand at a time, and counts them and their
// events.
func readStream(ctx context.Context, st jetstream.Stream, last uint64) (msgs, events uint64, err error) {
	if last == 0 {
		return 0, 0, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, 0, err
	}
	defer it.Stop()
	for {
		// A damaged stream can end before last: do not wait forever.
		m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			return msgs, events, fmt.Errorf("after %d messages: %w", msgs, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return msgs, events, err
		}
		msgs++
		n, _ := strconv.ParseUint(m.Headers().Get(esjs.HeaderCount), 10, 64)
		events += max(n, 1)
		if md.Sequence.Stream >= last {
			return msgs, events, nil
		}
	}
}
