//go:build race

package h1server

// raceEnabled: the race detector enlarges stacks, so memory figures do not
// hold under it.
const raceEnabled = true
