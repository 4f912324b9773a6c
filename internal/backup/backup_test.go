package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// dirSource backs up a folder's files under a name, as the engine's
// files part does with the CA.
type dirSource struct {
	name, dir, as string
}

func (s dirSource) BackupName() string { return s.name }

func (s dirSource) BackupPart(_ context.Context, w *Writer) error {
	w.Replaces(s.as)
	if err := w.Dir(s.as, s.dir); err != nil {
		return err
	}
	return w.Stream(s.as+"-note", func(out io.Writer) error {
		_, err := io.WriteString(out, "streamed")
		return err
	})
}

func take(t *testing.T) []byte {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a.txt": "alpha", "sub/b.txt": strings.Repeat("b", 100000)} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	m, err := Take(context.Background(), &buf, t.TempDir(), Info{Version: "v1", System: "s", SpecDigest: "d"}, []Source{dirSource{"ca", src, "ca"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 1 || len(m.Parts[0].Files) != 3 || m.Time.IsZero() || m.Finished.Before(m.Time) {
		t.Fatalf("manifest = %+v", m)
	}
	return buf.Bytes()
}

func TestRestorePutsFilesInPlace(t *testing.T) {
	archive := take(t)
	state := t.TempDir()
	res, err := Restore(bytes.NewReader(archive), state, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced != "" || res.System != "s" {
		t.Fatalf("result = %+v", res)
	}
	for name, want := range map[string]int{"ca/a.txt": 5, "ca/sub/b.txt": 100000, "ca-note": 8} {
		b, err := os.ReadFile(filepath.Join(state, filepath.FromSlash(name)))
		if err != nil || len(b) != want {
			t.Errorf("%s: %d bytes, %v; want %d", name, len(b), err, want)
		}
	}
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".restore-") {
			t.Errorf("the staging folder %s is left behind", e.Name())
		}
	}
}

// rewrite decompresses an archive, lets edit change its entries, and
// compresses it again.
func rewrite(t *testing.T, archive []byte, edit func(hdr *tar.Header, data []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		hdr, data = edit(hdr, data)
		if hdr == nil {
			continue
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

// A changed, missing, extra or escaping entry, a cut archive, or one that
// is not an archive at all is refused, and nothing is written.
func TestRestoreRefusesBadArchives(t *testing.T) {
	archive := take(t)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"changed", rewrite(t, archive, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == "ca/a.txt" {
				d = []byte("ALPHA")
			}
			return h, d
		}), "ca/a.txt does not match the manifest"},
		{"missing", rewrite(t, archive, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == "ca/sub/b.txt" {
				return nil, nil
			}
			return h, d
		}), "in the manifest but not in the archive"},
		{"escaping", rewrite(t, archive, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == "ca/a.txt" {
				h.Name = "../evil"
			}
			return h, d
		}), `"../evil" is not a path inside the state directory`},
		{"no manifest", rewrite(t, archive, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == ManifestName {
				return nil, nil
			}
			return h, d
		}), "no manifest.json"},
		{"cut", archive[:len(archive)/2], "restore"},
		{"not an archive", []byte("hello, world"), "not a nubo backup archive"},
		{"encrypted", []byte("age-encryption.org/v1\n-> X25519 abc\n"), "encrypted with age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			_, err := Restore(bytes.NewReader(tc.in), state, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error with %q", err, tc.want)
			}
			ents, _ := os.ReadDir(state)
			if len(ents) != 0 {
				t.Errorf("a refused restore left %d entries, the first %s", len(ents), ents[0].Name())
			}
		})
	}
}

// Data in the way is refused without replace, and moved aside with it.
func TestRestoreReplacesOnlyWhenAsked(t *testing.T) {
	archive := take(t)
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "ca", "old.pem"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(bytes.NewReader(archive), state, false)
	var ex *ExistingDataError
	if !errors.As(err, &ex) || len(ex.Paths) != 1 || ex.Paths[0] != "ca" {
		t.Fatalf("Restore over data = %v, want an ExistingDataError naming ca", err)
	}
	if b, _ := os.ReadFile(filepath.Join(state, "ca", "old.pem")); string(b) != "old" {
		t.Fatal("a refused restore touched the data")
	}
	res, err := Restore(bytes.NewReader(archive), state, true)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Replaced, "ca", "old.pem")); string(b) != "old" {
		t.Fatalf("the replaced data is not in %s", res.Replaced)
	}
	if _, err := os.Stat(filepath.Join(state, "ca", "old.pem")); !os.IsNotExist(err) {
		t.Fatal("the replaced file is still in place")
	}
}
