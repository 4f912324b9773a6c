package apitype

import (
	"fmt"
	"time"
)

// ParseSince reads a logs since bound: a duration back from now (5m, 1h30m)
// or a time in RFC 3339 (2026-08-01T10:00:00Z).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (5m, 1h) or an RFC 3339 time (2026-08-01T10:00:00Z)", s)
}
