package cebinding

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
)

// FuzzValue checks the percent-encoding of ce- header values: every UTF-8
// value comes back from EncodeValue then DecodeValue unchanged, and its
// encoded form is one an HTTP header can carry; DecodeValue of anything
// answers a value or an error.
func FuzzValue(f *testing.F) {
	for _, s := range []string{"Euro € 😀", "", "%", "%25", `"quoted"`, `"a\"b"`, "a\r\nb", "%C0%A0", "\x00", "%zz", `"\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := DecodeValue(s); err == nil && !utf8.ValidString(d) {
			t.Fatalf("DecodeValue(%q) = %q, not UTF-8", s, d)
		}
		if !utf8.ValidString(s) {
			return
		}
		enc := EncodeValue(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < 0x21 || c > 0x7e {
				t.Fatalf("EncodeValue(%q) = %q: byte %#x cannot be in a header", s, enc, c)
			}
		}
		h := http.Header{"Ce-X": {enc}}
		if err := DecodeHeaders(h); err != nil {
			t.Fatalf("DecodeHeaders of EncodeValue(%q) = %q: %v", s, enc, err)
		}
		if got := h.Get("Ce-X"); got != s {
			t.Fatalf("round trip of %q: %q, via %q", s, got, enc)
		}
	})
}

// FuzzStructured checks the JSON format: CheckStructured refuses with an
// AttributeError naming a member, or what it accepts and the SDK reads
// keeps every context attribute as sent (nothing silently rewritten).
func FuzzStructured(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"1","source":"/s","type":"T"}`,
		`{"specversion":"1.0","id":5,"source":"/s","type":"T"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"T","data":1,"data_base64":"AA=="}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"T","dataschema":"rel/x"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"T","time":"2026-01-02T03:04:05.999999999+01:00"}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"T","ext":2147483648}`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"T","subject":null,"Bad":"x"}`,
		`{"specversion":"1.0","id":"1","source":"%zz","type":"T","data_base64":"!"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var fields map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &fields) != nil {
			return
		}
		if err := CheckStructured(fields); err != nil {
			var ae *AttributeError
			if !errors.As(err, &ae) {
				t.Fatalf("CheckStructured(%s): %v, not an AttributeError", raw, err)
			}
			if _, member := fields[ae.Attribute]; !member {
				t.Fatalf("CheckStructured(%s): %v names no member", raw, err)
			}
			// The member is shown as it is, or quoted when it would not
			// read as a name.
			if !strings.HasPrefix(err.Error(), "attribute "+ae.Attribute+": ") &&
				!strings.HasPrefix(err.Error(), fmt.Sprintf("attribute %q: ", ae.Attribute)) || strings.HasPrefix(err.Error(), "attribute : ") {
				t.Fatalf("CheckStructured(%s): %q does not show the member %q", raw, err, ae.Attribute)
			}
			return
		}
		var ev event.Event
		if json.Unmarshal([]byte(raw), &ev) != nil {
			return // the SDK refuses it: a 400, nothing stored
		}
		str := func(k string) (string, bool) {
			v, ok := fields[k]
			if !ok || isNull(v) {
				return "", false
			}
			var s string
			_ = json.Unmarshal(v, &s)
			return s, true
		}
		for name, got := range map[string]string{
			"id": ev.ID(), "source": ev.Source(), "type": ev.Type(), "subject": ev.Subject(), "dataschema": ev.DataSchema(),
		} {
			if want, ok := str(name); ok && got != want {
				t.Fatalf("%s: sent %q, the SDK read %q", name, want, got)
			}
		}
		if want, ok := str("time"); ok {
			sent, _ := time.Parse(time.RFC3339Nano, want)
			if !ev.Time().Equal(sent) {
				t.Fatalf("time: sent %q, the SDK read %v", want, ev.Time())
			}
		}
	})
}
