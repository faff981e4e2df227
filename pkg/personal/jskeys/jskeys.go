// Package jskeys keeps the data subjects' keys of pkg/personal in a
// JetStream key-value bucket, wrapped by master keys (Keyring): the key
// store of `custody run`.
package jskeys

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/lru"
	"github.com/custody/custody/pkg/personal"
)

// Keyring holds the master keys that wrap the data keys. The first is the
// primary: new data keys are wrapped with it. The others only unwrap data
// keys wrapped before a rotation, until Store.Rewrap has wrapped them
// all with the primary and they can be dropped.
type Keyring struct {
	ids  []string
	keys map[string][]byte
}

// MasterKeysEnv names the environment variable that may hold the keyring
// (its text, as in a keyring file) instead of a file.
const MasterKeysEnv = "CUSTODY_MASTER_KEYS"

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseKeyring reads a keyring's text: one master key per line, "<id>
// <base64 of 32 bytes>", the primary first; blank lines and lines starting
// with '#' are ignored. In an environment variable, ';' separates lines.
func ParseKeyring(text string) (*Keyring, error) {
	r := &Keyring{keys: map[string][]byte{}}
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(text, ";", "\n")))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, " ")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("jskeys: keyring line %d: want \"<id> <base64 key>\" with an id of letters, digits, '-' or '_'", n)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("jskeys: keyring line %d: master key %s is not 32 bytes in base64", n, id)
		}
		if _, dup := r.keys[id]; dup {
			return nil, fmt.Errorf("jskeys: keyring line %d: master key %s twice", n, id)
		}
		r.ids = append(r.ids, id)
		r.keys[id] = key
	}
	if len(r.ids) == 0 {
		return nil, errors.New("jskeys: the keyring has no master key")
	}
	return r, nil
}

// NewMasterKeyLine returns a keyring line with a new random master key.
func NewMasterKeyLine(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("jskeys: bad master key id %q", id)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + " " + base64.StdEncoding.EncodeToString(key), nil
}

// LoadKeyring reads the keyring from the environment variable
// MasterKeysEnv when it is set, else from path; when neither exists and
// create is set, it writes a new keyring of one key to path (mode 0600).
func LoadKeyring(path string, create bool) (*Keyring, error) {
	if text := os.Getenv(MasterKeysEnv); text != "" {
		return ParseKeyring(text)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		line, err := NewMasterKeyLine("m1")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		b = []byte("# Custody master keys: the first wraps new data keys (docs/design.md, \"Personal data\").\n" + line + "\n")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("jskeys: master keys: %w (set %s or create the file)", err, MasterKeysEnv)
	}
	return ParseKeyring(string(b))
}

// Primary is the id of the key that wraps new data keys.
func (r *Keyring) Primary() string { return r.ids[0] }

func (r *Keyring) wrap(plain []byte) (record, error) {
	aead, err := newAEAD(r.keys[r.ids[0]])
	if err != nil {
		return record{}, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return record{}, err
	}
	return record{Master: r.ids[0], Nonce: nonce, Wrapped: aead.Seal(nil, nonce, plain, []byte(r.ids[0]))}, nil
}

func (r *Keyring) unwrap(rec record) ([]byte, error) {
	master, ok := r.keys[rec.Master]
	if !ok {
		return nil, fmt.Errorf("jskeys: the data keys are wrapped by master key %q, which the keyring does not hold", rec.Master)
	}
	aead, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, rec.Nonce, rec.Wrapped, []byte(rec.Master))
	if err != nil {
		return nil, fmt.Errorf("jskeys: the data keys do not unwrap with master key %q", rec.Master)
	}
	return key, nil
}

// record is a batch's entry in the bucket: its data keys (a JSON object
// of subject → key) wrapped by a master key.
type record struct {
	Master  string `json:"master"`
	Nonce   []byte `json:"nonce"`
	Wrapped []byte `json:"wrapped"`
}

// Config configures Store.
type Config struct {
	// Bucket is the key-value bucket. Default DefaultKeyBucket.
	Bucket string
	// Replicas of the bucket's stream (1 embedded, 3 in a cluster).
	Replicas int
	// CacheSize bounds the data keys kept in memory, by subject and by id
	// (about 150 bytes each). Default 16384.
	CacheSize int
}

// DefaultKeyBucket is the bucket of the data keys.
const DefaultKeyBucket = "custody_keys"

// Entries of the bucket: "k.<batch>" holds a batch of data keys, "e.<subject>"
// marks an erased subject.
const (
	batchPrefix  = "k."
	erasedPrefix = "e."
)

// eraseSettle is how long Erase waits before it looks for keys a process
// made the subject before it heard of the erasure.
const eraseSettle = time.Second

// maxBatch bounds the data keys made in one write.
const maxBatch = 1024

// Store keeps the data keys in a JetStream key-value bucket, with caches
// in front.
//
// A subject's first data key is made when its first value is sealed, and it
// must be stored durably before the event sealed with it is. One write per
// new subject would cap new buyers at what one stream fsyncs a second (about
// 2,000 on the development machine), so keys are made in batches: the keys
// asked for while the previous batch was being written share one entry,
// "k.<batch>", their subject → key map wrapped by the primary master key. A
// key's id is "<subject>.<batch>", and a token carries it. Processes make
// their own batches (batch ids start with a random process prefix); a subject
// can have keys in several batches (a process that did not know its key made
// another), and they all seal and open its values.
//
// Erase marks the subject erased ("e.<subject>"), removes its keys from every
// batch holding one, and overwrites on disk the entries it replaced
// (JetStream's secure delete; the bucket keeps two revisions per entry so the
// replaced one is there to overwrite). Every process's caches drop the
// subject's keys when the bucket says so.
type Store struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
	ring   *Keyring

	// current is the key each subject's new values are sealed with (key id
	// and key); byID every key read or made, by key id.
	current *lru.Cache[string, dataKey]
	byID    *lru.Cache[string, cipher.AEAD]

	// erased are the subjects erased, all of them (few: erasure is rare),
	// read at the start and kept up to date by the watch.
	erasedMu sync.RWMutex
	erased   map[string]bool

	prefix string // of this process's batch ids
	seq    atomic.Uint64
	make   chan *keyRequest

	mu   sync.Mutex // serialises Erase and Rewrap in this process
	stop context.CancelFunc
	done sync.WaitGroup
}

type dataKey struct {
	id  string
	key cipher.AEAD
}

// keyRequest asks the batch writer for subject's first key.
type keyRequest struct {
	subject string
	done    chan struct{}
	key     dataKey
	err     error
}

// Open opens (creating if need be) the bucket and starts watching it.
func Open(ctx context.Context, js jetstream.JetStream, ring *Keyring, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultKeyBucket
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 16384
	}
	// The bucket's stream is made here rather than by CreateKeyValue, which
	// denies deleting a message (for good: the flag cannot be lifted later),
	// and erasure must delete one. The rest is what a key-value bucket's
	// stream is.
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + cfg.Bucket,
		Description:       "Custody data keys of the data subjects, in batches wrapped by a master key; erasing a subject destroys its keys",
		Subjects:          []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: 2, // the entry Erase and Rewrap replace is still there to overwrite
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          max(cfg.Replicas, 1),
		AllowRollup:       true,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("jskeys: key bucket: %w", err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("jskeys: key bucket: %w", err)
	}
	prefix := make([]byte, 8)
	if _, err := rand.Read(prefix); err != nil {
		return nil, err
	}
	k := &Store{kv: kv, stream: stream, ring: ring,
		current: lru.New[string, dataKey](cfg.CacheSize), byID: lru.New[string, cipher.AEAD](cfg.CacheSize),
		prefix: hex.EncodeToString(prefix), make: make(chan *keyRequest, maxBatch), erased: map[string]bool{}}
	wctx, stop := context.WithCancel(context.Background())
	k.stop = stop
	// The watch starts before the erased subjects are listed, so that none
	// erased in between is missed.
	// Only the erased marks: a batch changes after its subjects' keys are
	// made (Erase, which marks first; Rewrap, which keeps the keys).
	w, err := kv.Watch(wctx, erasedPrefix+">", jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		stop()
		return nil, fmt.Errorf("jskeys: watch the key bucket: %w", err)
	}
	if err := k.listErased(ctx); err != nil {
		stop()
		return nil, err
	}
	k.done.Add(2)
	go k.watch(wctx, w)
	go k.writeBatches(wctx)
	return k, nil
}

// watch drops what the caches hold of a subject erased by any process.
func (k *Store) watch(ctx context.Context, w jetstream.KeyWatcher) {
	defer k.done.Done()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			if subject, ok := strings.CutPrefix(e.Key(), erasedPrefix); ok {
				k.markErased(subject)
			}
		}
	}
}

// listErased reads the erased subjects.
func (k *Store) listErased(ctx context.Context) error {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("jskeys: list the key bucket: %w", err)
	}
	for key := range lister.Keys() {
		if subject, ok := strings.CutPrefix(key, erasedPrefix); ok {
			k.markErased(subject)
		}
	}
	return nil
}

// markErased notes subject erased and drops its keys from the caches.
func (k *Store) markErased(subject string) {
	k.erasedMu.Lock()
	k.erased[subject] = true
	k.erasedMu.Unlock()
	k.forget(subject)
}

func (k *Store) forget(subject string) {
	k.current.Remove(subject)
	k.byID.RemoveFunc(func(id string) bool { return strings.HasPrefix(id, subject+".") })
}

// Primary is the id of the master key that wraps new data keys.
func (k *Store) Primary() string { return k.ring.Primary() }

// Close stops the batch writer and the watch.
func (k *Store) Close() error {
	k.stop()
	k.done.Wait()
	return nil
}

// DataKey implements personal.Keys. A subject this process knows no key of is
// looked up in every batch when create is false (a privacy request, rare);
// with create, it gets a key in the next batch.
func (k *Store) DataKey(ctx context.Context, subject string, create bool) (string, cipher.AEAD, error) {
	if dk, ok := k.current.Get(subject); ok {
		return dk.id, dk.key, nil
	}
	if err := k.checkErased(subject); err != nil {
		return "", nil, err
	}
	if !create {
		found, err := k.find(ctx, subject)
		if err != nil {
			return "", nil, err
		}
		if len(found) == 0 {
			return "", nil, fmt.Errorf("%w: %s", personal.ErrNoKey, subject)
		}
		aead, err := newAEAD(found[0].keys[subject])
		if err != nil {
			return "", nil, err
		}
		dk := dataKey{id: subject + "." + found[0].batch, key: aead}
		k.current.Put(subject, dk)
		return dk.id, dk.key, nil
	}
	r := &keyRequest{subject: subject, done: make(chan struct{})}
	select {
	case k.make <- r:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.key.id, r.key.key, r.err
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
}

// Key implements personal.Keys.
func (k *Store) Key(ctx context.Context, id string) (cipher.AEAD, error) {
	if key, ok := k.byID.Get(id); ok {
		return key, nil
	}
	subject, batch, ok := strings.Cut(id, ".")
	if !ok || subject == "" || batch == "" {
		return nil, fmt.Errorf("%w: bad key id %q", personal.ErrNoKey, id)
	}
	if err := k.checkErased(subject); err != nil {
		return nil, err
	}
	keys, _, err := k.readBatch(ctx, batch)
	if err != nil {
		return nil, err
	}
	key, ok := keys[subject]
	if !ok {
		return nil, fmt.Errorf("%w: %s (batch %s does not hold it)", personal.ErrNoKey, subject, batch)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	k.byID.Put(id, aead)
	return aead, nil
}

// checkErased is personal.ErrErased when subject was erased.
func (k *Store) checkErased(subject string) error {
	k.erasedMu.RLock()
	defer k.erasedMu.RUnlock()
	if k.erased[subject] {
		return fmt.Errorf("%w: %s", personal.ErrErased, subject)
	}
	return nil
}

// IsErased implements personal.Keys, from memory.
func (k *Store) IsErased(_ context.Context, subject string) (bool, error) {
	return errors.Is(k.checkErased(subject), personal.ErrErased), nil
}

// readBatch reads and unwraps batch: personal.ErrNoKey when there is no such batch.
func (k *Store) readBatch(ctx context.Context, batch string) (map[string][]byte, uint64, error) {
	e, err := k.kv.Get(ctx, batchPrefix+batch)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: no batch %s", personal.ErrNoKey, batch)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("jskeys: read key batch %s: %w", batch, err)
	}
	keys, err := k.unwrapBatch(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("jskeys: key batch %s: %w", batch, err)
	}
	return keys, e.Revision(), nil
}

func (k *Store) unwrapBatch(b []byte) (map[string][]byte, error) {
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Wrapped) == 0 {
		return nil, errors.New("a damaged entry")
	}
	plain, err := k.ring.unwrap(rec)
	if err != nil {
		return nil, err
	}
	var keys map[string][]byte
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, errors.New("a damaged entry")
	}
	return keys, nil
}

func (k *Store) wrapBatch(keys map[string][]byte) ([]byte, error) {
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	rec, err := k.ring.wrap(plain)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rec)
}

// writeBatches makes the keys asked for: all those waiting when it starts a
// write share it, so new subjects cost one durable write per batch, not one
// each.
func (k *Store) writeBatches(ctx context.Context) {
	defer k.done.Done()
	for {
		var first *keyRequest
		select {
		case <-ctx.Done():
			return
		case first = <-k.make:
		}
		reqs := []*keyRequest{first}
	drain:
		for len(reqs) < maxBatch {
			select {
			case r := <-k.make:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		k.writeBatch(ctx, reqs)
	}
}

func (k *Store) writeBatch(ctx context.Context, reqs []*keyRequest) {
	batch := fmt.Sprintf("%s-%d", k.prefix, k.seq.Add(1))
	keys := map[string][]byte{}
	var err error
	for _, r := range reqs {
		if _, dup := keys[r.subject]; dup {
			continue
		}
		if dk, ok := k.current.Get(r.subject); ok { // made by an earlier batch meanwhile
			r.key = dk
			continue
		}
		key := make([]byte, 32)
		if _, err = rand.Read(key); err != nil {
			break
		}
		keys[r.subject] = key
	}
	if err == nil && len(keys) > 0 {
		var b []byte
		if b, err = k.wrapBatch(keys); err == nil {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err = k.kv.Create(wctx, batchPrefix+batch, b)
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("jskeys: store new data keys: %w", err)
		}
	}
	made := map[string]dataKey{}
	for subject, key := range keys {
		if err != nil {
			break
		}
		var aead cipher.AEAD
		if aead, err = newAEAD(key); err == nil {
			made[subject] = dataKey{id: subject + "." + batch, key: aead}
		}
	}
	for _, r := range reqs {
		if r.key.id == "" && err == nil {
			r.key = made[r.subject]
			k.current.Put(r.subject, r.key)
			k.byID.Put(r.key.id, r.key.key)
		}
		r.err = err
		close(r.done)
	}
}

// found is a batch that holds a subject's key.
type found struct {
	batch string
	rev   uint64
	keys  map[string][]byte
}

// find reads every batch and returns those holding subject's key.
func (k *Store) find(ctx context.Context, subject string) ([]found, error) {
	batches, err := k.batches(ctx)
	if err != nil {
		return nil, err
	}
	var out []found
	for _, b := range batches {
		keys, rev, err := k.readBatch(ctx, b)
		if errors.Is(err, personal.ErrNoKey) {
			continue // erased meanwhile
		}
		if err != nil {
			return nil, err
		}
		if _, ok := keys[subject]; ok {
			out = append(out, found{batch: b, rev: rev, keys: keys})
		}
	}
	return out, nil
}

// batches lists the batch ids in the bucket.
func (k *Store) batches(ctx context.Context) ([]string, error) {
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("jskeys: list key batches: %w", err)
	}
	var out []string
	for key := range lister.Keys() {
		if b, ok := strings.CutPrefix(key, batchPrefix); ok {
			out = append(out, b)
		}
	}
	return out, nil
}

// Erase implements personal.Keys. The erased mark is written first (from then on
// the subject's tokens read Erased everywhere), then every batch holding one
// of the subject's keys is rewritten without it and its previous entry
// overwritten on disk. Erasing a subject erased before finishes that if a
// crash interrupted it, and reports personal.ErrErased.
func (k *Store) Erase(ctx context.Context, subject string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	erasedBefore := errors.Is(k.checkErased(subject), personal.ErrErased)
	holding, err := k.find(ctx, subject)
	if err != nil {
		return err
	}
	if !erasedBefore {
		if len(holding) == 0 {
			return fmt.Errorf("%w: %s", personal.ErrNoKey, subject)
		}
		b, _ := json.Marshal(map[string]time.Time{"erased": time.Now().UTC()})
		if _, err := k.kv.Put(ctx, erasedPrefix+subject, b); err != nil {
			return fmt.Errorf("jskeys: mark %s erased: %w", subject, err)
		}
		k.markErased(subject)
	}
	for _, f := range holding {
		if err := k.removeFrom(ctx, f, subject); err != nil {
			return err
		}
	}
	// Another process may have made the subject a key before the mark
	// reached it (its watch): look again once that is past.
	select {
	case <-time.After(eraseSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	if holding, err = k.find(ctx, subject); err != nil {
		return err
	}
	for _, f := range holding {
		if err := k.removeFrom(ctx, f, subject); err != nil {
			return err
		}
	}
	if erasedBefore {
		return fmt.Errorf("%w: %s", personal.ErrErased, subject)
	}
	return nil
}

// removeFrom rewrites batch f without subject's key (or deletes it when
// nothing else is left) and overwrites the replaced entry on disk. Another
// process changing the batch meanwhile makes it read the batch again.
func (k *Store) removeFrom(ctx context.Context, f found, subject string) error {
	for attempt := 0; ; attempt++ {
		delete(f.keys, subject)
		var err error
		if len(f.keys) == 0 {
			err = k.kv.Delete(ctx, batchPrefix+f.batch, jetstream.LastRevision(f.rev))
		} else {
			var b []byte
			if b, err = k.wrapBatch(f.keys); err == nil {
				_, err = k.kv.Update(ctx, batchPrefix+f.batch, b, f.rev)
			}
		}
		if err == nil {
			return k.shred(ctx, batchPrefix+f.batch)
		}
		if attempt >= 8 || !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("jskeys: remove %s's key from batch %s: %w", subject, f.batch, err)
		}
		keys, rev, rerr := k.readBatch(ctx, f.batch)
		if errors.Is(rerr, personal.ErrNoKey) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
		f.keys, f.rev = keys, rev
	}
}

// shred overwrites on disk every entry of key but the latest.
func (k *Store) shred(ctx context.Context, key string) error {
	hist, err := k.kv.History(ctx, key)
	if err != nil {
		return fmt.Errorf("jskeys: history of %s: %w", key, err)
	}
	for _, e := range hist[:len(hist)-1] {
		err := k.stream.SecureDeleteMsg(ctx, e.Revision())
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("jskeys: overwrite %s: %w", key, err)
		}
	}
	return nil
}

// Rewrap wraps every batch of data keys that the keyring's primary master
// key does not wrap yet with it, overwriting the old entry on disk, and
// returns how many batches it rewrapped: after a rotation (a new key first
// in the keyring, the old one kept after it), once Rewrap has run, the old
// master key can be dropped from the keyring.
func (k *Store) Rewrap(ctx context.Context) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	batches, err := k.batches(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, batch := range batches {
		e, err := k.kv.Get(ctx, batchPrefix+batch)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		var rec record
		if json.Unmarshal(e.Value(), &rec) == nil && rec.Master == k.ring.Primary() {
			continue
		}
		keys, err := k.unwrapBatch(e.Value())
		if err != nil {
			return n, fmt.Errorf("jskeys: key batch %s: %w", batch, err)
		}
		b, err := k.wrapBatch(keys)
		if err != nil {
			return n, err
		}
		if _, err := k.kv.Update(ctx, batchPrefix+batch, b, e.Revision()); err != nil {
			return n, fmt.Errorf("jskeys: rewrap key batch %s: %w", batch, err)
		}
		// The entry under the old master key is overwritten, so dropping
		// that key from the keyring leaves nothing it could unwrap.
		if err := k.shred(ctx, batchPrefix+batch); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

const nonceSize = 12

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("jskeys: key: %w", err)
	}
	return cipher.NewGCM(block)
}

var _ personal.Keys = (*Store)(nil)
