// Package backup takes a whole nubo system into one archive and puts it
// back into a stopped state directory (`nubo backup`, `nubo restore`).
//
// The package knows no component. Each one that keeps state is a Part: it
// writes its own consistent copy through a Writer (the broker its streams'
// snapshots, the metrics store a TSDB snapshot, each database its own dump,
// the engine the CA and the secrets store as they are on disk, still
// encrypted). Every file is written under the path, relative to the state
// directory, where the next `nubo up` finds it: a database's dump goes
// where the database looks for a restore to apply when it starts, a TSDB
// snapshot goes where the metrics store opens its blocks. Restoring is
// therefore the same for every part: check, then put the files in place.
//
// # Archive
//
// A tar stream compressed with zstd. The last entry is manifest.json: the
// nubo version, the spec's digest, the snapshot time, and for each part the
// paths it replaces and every file with its size and SHA-256. The snapshot
// time is taken before any part begins, so that everything acknowledged
// before it is inside. Encryption with age wraps the whole compressed
// stream; it is the caller's (the CLI's), so that the archive never lands
// on disk in clear.
package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ManifestName is the archive's last entry.
const ManifestName = "manifest.json"

// Format is the archive's format version, in the manifest.
const Format = 1

// Manifest says what an archive holds.
type Manifest struct {
	Format int `json:"format"`
	// Version is the nubo that took it.
	Version string `json:"version"`
	// System is the spec's name; SpecDigest the SHA-256 of its files.
	System     string `json:"system"`
	SpecDigest string `json:"specDigest"`
	// Time is the snapshot time: everything acknowledged before it is in
	// the archive.
	Time time.Time `json:"time"`
	// Finished is when the last part was written.
	Finished time.Time `json:"finished"`
	Parts    []Part    `json:"parts"`
}

// Part is one component's share of the archive.
type Part struct {
	// Name names it: "broker", "metrics", "database:shop-db", "files".
	Name string `json:"name"`
	// Replaces are the paths of the state directory that restoring the
	// part supersedes: they are removed before its files are put in place.
	Replaces []string `json:"replaces,omitempty"`
	Files    []File   `json:"files"`
}

// File is one file of a part, at its path in the state directory.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Source is a component that has state to back up.
type Source interface {
	// BackupName names its part in the manifest.
	BackupName() string
	// BackupPart writes a consistent copy of its state through w.
	BackupPart(ctx context.Context, w *Writer) error
}

// Info describes the system an archive comes from.
type Info struct {
	Version, System, SpecDigest string
}

// Take writes the archive of sources to out, one part after the other, and
// returns its manifest. tmpDir holds the parts that must be spooled to know
// their size (a stream's snapshot) for as long as each is written; it
// should be on the state directory's disk.
func Take(ctx context.Context, out io.Writer, tmpDir string, info Info, sources []Source) (Manifest, error) {
	m := Manifest{Format: Format, Version: info.Version, System: info.System, SpecDigest: info.SpecDigest, Time: time.Now().UTC()}
	zw, err := zstd.NewWriter(out)
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	tw := tar.NewWriter(zw)
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	tmp, err := os.MkdirTemp(tmpDir, "backup-")
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	w := &Writer{tw: tw, tmpDir: tmp, seen: map[string]bool{}}
	for _, s := range sources {
		w.part = &Part{Name: s.BackupName()}
		if err := s.BackupPart(ctx, w); err != nil {
			return m, fmt.Errorf("backup: %s: %w", s.BackupName(), err)
		}
		m.Parts = append(m.Parts, *w.part)
	}
	m.Finished = time.Now().UTC()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	hdr := &tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(data)), ModTime: m.Finished, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := zw.Close(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// Writer adds one part's files to the archive, recording each in the
// manifest.
type Writer struct {
	tw     *tar.Writer
	tmpDir string
	part   *Part
	seen   map[string]bool
}

// Replaces declares state-directory paths that restoring this part
// supersedes.
func (w *Writer) Replaces(paths ...string) { w.part.Replaces = append(w.part.Replaces, paths...) }

// File adds the file src under name (a slash-separated path relative to
// the state directory).
func (w *Writer) File(name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return w.add(name, fi.Size(), f)
}

// Dir adds every regular file under src, named under name.
func (w *Writer) Dir(name, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return w.File(path.Join(name, filepath.ToSlash(rel)), p)
	})
}

// TempDir returns a new empty folder for a part to build what it adds
// (a TSDB snapshot); it is removed when the archive is done.
func (w *Writer) TempDir() (string, error) { return os.MkdirTemp(w.tmpDir, "part-") }

// Stream adds what fill writes under name. It is spooled to a temporary
// file first: a tar entry needs its size before its content.
func (w *Writer) Stream(name string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(w.tmpDir, "part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := fill(f); err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return w.add(name, size, f)
}

func (w *Writer) add(name string, size int64, r io.Reader) error {
	if err := checkPath(name); err != nil {
		return err
	}
	if w.seen[name] {
		return fmt.Errorf("%s: written twice", name)
	}
	w.seen[name] = true
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(w.tw, io.TeeReader(io.LimitReader(r, size), h))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%s: %d bytes read of %d (it changed while it was copied)", name, n, size)
	}
	w.part.Files = append(w.part.Files, File{Path: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// checkPath refuses a path that is not a clean, relative one inside the
// state directory: an archive must never write outside it.
func checkPath(name string) error {
	if name == "" || name != path.Clean(name) || path.IsAbs(name) || name == "." || name == ".." ||
		strings.HasPrefix(name, "../") || strings.Contains(name, "\\") || name == ManifestName {
		return fmt.Errorf("%q is not a path inside the state directory", name)
	}
	return nil
}

// ErrNotArchive is returned for input that is not a nubo backup.
var ErrNotArchive = errors.New("not a nubo backup archive")
