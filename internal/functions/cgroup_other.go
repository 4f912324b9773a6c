//go:build !linux

package functions

import "log/slog"

// detectCgroups reports that memory limits are not enforced: cgroups are
// Linux's.
func detectCgroups(log *slog.Logger) *cgroupManager {
	return &cgroupManager{log: log, reason: "cgroups exist on Linux only"}
}
