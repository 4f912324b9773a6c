//go:build unix

package logs

import (
	"os"
	"syscall"
)

// mapFile maps f read-only as it is now. The store only appends to its
// files and removes them whole, never truncates them, so the mapping
// stays readable; ok is false when f is empty or cannot be mapped (the
// caller then reads it).
func mapFile(f *os.File) (data []byte, unmap func(), ok bool) {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 || info.Size() != int64(int(info.Size())) {
		return nil, nil, false
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(info.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, false
	}
	return data, func() { _ = syscall.Munmap(data) }, true
}
