package tracing

import (
	"encoding/json"
	"testing"
)

// TestAppendSpanJSONIsEncodingJSON: the store's span encoder writes the
// same bytes as encoding/json, for spans with every field and without,
// and strings that need escaping.
func TestAppendSpanJSONIsEncodingJSON(t *testing.T) {
	odd := "quote\" back\\ <tag> & \x00\x01\x1f \b\f\n\r\t é 日本 \u2028\u2029 \xff\xfe bad \U0001F600"
	for i, sp := range []Span{
		{},
		{TraceID: TraceID{1, 2}, SpanID: SpanID{3}, Name: "GET /", Service: "web", Start: 1, End: 2},
		{TraceID: TraceID{0xff}, SpanID: SpanID{0xab}, Parent: SpanID{9}, Name: odd, Kind: KindClient, Service: odd,
			Start: -5, End: 1 << 62, Status: StatusError, StatusMessage: odd,
			Attrs:    []Attr{String("k", "v"), Int("n", -42), Bool("b", true), {Key: odd, Type: "float64", Value: "1.5"}},
			Events:   []Event{{Time: 7, Name: "retry"}, {Time: 8, Name: odd, Attrs: []Attr{String(odd, odd)}}},
			Resource: []Attr{String("host.name", "h")}, Scope: odd},
	} {
		want, err := json.Marshal(&sp)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendSpanJSON(nil, &sp); string(got) != string(want) {
			t.Errorf("span %d:\n got  %s\n want %s", i, got, want)
		}
	}
}
