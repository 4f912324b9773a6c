package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The append path reads acknowledgements, writes bodies and checks stream
// names by hand (see append.go's callers); these tests hold each to what
// the general code it replaces gives.

func TestDecodeAckAgreesWithJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		fast bool // read by parsePlainAck, not encoding/json
	}{
		{`{"stream":"app-eventstore","seq":42}`, true},
		{`{"stream":"app-eventstore","seq":7,"duplicate": true}`, true},
		{`{"stream":"s","seq":18446744073709551615}`, true},
		{`{"stream":"s","domain":"hub","seq":3}`, false},
		{`{"stream":"s","seq":9,"batch":"b1","count":2}`, false},
		{`{"stream":"s","seq":}`, false},
		{`{"stream":"s","seq":1} `, false},
		{`{"stream":"a\"b","seq":1}`, false},
		{`{"stream":"s","seq":99999999999999999999}`, false},
	} {
		_, fast := parsePlainAck([]byte(tc.in))
		if fast != tc.fast {
			t.Errorf("parsePlainAck(%s) ok = %v, want %v", tc.in, fast, tc.fast)
		}
		got, gotErr := decodeAck([]byte(tc.in))
		var want pubAck
		wantErr := json.Unmarshal([]byte(tc.in), &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("decodeAck(%s): error %v, encoding/json's %v", tc.in, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(*got, want) {
			t.Errorf("decodeAck(%s) = %+v, encoding/json gives %+v", tc.in, *got, want)
		}
	}
	// An error acknowledgement still comes back as the error.
	ack, err := decodeAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"s","seq":0}`))
	if apiCode(err) != errCodeWrongLastSeq || ack == nil {
		t.Fatalf("error ack: %+v, %v", ack, err)
	}
}

// TestPlainAckIsWhatTheServerSends keeps the fast path honest against the
// embedded server: a stored message and a duplicate are both acknowledged
// in the form parsePlainAck reads. Were the server to change it, appends
// would still work (through encoding/json) but this test fails.
func TestPlainAckIsWhatTheServerSends(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir())
	ctx := context.Background()
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{
		Name: "app-eventstore", Subjects: []string{"p.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	nc := b.Conn()
	for i, want := range []pubAck{{Stream: "app-eventstore", Seq: 1}, {Stream: "app-eventstore", Seq: 1, Duplicate: true}} {
		resp, err := nc.RequestMsgWithContext(ctx, msg("p.a", "id1", -1))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parsePlainAck(resp.Data)
		if !ok || *got != want {
			t.Fatalf("publish %d: the server's ack %s is not read by the fast path (%+v, %v), want %+v", i+1, resp.Data, got, ok, want)
		}
	}
}

func TestEncodeBodyAgreesWithJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ data, meta string }{
		{`{"n":1}`, ""},
		{"", `{"by":"me"}`},
		{`[1, 2]`, `{"a": "<b>"}`},
		{"", ""},
		{`"text"`, `null`},
	} {
		got := encodeBody(json.RawMessage(tc.data), json.RawMessage(tc.meta))
		want, err := json.Marshal(body{Data: json.RawMessage(tc.data), Metadata: json.RawMessage(tc.meta)})
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json compacts and escapes; the meaning must agree.
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("encodeBody(%q, %q) = %s: not JSON: %v", tc.data, tc.meta, got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("encodeBody(%q, %q) = %s, encoding/json gives %s", tc.data, tc.meta, got, want)
		}
		// And it decodes back to what was given.
		var back body
		if err := json.Unmarshal(got, &back); err != nil || !bytes.Equal(back.Data, []byte(tc.data)) || !bytes.Equal(back.Metadata, []byte(tc.meta)) {
			t.Errorf("encodeBody(%q, %q) = %s decodes to %q, %q (%v)", tc.data, tc.meta, got, back.Data, back.Metadata, err)
		}
	}
}

func TestValidStreamNameAgreesWithPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_@:=+-]*$`)
	for _, s := range []string{
		"", "user-42", "_x", "a", "A9", "order@eu:1=2+3", "-x", "@x", "a.b", "a*", "a>", "a b", "é", "a\x00", "Z_", "a-", "9",
	} {
		if got, want := validStreamName(s), re.MatchString(s); got != want {
			t.Errorf("validStreamName(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
