//go:build !linux

package procgroup

import "errors"

// Orphans is Linux only: there is no child subreaper elsewhere.
type Orphans struct{}

// Adopt fails off Linux.
func Adopt() (*Orphans, error) { return nil, errors.New("a child subreaper is Linux only") }

// Scan finds nothing.
func (o *Orphans) Scan(func(int) bool) (added, gone []int) { return nil, nil }

// Kill does nothing.
func (o *Orphans) Kill(func(int) bool) error { return nil }
