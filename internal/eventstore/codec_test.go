package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

const testKey = "correct horse battery staple 42!"

// TestEventsStoredBeforeTheEnvelope: events written by earlier builds (type,
// version and id in headers, the body sealed under the old additional
// data) are read as they were, and the stream goes on after them.
func TestEventsStoredBeforeTheEnvelope(t *testing.T) {
	t.Parallel()
	for _, encrypted := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "encrypted"}[encrypted]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir())
			es, key := &spec.EventStore{}, ""
			if encrypted {
				es.Encryption = spec.EventStoreEncryption{Enabled: true, Key: &spec.SecretRef{Secret: "k"}}
				key = testKey
			}
			// The old format, by hand, as the store wrote it.
			aead, _ := newAEAD(testKey)
			for v, id := range []string{"a1", "a2"} {
				m := nats.NewMsg("shop.eventstore.user-7")
				m.Header[hdrMsgID] = []string{"user-7/" + id}
				m.Header[hdrEventType] = []string{"Renamed"}
				m.Header[hdrVersion] = []string{string(rune('0' + v))}
				m.Data = []byte(`{"d":{"v":` + string(rune('0'+v)) + `}}`)
				if encrypted {
					nonce := make([]byte, aead.NonceSize())
					_, _ = rand.Read(nonce)
					m.Data = aead.Seal(nonce, nonce, m.Data, legacyAAD(m.Subject, id))
					m.Header[hdrEncrypted] = []string{encAESGCM}
				}
				// The stream exists once a store has started.
				if v == 0 {
					newStore(t, b, es, nil, key).Stop(context.Background())
				}
				if _, err := b.JetStream().PublishMsg(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
			s := newStore(t, b, es, nil, key)
			ctx := context.Background()
			res := mustAppend(t, s, "user-7", "1", ev("a3", "Renamed", `{"v":2}`))
			if res.FirstVersion != 2 {
				t.Fatalf("append after the old events: %+v, want version 2", res)
			}
			if dup := mustAppend(t, s, "user-7", apitype.ExpectAny, ev("a2", "Renamed", `{"v":1}`)); !dup.Duplicate || dup.FirstVersion != 1 {
				t.Fatalf("an old id again with any: %+v, want a duplicate of version 1", dup)
			}
			got, _, err := s.ReadStream(ctx, "user-7", 0, false, 10)
			if err != nil {
				t.Fatal(err)
			}
			if ids := eventIDs(got); ids != "a1 a2 a3" {
				t.Fatalf("user-7 holds %s, want a1 a2 a3", ids)
			}
			for i, e := range got {
				want := `{"v":` + string(rune('0'+i)) + `}`
				if e.Version != int64(i) || e.Type != "Renamed" || string(e.Data) != want {
					t.Fatalf("event %d: %+v, want version %d, Renamed, %s", i, e, i, want)
				}
			}
			all, _, err := s.ReadAll(ctx, 1, "user-*", []string{"Renamed"}, 10)
			if err != nil || len(all) != 3 {
				t.Fatalf("read all by type: %d events, %v", len(all), err)
			}
		})
	}
}

// TestSealedEnvelopeIsBound: a sealed payload opens only under the
// envelope's head it was sealed with, so an event's type or version edited
// on disk is refused, not read as another event.
func TestSealedEnvelopeIsBound(t *testing.T) {
	t.Parallel()
	s, err := New(Config{App: &spec.App{Name: "shop", EventStore: &spec.EventStore{
		Encryption: spec.EventStoreEncryption{Enabled: true, Key: &spec.SecretRef{Secret: "k"}},
	}}, Broker: nopBroker{}, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.encode("acct-1", 4, outgoing{EventData: ev("x1", "Deposited", `{"amount":10}`), idGiven: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.decode(m.Subject, 9, time.Now(), nil, m.Data)
	if err != nil || got.Version != 4 || got.Type != "Deposited" || got.ID != "x1" || string(got.Data) != `{"amount":10}` {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	edited := []byte(string(m.Data))
	i := strings.Index(string(edited), "Deposited")
	copy(edited[i:], "Withdrawn")
	if _, err := s.decode(m.Subject, 9, time.Now(), nil, edited); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("decode with an edited type: %v, want a refusal", err)
	}
	if _, err := s.decode("shop.eventstore.acct-2", 9, time.Now(), nil, m.Data); err == nil {
		t.Fatal("decode under another stream: no error")
	}
}

// FuzzReadStored: no stored message, however damaged, panics the reader.
func FuzzReadStored(f *testing.F) {
	s := &Store{n: names{app: "shop"}}
	for _, idGiven := range []bool{false, true} {
		m, err := s.encode("user-1", 300, outgoing{EventData: ev("id-1", "T", `{"a":[1,2]}`), idGiven: idGiven}, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Data)
	}
	f.Add([]byte{envelopeV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{envelopeV1, 0, 1, 200, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := s.readStored("shop.eventstore.user-1", 1, nil, data)
		if err != nil {
			return
		}
		if st.version < 0 {
			t.Fatalf("negative version %d", st.version)
		}
		var b body
		_ = json.Unmarshal(st.payload, &b)
	})
}

// nopBroker is a broker that never started: New needs one, and the tests
// above only encode and decode.
type nopBroker struct{}

func (nopBroker) Conn() *nats.Conn { return nil }

func (nopBroker) JetStream() jetstream.JetStream { return nil }
