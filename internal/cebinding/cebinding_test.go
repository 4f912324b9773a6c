package cebinding

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// TestPercentEncoding runs the HTTP binding's own example (section
// 3.1.3.2: "Euro € 😀") and the rules around it.
func TestPercentEncoding(t *testing.T) {
	for _, tc := range []struct{ value, encoded string }{
		{"Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"plain-ascii_1.0/x?y=z", "plain-ascii_1.0/x?y=z"},
		{`say "hi" 100%`, "say%20%22hi%22%20100%25"},
		{"line\r\nbreak\ttab", "line%0D%0Abreak%09tab"},
		{"", ""},
	} {
		if got := EncodeValue(tc.value); got != tc.encoded {
			t.Errorf("EncodeValue(%q) = %q, want %q", tc.value, got, tc.encoded)
		}
		if got, err := DecodeValue(tc.encoded); err != nil || got != tc.value {
			t.Errorf("DecodeValue(%q) = %q, %v, want %q", tc.encoded, got, err, tc.value)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"%41%42c", "ABc"},                 // unnecessarily encoded: accepted
		{`"a b \"c\""`, `a b "c"`},         // a quoted string of an older sender
		{`"Euro%20%E2%82%AC"`, "Euro €"},   // quoted, then percent-decoded
		{"a+b", "a+b"},                     // '+' is not a space here
		{"%e2%82%ac", "€"},                 // lowercase hex
		{"50%25%20off", "50% off"},         // one round only
		{"%2541", "%41"},                   // one round only
		{"caf%C3%A9", "café"},              // two-byte character
		{"%F0%9F%98%80%F0%9F%98%80", "😀😀"}, // four-byte characters
	} {
		if got, err := DecodeValue(tc.in); err != nil || got != tc.want {
			t.Errorf("DecodeValue(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
	// The binding's example of what MUST be refused, and its kin.
	for _, bad := range []string{"%C0%A0", "%FF", "%E2%82", "100%", "%zz", `"a\"`} {
		if got, err := DecodeValue(bad); err == nil {
			t.Errorf("DecodeValue(%q) = %q, want an error", bad, got)
		}
	}
}

// TestHeadersThroughTheSDK sends events written by the SDK (then encoded)
// over real HTTP and reads them back with DecodeHeaders and the SDK: every
// attribute arrives as it left.
func TestHeadersThroughTheSDK(t *testing.T) {
	var got *event.Event
	var rawSubject string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rawSubject = r.Header.Get("ce-subject")
		if err := DecodeHeaders(r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = ev
	}))
	defer srv.Close()

	for _, subject := range []string{"Euro € 😀", `quote " and percent %`, "tab\there", "plain"} {
		ev := event.New()
		ev.SetID("A234-1234-1234")
		ev.SetSource("/mycontext")
		ev.SetType("com.example.someevent")
		ev.SetSubject(subject)
		ev.SetExtension("comexampleextension1", "välue with spaces")
		if err := ev.SetData(event.ApplicationJSON, map[string]any{"a": 1}); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
			t.Fatal(err)
		}
		EncodeHeaders(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("subject %q: status %d", subject, resp.StatusCode)
		}
		if rawSubject != EncodeValue(subject) {
			t.Errorf("ce-subject on the wire = %q, want %q", rawSubject, EncodeValue(subject))
		}
		if got.Subject() != subject || got.Extensions()["comexampleextension1"] != "välue with spaces" || string(got.Data()) != `{"a":1}` {
			t.Errorf("received %v, want subject %q and the extension and data as sent", got, subject)
		}
	}
}

func TestDecodeHeadersNamesTheHeader(t *testing.T) {
	h := http.Header{}
	h.Set("ce-type", "t")
	h.Set("ce-subject", "%C0%A0")
	h.Set("X-Other", "%C0%A0") // not an attribute: left alone
	err := DecodeHeaders(h)
	var ae *AttributeError
	if !errors.As(err, &ae) || ae.Attribute != "ce-subject" {
		t.Fatalf("DecodeHeaders = %v, want an error naming ce-subject", err)
	}
}

func TestCheckBinary(t *testing.T) {
	for _, tc := range []struct {
		header map[string]string
		want   string // "" for accepted
	}{
		// The binding's binary-mode example (section 3.1.4).
		{map[string]string{"ce-specversion": "1.0", "ce-type": "com.example.someevent", "ce-time": "2018-04-05T03:56:24Z", "ce-id": "1234-1234-1234", "ce-source": "/mycontext/subcontext"}, ""},
		{map[string]string{"ce-type": "t", "ce-dataschema": "https://example.com/schema.json", "ce-myext": "1"}, ""},
		{map[string]string{"ce-type": "t", "ce-id": ""}, "attribute ce-id: must not be empty"},
		{map[string]string{"ce-type": "t", "ce-dataschema": "not a uri"}, `attribute ce-dataschema: "not a uri" is not an absolute URI`},
		{map[string]string{"ce-type": "t", "ce-dataschema": "/relative"}, `attribute ce-dataschema: "/relative" is not an absolute URI`},
		{map[string]string{"ce-type": "t", "ce-time": "yesterday"}, `attribute ce-time: "yesterday" is not an RFC 3339 timestamp`},
		{map[string]string{"ce-type": "t", "ce-my_ext": "x"}, "attribute ce-my_ext: not a valid attribute name"},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		err := CheckBinary(h)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v, want it accepted", tc.header, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want %q", tc.header, err, tc.want)
		}
	}
}

// TestCheckStructured runs the JSON format's examples (section 3.1 and 3)
// and what the format forbids.
func TestCheckStructured(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      string // "" for accepted
	}{
		{"the format's example with data_base64", `{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "aGVsbG8gd29ybGQ="
}`, ""},
		{"the format's example with JSON data and nulls", `{
    "specversion" : "1.0",
    "type" : "com.example.someevent",
    "source" : "/mycontext",
    "subject": null,
    "id" : "C234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "unsetextension": null,
    "datacontenttype" : "application/json",
    "data" : {
        "appinfoA" : "abc",
        "appinfoB" : 123,
        "appinfoC" : true
    }
}`, ""},
		{"numeric id", `{"type": "t", "id": 5}`, "attribute id: must be a string, not the number 5"},
		{"boolean source", `{"type": "t", "source": true}`, "attribute source: must be a string, not a boolean"},
		{"empty id", `{"type": "t", "id": ""}`, "attribute id: must not be empty"},
		{"invalid dataschema", `{"type": "t", "dataschema": "::no"}`, `attribute dataschema: "::no" is not an absolute URI`},
		{"relative dataschema", `{"type": "t", "dataschema": "schema.json"}`, `attribute dataschema: "schema.json" is not an absolute URI`},
		{"data and data_base64", `{"type": "t", "data": {"a": 1}, "data_base64": "aGk="}`, "attribute data_base64: data and data_base64 exclude each other"},
		{"data_base64 not base64", `{"type": "t", "data_base64": "***"}`, "attribute data_base64: not base64"},
		{"data_base64 not a string", `{"type": "t", "data_base64": 12}`, "attribute data_base64: must be a string of base64"},
		{"object extension", `{"type": "t", "myext": {"a": 1}}`, "attribute myext: must be a string, an integer or a boolean, not an object"},
		{"fractional extension", `{"type": "t", "myext": 1.5}`, "attribute myext: 1.5 is not a CloudEvents integer"},
		{"extension name", `{"type": "t", "My-Ext": "x"}`, "attribute My-Ext: not a valid attribute name"},
		{"bad time", `{"type": "t", "time": "2018-04-05"}`, `attribute time: "2018-04-05" is not an RFC 3339 timestamp`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.doc), &fields); err != nil {
				t.Fatal(err)
			}
			err := CheckStructured(fields)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
