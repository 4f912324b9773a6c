package tracing

import (
	"encoding/binary"
	"math"
)

// sampled decides whether a new trace is kept with probability rate, from
// its ID alone (as OpenTelemetry's TraceIDRatioBased sampler does), so
// that every hop that decides about the same trace decides the same.
// Hops with a parent honour the parent's sampled flag instead: that is
// the callers' part (parent-based sampling).
func sampled(id TraceID, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	}
	bound := uint64(rate * math.MaxInt64)
	return binary.BigEndian.Uint64(id[:8])>>1 < bound
}
