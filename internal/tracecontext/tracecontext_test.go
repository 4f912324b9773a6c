package tracecontext

import "testing"

func TestParse(t *testing.T) {
	good := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c, ok := Parse(good)
	if !ok || !c.Sampled() || Format(c.TraceID, c.SpanID, c.Flags) != good {
		t.Fatalf("Parse(%q) = %+v, %v", good, c, ok)
	}
	if _, ok := Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"); !ok {
		t.Error("a higher version with more fields is read by its 00 prefix")
	}
	for _, bad := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 with extra
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01",
	} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted an invalid traceparent", bad)
		}
	}
}

func TestNewIDsAreNeverZero(t *testing.T) {
	for range 100 {
		if NewTraceID() == ([16]byte{}) || NewSpanID() == ([8]byte{}) {
			t.Fatal("an all-zero ID is invalid in W3C trace context")
		}
	}
}
