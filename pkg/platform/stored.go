package platform

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/custody/custody/pkg/kv"
)

// Read models stored outside the heap.
//
// A Projection with Stored keeps its state in the process's read-model
// store: an embedded key-value store (pkg/kv) in <data-dir>/readmodels
// (custody run --readmodel-dir), one space per read model, named like its
// checkpoint, "<module>/<projection name>". Its Apply writes the changes an
// event makes together with the event's position, in one batch, so state
// and position are never written apart: a process killed at any moment
// restarts with some prefix of its batches, whole, and resumes after the
// position stored with them. At start the runtime reads the space's
// position and version: a space written by another Version, or standing
// past the source's end (the space of another store), is emptied and the
// read model folds from position 1. The store belongs to the process: in a
// cluster it is the pod's emptyDir, and a new pod folds its read models
// from the streams. `custody rebuild` folds stored read models into a
// temporary store that it removes afterwards, so it writes nothing anywhere.

// Stored is a read model that keeps its state in a kv.Space.
type Stored interface {
	// Version names the shape of what the read model stores; bump it when
	// its code changes what it keeps or how it encodes it: a space of
	// another version is emptied and folded again from position 1.
	Version() string
	// Attach gives the read model its space, once, before any event is
	// applied. Apply then commits each event's changes with the event's
	// position (kv.Batch.Commit).
	Attach(s *kv.Space) error
}

// DefaultReadModelDir is where Run keeps the read-model store when
// Config.ReadModelDir is empty.
func DefaultReadModelDir(dataDir string) string {
	return dataDir + string(os.PathSeparator) + "readmodels"
}

// attachStored opens the space of the read model name in db and attaches
// it, and returns the position to resume after (0: from the start).
func attachStored(log *slog.Logger, db *kv.DB, name string, rm Stored, last uint64) (uint64, error) {
	space, err := db.Space(name)
	if err != nil {
		return 0, err
	}
	pos, version, err := space.State()
	if err != nil {
		return 0, fmt.Errorf("read model %s: %w", name, err)
	}
	reset := true
	switch {
	case version == "":
		log.Info("new stored read model; folding from the start", "read_model", name)
	case version != rm.Version():
		log.Info("stored read model of another version; folding from the start", "read_model", name, "version", version, "want", rm.Version())
	case pos > last:
		log.Warn("stored read model past the source's last event; folding from the start", "read_model", name, "position", pos, "last", last)
	default:
		reset = false
		log.Info("stored read model resumes", "read_model", name, "position", pos)
	}
	if reset {
		if err := space.Reset(rm.Version()); err != nil {
			return 0, fmt.Errorf("read model %s: %w", name, err)
		}
		pos = 0
	}
	return pos, rm.Attach(space)
}
