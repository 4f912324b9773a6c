package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// maxManifest bounds the manifest entry.
const maxManifest = 16 << 20

// ExistingDataError is returned by Restore when the state directory holds
// data the archive would replace and the caller did not allow it.
type ExistingDataError struct {
	Dir   string
	Paths []string
}

func (e *ExistingDataError) Error() string {
	return fmt.Sprintf("%s already holds %s: restoring would replace it (use --yes to replace it, or restore into an empty --state folder)",
		e.Dir, strings.Join(e.Paths, ", "))
}

// Result is what Restore did.
type Result struct {
	Manifest
	// Replaced is the folder of the state directory where what the
	// restore replaced was moved (never deleted: the user removes it);
	// empty when nothing was there.
	Replaced string
}

// Restore reads an archive (zstd-compressed tar, already decrypted) into
// stateDir, which no engine may be using (the caller holds its lock).
// Every file is first written to a staging folder inside stateDir and
// checked against the manifest; only an archive that checks whole replaces
// anything. When the state directory already holds what a part replaces,
// Restore refuses unless replace is set; then the data it replaces is
// moved aside into Result.Replaced.
func Restore(in io.Reader, stateDir string, replace bool) (Result, error) {
	res, err := restore(in, stateDir, replace)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

func restore(in io.Reader, stateDir string, replace bool) (res Result, err error) {
	m := &res.Manifest
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return res, err
	}
	stage, err := os.MkdirTemp(stateDir, ".restore-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	res.Manifest, err = read(in, func(name string) (io.WriteCloser, error) {
		dst := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		return os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	})
	if err != nil {
		return res, err
	}
	var existing []string
	for _, p := range m.Parts {
		for _, r := range p.Replaces {
			if err := checkPath(r); err != nil {
				return res, fmt.Errorf("part %s: %w", p.Name, err)
			}
			if nonEmpty(filepath.Join(stateDir, filepath.FromSlash(r))) {
				existing = append(existing, r)
			}
		}
		for _, f := range p.Files {
			if _, err := os.Lstat(filepath.Join(stateDir, filepath.FromSlash(f.Path))); err == nil && !covered(f.Path, p.Replaces) {
				existing = append(existing, f.Path)
			}
		}
	}
	if len(existing) > 0 && !replace {
		sort.Strings(existing)
		return res, &ExistingDataError{Dir: stateDir, Paths: existing}
	}
	if len(existing) > 0 {
		res.Replaced = filepath.Join(stateDir, "replaced-"+time.Now().UTC().Format("20060102T150405Z"))
		for _, p := range existing {
			dst := filepath.Join(res.Replaced, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return res, err
			}
			if err := os.Rename(filepath.Join(stateDir, filepath.FromSlash(p)), dst); err != nil {
				return res, err
			}
		}
	}
	// What a part replaces goes even when empty (an empty folder).
	for _, p := range m.Parts {
		for _, r := range p.Replaces {
			if err := os.RemoveAll(filepath.Join(stateDir, filepath.FromSlash(r))); err != nil {
				return res, fmt.Errorf("part %s: %w", p.Name, err)
			}
		}
	}
	for _, p := range m.Parts {
		for _, f := range p.Files {
			dst := filepath.Join(stateDir, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return res, err
			}
			if err := os.Rename(filepath.Join(stage, filepath.FromSlash(f.Path)), dst); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// Verify reads a whole archive (decrypted) and checks every file against
// its manifest, which it returns.
func Verify(in io.Reader) (Manifest, error) {
	return read(in, func(string) (io.WriteCloser, error) { return discard{}, nil })
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// read decompresses an archive, hands every file but the manifest to
// open, and checks what it read against the manifest.
func read(in io.Reader, open func(name string) (io.WriteCloser, error)) (Manifest, error) {
	var m Manifest
	br := bufio.NewReader(in)
	if magic, _ := br.Peek(4); !bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		if bytes.HasPrefix(magic, []byte("age-")) {
			return m, errors.New("the archive is encrypted with age: give --identity or --passphrase-file")
		}
		return m, fmt.Errorf("%w (no zstd header)", ErrNotArchive)
	}
	zr, err := zstd.NewReader(br)
	if err != nil {
		return m, err
	}
	defer zr.Close()
	got, err := extract(tar.NewReader(zr), open, &m)
	if err != nil {
		return m, err
	}
	return m, check(m, got)
}

// extract hands every entry but the manifest to open, returning each
// one's size and SHA-256, and decodes the manifest into m.
func extract(tr *tar.Reader, open func(name string) (io.WriteCloser, error), m *Manifest) (map[string]File, error) {
	got := map[string]File{}
	sawManifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotArchive, err)
		}
		if sawManifest {
			return nil, fmt.Errorf("%s: an entry after the manifest", hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s: not a regular file", hdr.Name)
		}
		if hdr.Name == ManifestName {
			data, err := io.ReadAll(io.LimitReader(tr, maxManifest+1))
			if err != nil {
				return nil, err
			}
			if len(data) > maxManifest {
				return nil, fmt.Errorf("%s is over %d bytes", ManifestName, maxManifest)
			}
			if err := json.Unmarshal(data, m); err != nil {
				return nil, fmt.Errorf("%s: %w", ManifestName, err)
			}
			sawManifest = true
			continue
		}
		if err := checkPath(hdr.Name); err != nil {
			return nil, err
		}
		if _, dup := got[hdr.Name]; dup {
			return nil, fmt.Errorf("%s: twice in the archive", hdr.Name)
		}
		f, err := open(hdr.Name)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		got[hdr.Name] = File{Path: hdr.Name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	if !sawManifest {
		return nil, fmt.Errorf("%w: no %s (the archive is cut short?)", ErrNotArchive, ManifestName)
	}
	return got, nil
}

// check compares what was read with the manifest: every file it lists,
// with its size and hash, and nothing else.
func check(m Manifest, got map[string]File) error {
	if m.Format != Format {
		return fmt.Errorf("archive format %d: this nubo reads format %d", m.Format, Format)
	}
	listed := map[string]bool{}
	for _, p := range m.Parts {
		for _, f := range p.Files {
			listed[f.Path] = true
			g, ok := got[f.Path]
			switch {
			case !ok:
				return fmt.Errorf("part %s: %s is in the manifest but not in the archive", p.Name, f.Path)
			case g.Size != f.Size || g.SHA256 != f.SHA256:
				return fmt.Errorf("part %s: %s does not match the manifest (size %d, sha256 %s; the manifest says %d, %s)",
					p.Name, f.Path, g.Size, g.SHA256, f.Size, f.SHA256)
			}
		}
	}
	for name := range got {
		if !listed[name] {
			return fmt.Errorf("%s is in the archive but not in the manifest", name)
		}
	}
	return nil
}

// covered reports whether p lies under one of dirs.
func covered(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// nonEmpty reports whether p exists and, for a folder, holds anything.
func nonEmpty(p string) bool {
	fi, err := os.Stat(p)
	if err != nil {
		return false
	}
	if !fi.IsDir() {
		return true
	}
	ents, err := os.ReadDir(p)
	return err != nil || len(ents) > 0
}
