package events

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Events are stored in JetStream in the CloudEvents binary mode, as the
// NATS protocol binding does it: each attribute in a ce-NAME header,
// datacontenttype in Content-Type, data as the message body. A delivery
// over HTTP in binary mode then copies headers, and data is never parsed
// on the way through.
//
// Header values are percent-encoded where NATS headers cannot hold them
// (CR, LF, other control characters) and for '%' itself, as the HTTP
// binding does for what HTTP headers cannot hold.

// Headers nubo adds to stored messages; none of them is a CloudEvents
// attribute, so none of them reaches a target's ce- headers.
const (
	// hdrOrigin names where a dead letter failed: queue:NAME, topic:NAME,
	// rule:NAME or schedule:NAME.
	hdrOrigin = "Nubo-Origin"
	// hdrSubscription is the index of the topic subscription that failed.
	hdrSubscription = "Nubo-Subscription"
	// hdrAttempts is the number of deliveries a dead letter had.
	hdrAttempts = "Nubo-Attempts"
	// hdrLastError is why the last delivery failed.
	hdrLastError = "Nubo-Last-Error"
	// hdrDeadLettered is when the event was dead-lettered (RFC 3339).
	hdrDeadLettered = "Nubo-Dead-Lettered"

	hdrContentType = "Content-Type"
	cePrefix       = "ce-"
)

// encodeEvent builds the message that stores ev on subject.
func encodeEvent(subject string, ev *event.Event) *nats.Msg {
	h := make(nats.Header, 8)
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{escapeValue(v)}
		}
	}
	set("ce-specversion", ev.SpecVersion())
	set("ce-id", ev.ID())
	set("ce-source", ev.Source())
	set("ce-type", ev.Type())
	set("ce-subject", ev.Subject())
	set("ce-dataschema", ev.DataSchema())
	if t := ev.Time(); !t.IsZero() {
		set("ce-time", t.UTC().Format(time.RFC3339Nano))
	}
	set(hdrContentType, ev.DataContentType())
	// An extension is kept even with an empty value: a client sent it,
	// and a filter's EXISTS sees it (found by FuzzReadEvents).
	for k, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err == nil {
			h[cePrefix+k] = []string{escapeValue(s)}
		}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: ev.Data()}
}

// decodeEvent rebuilds the event a message stores.
func decodeEvent(h nats.Header, data []byte) (*event.Event, error) {
	ev := event.New(event.CloudEventsVersionV1)
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		v, err := unescapeValue(vs[0])
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		lk := strings.ToLower(k)
		if lk == "content-type" {
			ev.SetDataContentType(v)
			continue
		}
		name, ok := strings.CutPrefix(lk, cePrefix)
		if !ok {
			continue
		}
		switch name {
		case "specversion":
			ev.SetSpecVersion(v)
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "dataschema":
			ev.SetDataSchema(v)
		case "time":
			t, err := types.ParseTime(v)
			if err != nil {
				return nil, fmt.Errorf("attribute time %q: %w", v, err)
			}
			ev.SetTime(t)
		default:
			ev.SetExtension(name, v)
		}
	}
	if len(data) > 0 {
		ev.DataEncoded = data
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("stored event: %w", err)
	}
	return &ev, nil
}

// escapeValue percent-encodes what a NATS header value cannot hold.
func escapeValue(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescapeValue(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	return url.PathUnescape(v)
}

// headerValue reads one of nubo's headers.
func headerValue(h nats.Header, k string) string {
	v, err := unescapeValue(h.Get(k))
	if err != nil {
		return h.Get(k)
	}
	return v
}

// headerInt reads one of nubo's numeric headers; 0 when absent.
func headerInt(h nats.Header, k string) int {
	n, _ := strconv.Atoi(h.Get(k))
	return n
}

// cloneHeader copies h without the headers JetStream acts on at publish
// (deduplication, expectations), so that a stored message can be
// published again elsewhere.
func cloneHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+4)
	for k, vs := range h {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// dropNuboHeaders removes nubo's dead-letter headers, for a redrive.
func dropNuboHeaders(h nats.Header) {
	for _, k := range []string{hdrOrigin, hdrSubscription, hdrAttempts, hdrLastError, hdrDeadLettered} {
		delete(h, k)
	}
}
