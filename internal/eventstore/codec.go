package eventstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// How an event is stored. The message's body is an envelope: a short
// binary head with what reads filter and order by (version, id, type, the
// appending span's traceparent), readable without the key, then the data
// and metadata as JSON, sealed when encryption is on:
//
//	0x01                format
//	flags               1 byte: flagSealed, flagIDGiven
//	version             uvarint
//	id, type, traceparent  each a uvarint length, then the bytes
//	payload             {"d":DATA,"m":METADATA}, or nonce ‖ AES-GCM(that)
//
// No header: any header costs the server a scan of it for each of about
// fifteen JetStream headers on every publish (bench/README.md), and an
// append of nubo up publishes none (sole writer, see Append). Events
// stored before the envelope carry their type, version and id in headers
// (hdrEventType, hdrVersion, the message id) and are read as they are.
const (
	envelopeV1 = 0x01

	flagSealed  = 1 << 0 // the payload is sealed (encAESGCM)
	flagIDGiven = 1 << 1 // the client chose the id (see idWindow)
)

// Headers of events stored before the envelope.
const (
	hdrEventType = "Nubo-Event-Type"
	hdrVersion   = "Nubo-Version"
	hdrEncrypted = "Nubo-Encryption"
)

// encAESGCM is the Nubo-Encryption value of data sealed by sealBody.
const encAESGCM = "aes-256-gcm-1"

// body is a stored event's payload before encryption.
type body struct {
	Data     json.RawMessage `json:"d,omitempty"`
	Metadata json.RawMessage `json:"m,omitempty"`
}

// newAEAD derives the data key from the secret's value: HKDF-SHA256 with a
// fixed, versioned label, so a key of any length (a passphrase, 32 random
// bytes in base64) gives a 256-bit AES-GCM key. AES-GCM with a random
// 96-bit nonce per event is safe for far more events than one store holds
// (NIST's bound is 2^32 messages per key).
func newAEAD(secret string) (cipher.AEAD, error) {
	if len(secret) < 16 {
		return nil, errors.New("the key's secret value is shorter than 16 bytes (use e.g. `openssl rand -base64 32`)")
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "nubo eventstore data key v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// outgoing is an event of an append, checked (checkEvents).
type outgoing struct {
	apitype.EventData
	idGiven bool // the client chose the id; else the store made one
}

// encode makes the message of one event at version v of stream; tp is the
// appending span's traceparent, if any. It has no header: the caller adds
// what JetStream must check.
func (s *Store) encode(stream string, v int64, ev outgoing, tp string) (*nats.Msg, error) {
	m := &nats.Msg{Subject: s.n.subject(stream)}
	payload := encodeBody(ev.Data, ev.Metadata)
	var flags byte
	if ev.idGiven {
		flags |= flagIDGiven
	}
	if s.aead != nil {
		flags |= flagSealed
	}
	n := 1 + 1 + 3*binary.MaxVarintLen64 + len(ev.ID) + len(ev.Type) + len(tp)
	size := n + len(payload)
	if s.aead != nil {
		size += s.aead.NonceSize() + s.aead.Overhead()
	}
	b := make([]byte, 0, size)
	b = append(b, envelopeV1, flags)
	b = binary.AppendUvarint(b, uint64(v))
	for _, f := range [...]string{ev.ID, ev.Type, tp} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if s.aead != nil {
		head := len(b)
		nonce := b[head : head+s.aead.NonceSize()]
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		b = b[:head+len(nonce)]
		// The subject and the envelope's head are the additional data: a
		// sealed payload copied onto another event, or under an edited
		// type or version, does not open.
		b = s.aead.Seal(b, nonce, payload, sealedAAD(m.Subject, b[:head]))
	} else {
		b = append(b, payload...)
	}
	m.Data = b
	return m, nil
}

// encodeBody writes what json.Marshal(body{data, meta}) would, by hand:
// both are valid JSON already (checkEvents), so there is nothing to check
// or escape, and they are stored as the client sent them.
func encodeBody(data, meta json.RawMessage) []byte {
	b := make([]byte, 0, len(`{"d":,"m":}`)+len(data)+len(meta))
	b = append(b, '{')
	if len(data) > 0 {
		b = append(b, `"d":`...)
		b = append(b, data...)
	}
	if len(meta) > 0 {
		if len(data) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"m":`...)
		b = append(b, meta...)
	}
	return append(b, '}')
}

func sealedAAD(subject string, head []byte) []byte {
	aad := make([]byte, 0, len(subject)+1+len(head))
	aad = append(aad, subject...)
	aad = append(aad, 0)
	return append(aad, head...)
}

// legacyAAD is the additional data of events sealed before the envelope.
func legacyAAD(subject, id string) []byte { return []byte(subject + "\x00" + id) }

// stored is what a stored message says of its event before its payload is
// opened: enough to filter, order and deduplicate.
type stored struct {
	version     int64
	id, typ, tp string
	idGiven     bool
	sealed      bool
	legacy      bool   // stored before the envelope: in headers
	head        []byte // the envelope's head (the sealed payload's AAD)
	payload     []byte
}

// readStored reads a stored message's envelope, or the headers of an event
// stored before the envelope.
func (s *Store) readStored(subject string, seq uint64, h nats.Header, data []byte) (stored, error) {
	if v := h.Get(hdrVersion); v != "" {
		return readLegacy(s.n.streamName(subject), seq, v, h, data)
	}
	bad := func(what string) (stored, error) {
		return stored{}, fmt.Errorf("event at position %d of stream %q: %s", seq, s.n.streamName(subject), what)
	}
	if len(data) < 2 || data[0] != envelopeV1 {
		return bad("not an event of this store (no envelope)")
	}
	st := stored{idGiven: data[1]&flagIDGiven != 0, sealed: data[1]&flagSealed != 0}
	rest := data[2:]
	v, n := binary.Uvarint(rest)
	if n <= 0 || v > 1<<62 {
		return bad("bad version in the envelope")
	}
	st.version, rest = int64(v), rest[n:]
	var fields [3]string
	for i := range fields {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return bad("truncated envelope")
		}
		fields[i], rest = string(rest[n:n+int(l)]), rest[n+int(l):]
	}
	st.id, st.typ, st.tp = fields[0], fields[1], fields[2]
	st.head, st.payload = data[:len(data)-len(rest)], rest
	return st, nil
}

func readLegacy(stream string, seq uint64, version string, h nats.Header, data []byte) (stored, error) {
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return stored{}, fmt.Errorf("event at position %d of stream %q: bad version header %q", seq, stream, version)
	}
	st := stored{
		version: v, legacy: true, idGiven: true, // unknown, so assume chosen
		id:      strings.TrimPrefix(h.Get(hdrMsgID), stream+"/"),
		typ:     h.Get(hdrEventType),
		tp:      h.Get(hdrTraceparent),
		payload: data,
	}
	switch enc := h.Get(hdrEncrypted); enc {
	case "":
	case encAESGCM:
		st.sealed = true
	default:
		return stored{}, fmt.Errorf("event at position %d of stream %q: unknown encryption %q", seq, stream, enc)
	}
	return st, nil
}

// decode turns a stored message back into an event.
func (s *Store) decode(subject string, seq uint64, ts time.Time, h nats.Header, data []byte) (apitype.RecordedEvent, error) {
	st, err := s.readStored(subject, seq, h, data)
	if err != nil {
		return apitype.RecordedEvent{}, err
	}
	return s.decodeStored(subject, seq, ts, st)
}

// decodeStored opens the payload of a read envelope.
func (s *Store) decodeStored(subject string, seq uint64, ts time.Time, st stored) (apitype.RecordedEvent, error) {
	ev := apitype.RecordedEvent{
		Stream: s.n.streamName(subject), ID: st.id, Type: st.typ, Version: st.version,
		Position: seq, Time: ts.UTC(), Traceparent: st.tp,
	}
	payload := st.payload
	if st.sealed {
		if s.aead == nil {
			return ev, fmt.Errorf("event at position %d of stream %q is encrypted and eventStore.encryption is off", seq, ev.Stream)
		}
		ns := s.aead.NonceSize()
		if len(payload) < ns {
			return ev, fmt.Errorf("event at position %d of stream %q: sealed data too short", seq, ev.Stream)
		}
		aad := legacyAAD(subject, st.id)
		if !st.legacy {
			aad = sealedAAD(subject, st.head)
		}
		plain, err := s.aead.Open(nil, payload[:ns], payload[ns:], aad)
		if err != nil {
			return ev, fmt.Errorf("event at position %d of stream %q: cannot decrypt (was the key changed, or the event edited?)", seq, ev.Stream)
		}
		payload = plain
	}
	var b body
	if err := json.Unmarshal(payload, &b); err != nil {
		return ev, fmt.Errorf("event at position %d of stream %q: %w", seq, ev.Stream, err)
	}
	ev.Data, ev.Metadata = b.Data, b.Metadata
	return ev, nil
}

// decodeMatching decodes m if its stream and type pass f; the payload of
// one that does not is not opened.
func (s *Store) decodeMatching(m rawMsg, f filter) (apitype.RecordedEvent, bool, error) {
	if !f.matchStream(s.n.streamName(m.subject)) {
		return apitype.RecordedEvent{}, false, nil
	}
	st, err := s.readStored(m.subject, m.seq, m.header, m.data)
	if err != nil {
		return apitype.RecordedEvent{}, false, err
	}
	if !f.matchType(st.typ) {
		return apitype.RecordedEvent{}, false, nil
	}
	ev, err := s.decodeStored(m.subject, m.seq, m.time, st)
	return ev, err == nil, err
}

func (s *Store) decodeRaw(m rawMsg) (apitype.RecordedEvent, error) {
	return s.decode(m.subject, m.seq, m.time, m.header, m.data)
}

// EncryptionKey returns the value of the encryption key's secret when
// eventStore.encryption is enabled (else ""): the secret's key named
// "key", or its only key. get looks a secret's key up.
func EncryptionKey(app *spec.App, get func(secret, key string) (string, bool)) (string, error) {
	es := app.EventStore
	if es == nil || !es.Encryption.Enabled {
		return "", nil
	}
	if es.Encryption.Key == nil || es.Encryption.Key.Secret == "" {
		return "", errors.New("eventstore: encryption: no key.secret")
	}
	name := es.Encryption.Key.Secret
	k := "key"
	if sec := app.Secrets[name]; sec != nil && len(sec.Keys) == 1 {
		k = sec.Keys[0]
	}
	v, ok := get(name, k)
	if !ok {
		return "", fmt.Errorf("eventstore: encryption: secret %q has no value for key %q (name it key, or give the secret one key)", name, k)
	}
	return v, nil
}
