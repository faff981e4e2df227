package personal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	typev1 "github.com/custody/custody/proto/custody/type/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// tokenPrefix starts every token: "pii1:<key id>:<base64url(nonce ‖ sealed)>",
// the key id being "<subject>.<key>" (Keys).
const tokenPrefix = "pii1:"

// ErrNoSubject: a message holds personal data in clear but does not say
// whose (no data_subject option, or its id field is empty). Such an event
// is refused rather than stored in clear.
var ErrNoSubject = errors.New("personal: personal data without a data subject")

// ErrDamaged: a token that does not decode, or whose ciphertext does not
// open under its key (edited, or sealed under another key).
var ErrDamaged = errors.New("personal: damaged token")

// Codec seals and reveals the personal fields of proto messages with the
// data keys of Keys. It is safe for concurrent use.
type Codec struct {
	keys Keys
}

// NewCodec returns a codec over keys.
func NewCodec(keys Keys) *Codec { return &Codec{keys: keys} }

// Keys is the codec's key store.
func (c *Codec) Keys() Keys { return c.keys }

// Seal returns m with every personal value replaced by a token of m's data
// subject, encrypted under the subject's data key (created at its first
// use). m itself is not changed: a message with something to seal is
// cloned, one without is returned as it is. A token of the subject that
// opens under its key (a value copied from an earlier event) is kept as it
// is; anything else — a value, another subject's token, a forged one — is
// sealed. Once the subject was erased, its new values are not kept at all:
// they are stored as Erased.
func (c *Codec) Seal(ctx context.Context, m proto.Message) (proto.Message, error) {
	md := m.ProtoReflect().Descriptor()
	p := planOf(md)
	if p == nil || !anyValue(m.ProtoReflect(), func(v string) bool { return v != "" }) {
		return m, nil
	}
	subject, err := subjectOf(p, m.ProtoReflect())
	if err != nil {
		return nil, err
	}
	if subject == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoSubject, md.FullName())
	}
	// A value is kept when it is empty, Erased, or a token of the subject
	// that opens (or can no longer be opened: the subject was erased).
	opens := map[string]dataKey{}
	kept := func(v string) bool {
		id, sealed, ok := parseToken(v)
		if !ok || SubjectOfKey(id) != subject {
			return v == "" || v == Erased
		}
		k, err := c.dataKeyOf(ctx, opens, id)
		if err != nil {
			return false // no such key: a forged token, sealed as a value
		}
		if k.aead == nil {
			return true
		}
		_, err = k.open(sealed)
		return err == nil
	}
	if !anyValue(m.ProtoReflect(), func(v string) bool { return !kept(v) }) {
		return m, nil // only the subject's own tokens: copied from an earlier event
	}
	keyID, aead, err := c.sealingKey(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("personal: seal %s: %w", md.FullName(), err)
	}
	ad := []byte(keyID)
	out := proto.Clone(m)
	err = rewrite(out.ProtoReflect(), func(_ *walker, v string) (string, error) {
		switch {
		case kept(v):
			return v, nil
		case aead == nil:
			return Erased, nil
		}
		return seal(aead, keyID, ad, v)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Reveal returns m with every token in its personal fields replaced by its
// value, or by Erased when its subject was erased. m is not changed; a
// message without tokens is returned as it is. Values that are not tokens
// (written before personal fields were sealed) are kept. A token whose key
// is missing for another reason, or that does not open, is an error naming
// the field.
func (c *Codec) Reveal(ctx context.Context, m proto.Message) (proto.Message, error) {
	if m == nil || !HasPersonal(m.ProtoReflect().Descriptor()) {
		return m, nil
	}
	if !anyValue(m.ProtoReflect(), func(v string) bool { return strings.HasPrefix(v, tokenPrefix) }) {
		return m, nil
	}
	out := proto.Clone(m)
	keys := map[string]dataKey{}
	err := rewrite(out.ProtoReflect(), func(w *walker, v string) (string, error) {
		id, sealed, ok := parseToken(v)
		if !ok {
			if strings.HasPrefix(v, tokenPrefix) { // Seal never stores such a value
				return "", fmt.Errorf("personal: reveal %s: %w: it does not decode", w.path(), ErrDamaged)
			}
			return v, nil
		}
		k, err := c.dataKeyOf(ctx, keys, id)
		if err != nil {
			return "", fmt.Errorf("personal: reveal %s: key %s: %w", w.path(), id, err)
		}
		if k.aead == nil { // every token of an erased subject reads Erased
			return Erased, nil
		}
		clear, err := k.open(sealed)
		if err != nil {
			return "", fmt.Errorf("personal: reveal %s: %w", w.path(), err)
		}
		return string(clear), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Field is one personal value of a message, by its path.
type Field struct {
	// Path names the field from the message's root, e.g.
	// "shipping_address.address_lines[0]".
	Path string `json:"path"`
	// Value is the value as Reveal shows it.
	Value string `json:"value"`
}

// sealingKey is the key subject's new values are sealed with, nil when the
// subject was erased.
func (c *Codec) sealingKey(ctx context.Context, subject string) (string, cipher.AEAD, error) {
	id, key, err := c.keys.DataKey(ctx, subject, true)
	if errors.Is(err, ErrErased) {
		return "", nil, nil
	}
	return id, key, err
}

// Fields returns m's personal values, revealed, in field order (empty ones
// left out): what an access request exports.
func (c *Codec) Fields(ctx context.Context, m proto.Message) ([]Field, error) {
	r, err := c.Reveal(ctx, m)
	if err != nil || r == nil {
		return nil, err
	}
	var out []Field
	err = rewrite(r.ProtoReflect(), func(w *walker, v string) (string, error) {
		if v != "" {
			out = append(out, Field{Path: w.path(), Value: v})
		}
		return v, nil
	})
	return out, err
}

// IsToken reports whether v is a sealed personal value.
func IsToken(v string) bool { return isToken(v) }

func isToken(v string) bool {
	_, _, ok := parseToken(v)
	return ok
}

// parseToken splits "pii1:<id>:<base64url>" into the key id and the sealed
// bytes (nonce first), newly decoded: opening them decrypts in place.
func parseToken(v string) (id string, sealed []byte, ok bool) {
	rest, found := strings.CutPrefix(v, tokenPrefix)
	if !found {
		return "", nil, false
	}
	id, b64, found := strings.Cut(rest, ":")
	if !found || id == "" {
		return "", nil, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(sealed) < nonceSize+tagSize {
		return "", nil, false
	}
	return id, sealed, true
}

const (
	nonceSize = 12
	tagSize   = 16
)

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("personal: data key: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal encrypts v under aead with a random nonce; the key id is the
// additional data, so a token cannot be passed off as another subject's.
func seal(aead cipher.AEAD, id string, ad []byte, v string) (string, error) {
	buf := make([]byte, nonceSize, nonceSize+len(v)+tagSize)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("personal: nonce: %w", err)
	}
	buf = append(buf, v...)
	buf = aead.Seal(buf[:nonceSize], buf[:nonceSize], buf[nonceSize:], ad) // in place
	tok := make([]byte, 0, len(tokenPrefix)+len(id)+1+base64.RawURLEncoding.EncodedLen(len(buf)))
	tok = append(append(append(tok, tokenPrefix...), id...), ':')
	return string(base64.RawURLEncoding.AppendEncode(tok, buf)), nil
}

// dataKey is a key as tokens are opened with: its cipher and its id, the
// additional data.
type dataKey struct {
	aead cipher.AEAD
	id   []byte
}

// dataKeyOf is key id, from known (one Seal's or Reveal's keys, by id) or
// else the key store, which it is then added to; its cipher is nil when
// its subject was erased. Any other failure (no such key) is an error.
func (c *Codec) dataKeyOf(ctx context.Context, known map[string]dataKey, id string) (dataKey, error) {
	if k, ok := known[id]; ok {
		return k, nil
	}
	a, err := c.keys.Key(ctx, id)
	switch {
	case errors.Is(err, ErrErased):
		a = nil
	case err != nil:
		return dataKey{}, err
	}
	k := dataKey{a, []byte(id)}
	known[id] = k
	return k, nil
}

// open decrypts a token's sealed bytes (parseToken's) in place.
func (k dataKey) open(sealed []byte) ([]byte, error) {
	ct := sealed[nonceSize:]
	clear, err := k.aead.Open(ct[:0], sealed[:nonceSize], ct, k.id)
	if err != nil {
		return nil, fmt.Errorf("%w: it does not open under key %s", ErrDamaged, k.id)
	}
	return clear, nil
}

// subjectOf reads m's data subject (m's type has a plan): "<kind>-<id>"
// from its data_subject option "<kind>:<field>", "" when the option is
// missing or the field is empty.
func subjectOf(p *plan, m protoreflect.Message) (string, error) {
	if p.subjectErr != nil || p.subjectField == nil {
		return "", p.subjectErr
	}
	id := m.Get(p.subjectField).String()
	if id == "" {
		return "", nil
	}
	return Subject(p.subjectKind, id), nil
}

// plan is what a walk visits in messages of one type: the personal string
// fields and the message fields that lead to one, with nothing else.
type plan struct {
	fields []step
	// The type's data_subject option: the subject's kind and id field
	// (nil: no option), or why the option is wrong.
	subjectKind  string
	subjectField protoreflect.FieldDescriptor
	subjectErr   error
}

type step struct {
	fd       protoreflect.FieldDescriptor
	personal bool  // a personal string (or list of them)
	sub      *plan // else the plan of the messages (list, map values) to walk
}

// plans caches a plan per message type (nil: no personal field in it).
var plans sync.Map // protoreflect.FullName → *plan

// planOf is md's plan, nil when messages of md hold no personal field.
func planOf(md protoreflect.MessageDescriptor) *plan {
	if v, ok := plans.Load(md.FullName()); ok {
		return v.(*plan)
	}
	p := buildPlan(md, map[protoreflect.FullName]bool{})
	plans.Store(md.FullName(), p)
	return p
}

func buildPlan(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) *plan {
	if seen[md.FullName()] {
		return nil // a type within itself is not walked again (no personal type of Custody is recursive)
	}
	seen[md.FullName()] = true
	defer delete(seen, md.FullName())
	p := &plan{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if isPersonal(fd) {
			p.fields = append(p.fields, step{fd: fd, personal: true})
		} else if nested := messageOf(fd); nested != nil {
			if sub := buildPlan(nested, seen); sub != nil {
				p.fields = append(p.fields, step{fd: fd, sub: sub})
			}
		}
	}
	if len(p.fields) == 0 {
		return nil
	}
	if opt, _ := proto.GetExtension(md.Options(), typev1.E_DataSubject).(string); opt != "" {
		kind, field, ok := strings.Cut(opt, ":")
		fd := md.Fields().ByName(protoreflect.Name(field))
		if !ok || fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
			p.subjectErr = fmt.Errorf("personal: %s: data_subject %q does not name a string field", md.FullName(), opt)
		} else {
			p.subjectKind, p.subjectField = kind, fd
		}
	}
	return p
}

// HasPersonal reports whether messages of md hold a personal field,
// directly or in a nested message.
func HasPersonal(md protoreflect.MessageDescriptor) bool { return planOf(md) != nil }

// isPersonal reports a string field marked personal.
func isPersonal(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() != protoreflect.StringKind || fd.IsMap() {
		return false
	}
	p, _ := proto.GetExtension(fd.Options(), typev1.E_Personal).(bool)
	return p
}

// messageOf is the message type of fd's values (map values included), or
// nil.
func messageOf(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return fd.Message()
	}
	return nil
}

// anyValue reports whether some personal value of m satisfies f.
func anyValue(m protoreflect.Message, f func(string) bool) bool {
	return rewrite(m, func(_ *walker, v string) (string, error) {
		if f(v) {
			return v, errFound
		}
		return v, nil
	}) == errFound
}

// errFound stops anyValue's walk at the first value it looks for.
var errFound = errors.New("found")

// rewrite calls f with every personal value of m (set fields only), in
// field order, and stores what f returns when it differs; w.path() names
// the value, for the callers that need it.
func rewrite(m protoreflect.Message, f func(w *walker, v string) (string, error)) error {
	w := walker{f: f}
	return w.walk(m)
}

// walker visits the personal values of a message along its type's plan,
// calling f with each and storing what f returns when it differs. It keeps
// where it is as a stack of steps, so that a path is made only when f asks
// for one (w.path): sealing and the checks before it never do.
type walker struct {
	f     func(w *walker, v string) (string, error)
	steps []pathStep
	buf   [4]pathStep // steps' first backing array
}

// pathStep is one field on the way to a value: a list's index (or -1),
// or a map's key.
type pathStep struct {
	fd    protoreflect.FieldDescriptor
	index int
	key   *protoreflect.MapKey
}

// path names the value f is called with, e.g. "shipping_address.address_lines[0]".
func (w *walker) path() string {
	var b strings.Builder
	for i, s := range w.steps {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(s.fd.Name()))
		switch {
		case s.key != nil:
			b.WriteString("[" + s.key.String() + "]")
		case s.index >= 0:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		}
	}
	return b.String()
}

func (w *walker) walk(m protoreflect.Message) error {
	w.steps = w.buf[:0]
	return w.walkPlan(planOf(m.Descriptor()), m)
}

func (w *walker) walkPlan(p *plan, m protoreflect.Message) error {
	if p == nil {
		return nil
	}
	for _, st := range p.fields {
		fd := st.fd
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		w.steps = append(w.steps, pathStep{fd: fd, index: -1})
		at := &w.steps[len(w.steps)-1]
		var err error
		switch {
		case st.personal && fd.IsList():
			list := v.List()
			for i := 0; i < list.Len() && err == nil; i++ {
				at.index = i
				old := list.Get(i).String()
				var nv string
				if nv, err = w.f(w, old); err == nil && nv != old {
					list.Set(i, protoreflect.ValueOfString(nv))
				}
			}
		case st.personal:
			old := v.String()
			var nv string
			if nv, err = w.f(w, old); err == nil && nv != old {
				m.Set(fd, protoreflect.ValueOfString(nv))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.steps[len(w.steps)-1].key = &k
				err = w.walkPlan(st.sub, mv.Message())
				return err == nil
			})
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len() && err == nil; i++ {
				w.steps[len(w.steps)-1].index = i
				err = w.walkPlan(st.sub, list.Get(i).Message())
			}
		default:
			err = w.walkPlan(st.sub, v.Message())
		}
		w.steps = w.steps[:len(w.steps)-1]
		if err != nil {
			return err
		}
	}
	return nil
}
