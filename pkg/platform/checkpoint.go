package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Checkpoints: read models that survive restarts.
//
// A read model that implements Checkpointer has its state saved, with the
// position of the last event folded into it, as ONE object of the
// JetStream Object Store bucket custody_checkpoints, named
// "<module>/<projection name>". State and position are never written
// apart, so a crash cannot leave a state with another state's position:
// an object replaced while the process dies is either the old one or the
// new one, whole (the bucket publishes an object's description only once
// its chunks are stored, and checks their digest on reading). At start the
// runtime loads the checkpoint, if its Version is the read model's, and
// follows the source from the position after it; otherwise (no checkpoint,
// another version, an object that cannot be read or decoded, a position
// past the source's end) the read model folds from position 1 as before.
// While it runs, the runtime saves it every CheckpointEvery and at a clean
// stop. `custody rebuild` never reads checkpoints; `custody run
// --checkpoint-every=0` neither reads nor writes them.

// CheckpointBucket is the Object Store bucket of the checkpoints.
const CheckpointBucket = "custody_checkpoints"

// Checkpointer is a read model that can save and restore its state.
type Checkpointer interface {
	// Version names the shape of the saved state; bump it when the read
	// model's code changes what it keeps or how it encodes it: a
	// checkpoint of another version is ignored and the read model folds
	// from position 1.
	Version() string
	// Save writes the whole state. The runtime calls it between two events
	// (no Apply runs meanwhile).
	Save(w io.Writer) error
	// Load replaces the state of the new, empty read model with what Save
	// wrote. On error the read model must still be empty (decode aside,
	// then swap in): the runtime then folds it from position 1.
	Load(r io.Reader) error
}

// checkpointHeader is the first line of a checkpoint object; the state
// follows it.
type checkpointHeader struct {
	Version  string `json:"version"`
	Position uint64 `json:"position"`
}

// checkpoints is the process's checkpoint store, opened at first use.
type checkpoints struct {
	js       jetstream.JetStream
	replicas int
	every    time.Duration

	mu sync.Mutex
	os jetstream.ObjectStore
}

func (c *checkpoints) open(ctx context.Context) (jetstream.ObjectStore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.os == nil {
		store, err := c.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: CheckpointBucket, Description: "read model checkpoints (state and position)",
			Storage: jetstream.FileStorage, Replicas: c.replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("checkpoint bucket: %w", err)
		}
		c.os = store
	}
	return c.os, nil
}

// checkpointName is the object of module's projection name.
func checkpointName(module, projection string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, projection)
	return module + "/" + clean
}

// load restores cp from the checkpoint name and returns its position; 0
// (fold from 1) when there is none or it cannot be used (logged). last is
// the source's newest position: a checkpoint past it is of another store.
func (c *checkpoints) load(ctx context.Context, log *slog.Logger, name string, cp Checkpointer, last uint64) uint64 {
	store, err := c.open(ctx)
	if err != nil {
		log.Warn("checkpoint not read; folding from the start", "err", err)
		return 0
	}
	res, err := store.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0
	}
	var data []byte
	if err == nil {
		data, err = readObject(res) // checks the digest at the end
		_ = res.Close()
	}
	if err != nil {
		log.Warn("checkpoint cannot be read; folding from the start", "checkpoint", name, "err", err)
		return 0
	}
	r := bufio.NewReader(bytes.NewReader(data))
	line, err := r.ReadBytes('\n')
	var h checkpointHeader
	if err == nil {
		err = json.Unmarshal(line, &h)
	}
	switch {
	case err != nil:
		log.Warn("checkpoint cannot be decoded; folding from the start", "checkpoint", name, "err", err)
		return 0
	case h.Version != cp.Version():
		log.Info("checkpoint of another version; folding from the start", "checkpoint", name, "version", h.Version, "want", cp.Version())
		return 0
	case h.Position > last:
		log.Warn("checkpoint past the source's last event; folding from the start", "checkpoint", name, "position", h.Position, "last", last)
		return 0
	}
	if err := cp.Load(r); err != nil {
		log.Warn("checkpoint cannot be decoded; folding from the start", "checkpoint", name, "err", err)
		return 0
	}
	log.Info("read model restored from its checkpoint", "checkpoint", name, "position", h.Position)
	return h.Position
}

// readObject reads a whole object into a buffer of its size: growing one
// from nothing (io.ReadAll) zeroed and copied a checkpoint of hundreds of
// megabytes over and over, a second of a restart's CPU.
func readObject(res jetstream.ObjectResult) ([]byte, error) {
	info, err := res.Info()
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, info.Size+bytes.MinRead))
	_, err = buf.ReadFrom(res)
	return buf.Bytes(), err
}

// encode saves cp at pos into one object's bytes.
func encodeCheckpoint(cp Checkpointer, pos uint64) ([]byte, error) {
	var b bytes.Buffer
	h, _ := json.Marshal(checkpointHeader{Version: cp.Version(), Position: pos})
	b.Write(h)
	b.WriteByte('\n')
	if err := cp.Save(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (c *checkpoints) put(ctx context.Context, name string, data []byte) error {
	store, err := c.open(ctx)
	if err != nil {
		return err
	}
	_, err = store.PutBytes(ctx, name, data)
	return err
}

// keepCheckpointed saves f's read model every c.every while ctx lasts,
// whenever it has folded something since the last save, and once more when
// ctx ends (a clean stop). The state is taken between two events, under
// f.applying, and written after the lock is released.
func (rt *runtime) keepCheckpointed(ctx context.Context, log *slog.Logger, f *followed, name string, saved uint64) {
	c := rt.d.checkpoints
	save := func(ctx context.Context) {
		f.applying.Lock()
		pos := f.applied.Load()
		if pos <= saved {
			f.applying.Unlock()
			return
		}
		data, err := encodeCheckpoint(f.p.Checkpoint, pos)
		f.applying.Unlock()
		if err == nil {
			err = c.put(ctx, name, data)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("writing the checkpoint; will retry", "checkpoint", name, "err", err)
			}
			return
		}
		saved = pos
	}
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			save(ctx)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			save(sctx)
			cancel()
			return
		}
	}
}
