// Package readlimit reads files nubo is pointed at by a spec (includes,
// secrets' dotenv files, a gateway's jwksFile) without trusting them to be
// what they seem: only regular files, and never more than a bound, counted
// in bytes actually read. A size from Stat is not enough: /dev/zero and
// /proc files report 0 and never end, and a file may grow while it is
// read.
package readlimit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned, wrapped with the file's name, for a file longer
// than the bound.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is returned, wrapped with the file's name, for a folder,
// device, pipe or socket.
var ErrNotRegular = errors.New("not a regular file")

// File reads the regular file at path, refusing one longer than max bytes.
// Errors name the path.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		what := "a device, pipe or socket"
		if fi.IsDir() {
			what = "a folder"
		}
		return nil, fmt.Errorf("%s: %w: it is %s", path, ErrNotRegular, what)
	}
	// One byte more than allowed tells a file of exactly max bytes from a
	// longer one.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, max)
	}
	return data, nil
}
