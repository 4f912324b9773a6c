//go:build !linux

package procgroup

import (
	"errors"
	"log/slog"
	"syscall"
)

// Tree is disabled off Linux: replicas are held by their process group.
type Tree struct{}

// Open returns a disabled Tree.
func Open(*slog.Logger) *Tree { return &Tree{} }

// Off returns a disabled Tree.
func Off(string) *Tree { return &Tree{} }

// Enabled reports false.
func (t *Tree) Enabled() bool { return false }

// Reason says why the Tree is disabled.
func (t *Tree) Reason() string { return "cgroups are Linux only" }

// Dir is empty.
func (t *Tree) Dir() string { return "" }

// Close does nothing.
func (t *Tree) Close() error { return nil }

// New fails.
func (t *Tree) New(string) (*Group, error) { return nil, errors.New("no cgroups: " + t.Reason()) }

// Group is never made off Linux.
type Group struct{}

// Prepare does nothing.
func (g *Group) Prepare(*syscall.SysProcAttr) {}

// Started does nothing.
func (g *Group) Started(int) error { return nil }

// Kill does nothing.
func (g *Group) Kill() error { return nil }

// KillDir does nothing.
func KillDir(string) error { return nil }

// Members is empty.
func (t *Tree) Members() map[int]string { return nil }
