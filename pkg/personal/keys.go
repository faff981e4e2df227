package personal

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/pkg/lru"
)

// Keyring holds the master keys that wrap the data keys. The first is the
// primary: new data keys are wrapped with it. The others only unwrap data
// keys wrapped before a rotation, until KVKeys.Rewrap has wrapped them
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
			return nil, fmt.Errorf("personal: keyring line %d: want \"<id> <base64 key>\" with an id of letters, digits, '-' or '_'", n)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("personal: keyring line %d: master key %s is not 32 bytes in base64", n, id)
		}
		if _, dup := r.keys[id]; dup {
			return nil, fmt.Errorf("personal: keyring line %d: master key %s twice", n, id)
		}
		r.ids = append(r.ids, id)
		r.keys[id] = key
	}
	if len(r.ids) == 0 {
		return nil, errors.New("personal: the keyring has no master key")
	}
	return r, nil
}

// NewMasterKeyLine returns a keyring line with a new random master key.
func NewMasterKeyLine(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("personal: bad master key id %q", id)
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
		return nil, fmt.Errorf("personal: master keys: %w (set %s or create the file)", err, MasterKeysEnv)
	}
	return ParseKeyring(string(b))
}

// Primary is the id of the key that wraps new data keys.
func (r *Keyring) Primary() string { return r.ids[0] }

func (r *Keyring) wrap(dataKey []byte) (record, error) {
	aead, err := newAEAD(r.keys[r.ids[0]])
	if err != nil {
		return record{}, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return record{}, err
	}
	return record{Master: r.ids[0], Nonce: nonce, Wrapped: aead.Seal(nil, nonce, dataKey, []byte(r.ids[0]))}, nil
}

func (r *Keyring) unwrap(rec record) ([]byte, error) {
	master, ok := r.keys[rec.Master]
	if !ok {
		return nil, fmt.Errorf("personal: the data key is wrapped by master key %q, which the keyring does not hold", rec.Master)
	}
	aead, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, rec.Nonce, rec.Wrapped, []byte(rec.Master))
	if err != nil {
		return nil, fmt.Errorf("personal: the data key does not unwrap with master key %q", rec.Master)
	}
	return key, nil
}

// record is a data key's entry in the bucket: the key wrapped by a master
// key, or the mark that the subject was erased.
type record struct {
	Master  string    `json:"master,omitempty"`
	Nonce   []byte    `json:"nonce,omitempty"`
	Wrapped []byte    `json:"wrapped,omitempty"`
	Erased  time.Time `json:"erased,omitzero"`
}

// KVConfig configures KVKeys.
type KVConfig struct {
	// Bucket is the key-value bucket. Default DefaultKeyBucket.
	Bucket string
	// Replicas of the bucket's stream (1 embedded, 3 in a cluster).
	Replicas int
	// CacheSize bounds the unwrapped data keys kept in memory. Default
	// 4096.
	CacheSize int
}

// DefaultKeyBucket is the bucket of the data keys.
const DefaultKeyBucket = "custody_keys"

// KVKeys keeps the data keys in a JetStream key-value bucket, one entry
// per subject, wrapped by the keyring's master key, with an LRU cache of
// unwrapped keys in front. The bucket keeps one revision per key and
// allows deletion, unlike the event streams. Erase writes the erased mark
// and overwrites the key's message on disk (JetStream's secure delete), and
// every process's cache drops the key when the bucket says so.
type KVKeys struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
	ring   *Keyring
	cache  *lru.Cache[string, []byte]
	mu     sync.Mutex // serialises Erase and Rewrap in this process
	stop   context.CancelFunc
	done   chan struct{}
}

// OpenKV opens (creating if need be) the bucket and starts watching it.
func OpenKV(ctx context.Context, js jetstream.JetStream, ring *Keyring, cfg KVConfig) (*KVKeys, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultKeyBucket
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	// The bucket's stream is made here rather than by
	// CreateKeyValue, which denies deleting a message (for good: the flag
	// cannot be lifted later), and erasure must delete one. The rest is
	// what a key-value bucket's stream is.
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              "KV_" + cfg.Bucket,
		Description:       "Custody data keys, one per data subject, wrapped by a master key; erasing a subject destroys its key",
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
		return nil, fmt.Errorf("personal: key bucket: %w", err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("personal: key bucket: %w", err)
	}
	k := &KVKeys{kv: kv, stream: stream, ring: ring, cache: lru.New[string, []byte](cfg.CacheSize), done: make(chan struct{})}
	wctx, stop := context.WithCancel(context.Background())
	k.stop = stop
	w, err := kv.WatchAll(wctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		stop()
		return nil, fmt.Errorf("personal: watch the key bucket: %w", err)
	}
	go func() {
		defer close(k.done)
		defer w.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case e := <-w.Updates():
				if e != nil {
					// A key that changed elsewhere (erased, rewrapped) is
					// read again at its next use.
					k.cache.Remove(e.Key())
				}
			}
		}
	}()
	return k, nil
}

// Primary is the id of the master key that wraps new data keys.
func (k *KVKeys) Primary() string { return k.ring.Primary() }

// Close stops watching the bucket.
func (k *KVKeys) Close() error {
	k.stop()
	<-k.done
	return nil
}

// DataKey implements Keys.
func (k *KVKeys) DataKey(ctx context.Context, subject string, create bool) ([]byte, error) {
	if key, ok := k.cache.Get(subject); ok {
		return key, nil
	}
	rec, _, err := k.get(ctx, subject)
	if errors.Is(err, ErrNoKey) && create {
		rec, err = k.create(ctx, subject)
	}
	if err != nil {
		return nil, err
	}
	if !rec.Erased.IsZero() {
		return nil, fmt.Errorf("%w: %s", ErrErased, subject)
	}
	key, err := k.ring.unwrap(rec)
	if err != nil {
		return nil, fmt.Errorf("personal: key %s: %w", subject, err)
	}
	k.cache.Put(subject, key)
	return key, nil
}

// create makes subject's data key; when another writer made one first,
// that one is the key.
func (k *KVKeys) create(ctx context.Context, subject string) (record, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return record{}, err
	}
	rec, err := k.ring.wrap(key)
	if err != nil {
		return record{}, err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return record{}, err
	}
	if _, err := k.kv.Create(ctx, subject, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			rec, _, err = k.get(ctx, subject)
			return rec, err
		}
		return record{}, fmt.Errorf("personal: create key %s: %w", subject, err)
	}
	return rec, nil
}

// get reads subject's entry: ErrNoKey when there is none.
func (k *KVKeys) get(ctx context.Context, subject string) (record, uint64, error) {
	e, err := k.kv.Get(ctx, subject)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, fmt.Errorf("%w: %s", ErrNoKey, subject)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("personal: read key %s: %w", subject, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil || (rec.Erased.IsZero() && len(rec.Wrapped) == 0) {
		return record{}, 0, fmt.Errorf("personal: key %s: a damaged entry", subject)
	}
	return rec, e.Revision(), nil
}

// Erase implements Keys. The erased mark is written first, then every
// earlier entry of the key is overwritten on disk (JetStream's secure
// delete; the bucket keeps two revisions per key so that the old one is
// still there to be overwritten). Erasing a subject erased before finishes
// that overwrite if a crash interrupted it, and reports ErrErased.
func (k *KVKeys) Erase(ctx context.Context, subject string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec, _, err := k.get(ctx, subject)
	if err != nil {
		return err
	}
	erasedBefore := !rec.Erased.IsZero()
	if !erasedBefore {
		b, _ := json.Marshal(record{Erased: time.Now().UTC()})
		if _, err := k.kv.Put(ctx, subject, b); err != nil {
			return fmt.Errorf("personal: mark %s erased: %w", subject, err)
		}
	}
	k.cache.Remove(subject)
	if err := k.shred(ctx, subject); err != nil {
		return err
	}
	if erasedBefore {
		return fmt.Errorf("%w: %s", ErrErased, subject)
	}
	return nil
}

// shred overwrites on disk every entry of subject but the latest.
func (k *KVKeys) shred(ctx context.Context, subject string) error {
	hist, err := k.kv.History(ctx, subject)
	if err != nil {
		return fmt.Errorf("personal: history of key %s: %w", subject, err)
	}
	for _, e := range hist[:len(hist)-1] {
		err := k.stream.SecureDeleteMsg(ctx, e.Revision())
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("personal: overwrite key %s: %w", subject, err)
		}
	}
	return nil
}

// Rewrap wraps every data key not wrapped by the keyring's primary master
// key with it, and returns how many it rewrapped: after a rotation (a new
// key first in the keyring, the old one kept after it), once Rewrap has
// run, the old master key can be dropped from the keyring.
func (k *KVKeys) Rewrap(ctx context.Context) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lister, err := k.kv.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	var subjects []string
	for s := range lister.Keys() {
		subjects = append(subjects, s)
	}
	n := 0
	for _, s := range subjects {
		rec, rev, err := k.get(ctx, s)
		if errors.Is(err, ErrNoKey) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !rec.Erased.IsZero() || rec.Master == k.ring.Primary() {
			continue
		}
		key, err := k.ring.unwrap(rec)
		if err != nil {
			return n, fmt.Errorf("personal: key %s: %w", s, err)
		}
		nrec, err := k.ring.wrap(key)
		if err != nil {
			return n, err
		}
		b, _ := json.Marshal(nrec)
		if _, err := k.kv.Update(ctx, s, b, rev); err != nil {
			return n, fmt.Errorf("personal: rewrap key %s: %w", s, err)
		}
		// The entry under the old master key is overwritten, so dropping
		// that key from the keyring leaves nothing it could unwrap.
		if err := k.shred(ctx, s); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
