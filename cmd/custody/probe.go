package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/natsembed"
)

// probeCmd measures the ceiling the platform works under: raw JetStream
// publishes on an embedded server started with `custody run`'s options
// (file storage, every write synced before its acknowledgement), spread
// over --streams streams by --writers writers, each message carrying
// --batch commits of --commit-bytes. Run beside `custodyctl bench`, it says
// what fraction of the disk's limit the order flow uses: Custody's
// orders/s × durable messages per order against the probe's messages/s.
// With --read it measures reads instead (probe_read.go).
func probeCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custody probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "directory for the probe's own NATS data (default: a temporary one, removed after); with --read, the all-in-one's data directory")
	streams := fs.Int("streams", 6, "streams written (Custody has one per service)")
	writers := fs.Int("writers", 64, "concurrent writers, each waiting for its acknowledgement")
	batch := fs.Int("batch", 1, "commits per message")
	commitBytes := fs.Int("commit-bytes", 400, "bytes of one commit")
	duration := fs.Duration("duration", 5*time.Second, "how long to publish")
	relaxed := fs.Bool("unsafe-relaxed-sync", false, "do not sync every write (as custody run's flag)")
	read := fs.Bool("read", false, "instead of publishing, read the event streams of a stopped all-in-one in --data-dir (default ./data) with one bare ordered consumer each, in parallel: the ceiling for `custody rebuild`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *read {
		if *dir == "" {
			*dir = "./data"
		}
		return probeRead(*dir, stdout)
	}
	if *streams <= 0 || *writers <= 0 || *batch <= 0 || *commitBytes <= 0 || *duration <= 0 {
		return errors.New("probe: every number must be positive")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "custody-probe-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	js, done, err := embeddedJetStream(natsembed.Config{DataDir: *dir, RelaxedSync: *relaxed})
	if err != nil {
		return err
	}
	defer done()
	ctx := context.Background()
	for i := range *streams {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "PROBE_" + strconv.Itoa(i), Subjects: []string{"probe." + strconv.Itoa(i) + ".>"},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
		}); err != nil {
			return err
		}
	}
	body := bytes.Repeat([]byte{'x'}, *batch**commitBytes)
	var msgs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *writers {
		wg.Go(func() {
			subj := fmt.Sprintf("probe.%d.w%d", w%*streams, w)
			for time.Now().Before(deadline) {
				if _, err := js.Publish(ctx, subj, body); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				msgs.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("probe: publish: %w", err)
	}
	rate := float64(msgs.Load()) / elapsed.Seconds()
	sync := "every write synced"
	if *relaxed {
		sync = "UNSAFE relaxed sync"
	}
	fmt.Fprintf(stdout, "probe: %d streams, %d writers, %d commit(s) of %d bytes per message, %s\n", *streams, *writers, *batch, *commitBytes, sync)
	fmt.Fprintf(stdout, "%d messages in %s: %.0f messages/s, %.0f commits/s\n", msgs.Load(), elapsed.Round(time.Millisecond), rate, rate*float64(*batch))
	return nil
}

// embeddedJetStream starts an embedded NATS server and connects to its
// JetStream; done disconnects and stops the server.
func embeddedJetStream(cfg natsembed.Config) (js jetstream.JetStream, done func(), err error) {
	srv, err := natsembed.Start(cfg)
	if err != nil {
		return nil, nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	done = func() { nc.Close(); srv.Shutdown() }
	if js, err = jetstream.New(nc); err != nil {
		done()
		return nil, nil, err
	}
	return js, done, nil
}
