package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/bits"
	"os"
	"slices"
)

// A search by trace id reads only the hour files that may hold the trace.
// While an hour is written its records' trace ids are kept in memory as
// 64-bit hashes; when the hour's file is closed (the next hour begins, or
// nubo stops) they become a Bloom filter beside it, HOUR.traces: 10 bits
// per trace and 7 hashes, about 1% false positives, 450 KiB for an hour
// of a million records in 250,000 traces. A file without one (written by
// an older nubo, or cut short by a crash) is read whole.

const (
	bloomSuffix  = ".traces"
	bloomHashes  = 7
	bloomBitsPer = 10
	// bloomMagic starts the file, then the number of hashes and of bits
	// (a power of two), then the bits.
	bloomMagic = "nubolog-traces-1"
)

func traceHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// bloom is a Bloom filter over trace hashes.
type bloom struct {
	k    uint32
	bits []uint64 // len a power of two
}

func newBloom(hashes []uint64) *bloom {
	n := max(len(hashes), 1) * bloomBitsPer
	words := 1 << bits.Len(uint((n+63)/64-1)) // a power of two, at least n bits
	b := &bloom{k: bloomHashes, bits: make([]uint64, words)}
	for _, h := range hashes {
		b.add(h)
	}
	return b
}

// probe is the i-th bit of h, by double hashing.
func (b *bloom) probe(h uint64, i uint32) (word int, mask uint64) {
	h1, h2 := uint32(h), uint32(h>>32)|1
	bit := uint64(h1+i*h2) & (uint64(len(b.bits))*64 - 1)
	return int(bit / 64), 1 << (bit % 64)
}

func (b *bloom) add(h uint64) {
	for i := uint32(0); i < b.k; i++ {
		w, m := b.probe(h, i)
		b.bits[w] |= m
	}
}

func (b *bloom) mayHave(h uint64) bool {
	for i := uint32(0); i < b.k; i++ {
		w, m := b.probe(h, i)
		if b.bits[w]&m == 0 {
			return false
		}
	}
	return true
}

func (b *bloom) marshal() []byte {
	out := make([]byte, 0, len(bloomMagic)+8+8*len(b.bits))
	out = append(out, bloomMagic...)
	out = binary.LittleEndian.AppendUint32(out, b.k)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b.bits)))
	for _, w := range b.bits {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out
}

func readBloom(path string) (*bloom, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := cutPrefix(data, bloomMagic)
	if !ok || len(rest) < 8 {
		return nil, fmt.Errorf("logs: %s: not a trace index", path)
	}
	k, words := binary.LittleEndian.Uint32(rest), binary.LittleEndian.Uint32(rest[4:])
	rest = rest[8:]
	if k == 0 || k > 32 || words == 0 || words&(words-1) != 0 || len(rest) != 8*int(words) {
		return nil, fmt.Errorf("logs: %s: a damaged trace index", path)
	}
	b := &bloom{k: k, bits: make([]uint64, words)}
	for i := range b.bits {
		b.bits[i] = binary.LittleEndian.Uint64(rest[8*i:])
	}
	return b, nil
}

func cutPrefix(b []byte, p string) ([]byte, bool) {
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return nil, false
	}
	return b[len(p):], true
}

// noteTrace keeps the hash of a record's trace id for the hour's index;
// d.mu is held.
func (d *Disk) noteTrace(id string) {
	if id == "" {
		return
	}
	h := traceHash(id)
	if n := len(d.traces); n > 0 && d.traces[n-1] == h {
		return // a trace's records come together
	}
	d.traces = append(d.traces, h)
}

// writeIndexLocked writes the Bloom filter of the hour being closed; d.mu
// is held. A failure costs only speed: the file is then read whole.
func (d *Disk) writeIndexLocked() error {
	if d.hour == "" {
		return nil
	}
	hashes, partial := d.traces, d.partial
	d.traces, d.partial = nil, false
	if partial {
		return nil
	}
	path := indexPath(d.dir, d.hour)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, newBloom(hashes).marshal(), 0o600); err != nil {
		return fmt.Errorf("logs: trace index: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("logs: trace index: %w", err)
	}
	return nil
}

// mayHoldTrace reports whether the hour file may hold records of the
// trace whose id hashes to h: the hour being written is checked against
// its hashes in memory, a closed one against its Bloom filter; without
// one, or with a damaged one, it may.
func (d *Disk) mayHoldTrace(hour string, h uint64) bool {
	d.mu.Lock()
	if d.f != nil && hour == d.hour {
		found := d.partial || slices.Contains(d.traces, h)
		d.mu.Unlock()
		return found
	}
	d.mu.Unlock()
	b, err := readBloom(indexPath(d.dir, hour))
	if err != nil {
		return true
	}
	return b.mayHave(h)
}

func indexPath(dir, hour string) string { return dir + string(os.PathSeparator) + hour + bloomSuffix }

// removeIndex removes an hour's Bloom filter with its file.
func removeIndex(dir, hour string) error {
	if err := os.Remove(indexPath(dir, hour)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}
