package eventstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
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

// Headers of a stored event. The type and version stay readable in
// headers, encrypted or not, so that reads filter by type without the key.
// The event's id is the message id's part after "STREAM/".
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

// encode makes the message of one event at version v of stream.
func (s *Store) encode(stream string, v int64, ev apitype.EventData) (*nats.Msg, error) {
	m := nats.NewMsg(s.n.subject(stream))
	// Set by hand: nats.Header.Set canonicalizes each key, which these
	// are already.
	m.Header[hdrMsgID] = []string{stream + "/" + ev.ID}
	m.Header[hdrEventType] = []string{ev.Type}
	m.Header[hdrVersion] = []string{strconv.FormatInt(v, 10)}
	data := encodeBody(ev.Data, ev.Metadata)
	if s.aead != nil {
		nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(data)+s.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		// The subject and id are the additional data: a sealed body
		// copied onto another event does not open.
		data = s.aead.Seal(nonce, nonce, data, aad(m.Subject, ev.ID))
		m.Header.Set(hdrEncrypted, encAESGCM)
	}
	m.Data = data
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

func aad(subject, id string) []byte { return []byte(subject + "\x00" + id) }

// decode turns a stored message back into an event.
func (s *Store) decode(subject string, seq uint64, ts time.Time, h nats.Header, data []byte) (apitype.RecordedEvent, error) {
	stream := s.n.streamName(subject)
	ev := apitype.RecordedEvent{
		Stream:   stream,
		ID:       strings.TrimPrefix(h.Get(hdrMsgID), stream+"/"),
		Type:     h.Get(hdrEventType),
		Position: seq,
		Time:     ts.UTC(),
	}
	v, err := strconv.ParseInt(h.Get(hdrVersion), 10, 64)
	if err != nil {
		return ev, fmt.Errorf("event at position %d: no version header", seq)
	}
	ev.Version = v
	ev.Traceparent = h.Get(hdrTraceparent)
	switch enc := h.Get(hdrEncrypted); enc {
	case "":
	case encAESGCM:
		if s.aead == nil {
			return ev, fmt.Errorf("event at position %d of stream %q is encrypted and eventStore.encryption is off", seq, ev.Stream)
		}
		ns := s.aead.NonceSize()
		if len(data) < ns {
			return ev, fmt.Errorf("event at position %d of stream %q: sealed data too short", seq, ev.Stream)
		}
		plain, err := s.aead.Open(nil, data[:ns], data[ns:], aad(subject, ev.ID))
		if err != nil {
			return ev, fmt.Errorf("event at position %d of stream %q: cannot decrypt (was the key changed?)", seq, ev.Stream)
		}
		data = plain
	default:
		return ev, fmt.Errorf("event at position %d of stream %q: unknown encryption %q", seq, ev.Stream, enc)
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil {
		return ev, fmt.Errorf("event at position %d of stream %q: %w", seq, ev.Stream, err)
	}
	ev.Data, ev.Metadata = b.Data, b.Metadata
	return ev, nil
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
