// Package starter holds the small working project `nubo init` writes: a
// nubo.yaml with one service and one function, their Go sources, a go.mod and
// a .gitignore.
//
// The files live under template/ as real files. Every one ends in .tmpl, which
// is cut from the name it is written under, so that the Go sources there are
// not part of nubo's module (go build ./... and go vet ./... skip them) and no
// go.mod sits inside the tree, which embed would refuse. A leading "dot_" in a
// name becomes ".", because embed leaves out dotfiles. Each file is a
// text/template executed with Data.
package starter

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

//go:embed template
var templates embed.FS

// templateRoot is the folder of templates inside the embedded files.
const templateRoot = "template"

// Data is what the templates are executed with.
type Data struct {
	// Name is the application's name, a DNS label.
	Name string
}

// File is one rendered file of the starter.
type File struct {
	// Path is slash-separated and relative to the project's folder.
	Path string
	// Data is the file's content.
	Data []byte
}

// Files renders the starter for data, sorted by path.
func Files(data Data) ([]File, error) {
	if !ValidName(data.Name) {
		return nil, fmt.Errorf("application name %q is not a DNS label: use lowercase letters, digits and '-', at most 63 characters", data.Name)
	}
	var out []File
	err := fs.WalkDir(templates, templateRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, templateRoot+"/")
		dir, base := path.Split(rel)
		base, ok := strings.CutSuffix(base, ".tmpl")
		if !ok {
			return fmt.Errorf("template %s: name does not end in .tmpl", rel)
		}
		if after, ok := strings.CutPrefix(base, "dot_"); ok {
			base = "." + after
		}
		name := dir + base
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(rel).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("template %s: %w", rel, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return fmt.Errorf("template %s: %w", rel, err)
		}
		out = append(out, File{Path: name, Data: b.Bytes()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ExistsError is returned by Write when files of the starter already exist.
type ExistsError struct {
	// Dir is the folder written to.
	Dir string
	// Paths are the existing files, relative to Dir, sorted.
	Paths []string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s: %d files of the starter already exist: %s", e.Dir, len(e.Paths), strings.Join(e.Paths, ", "))
}

// Write renders the starter into dir, creating it when needed, and returns the
// paths it wrote, relative to dir. Unless force is set it writes nothing when
// any of the files exists, and returns an *ExistsError naming them all.
func Write(dir string, data Data, force bool) ([]string, error) {
	files, err := Files(data)
	if err != nil {
		return nil, err
	}
	if !force {
		var exists []string
		for _, f := range files {
			_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path)))
			if err == nil {
				exists = append(exists, f.Path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		if len(exists) > 0 {
			return nil, &ExistsError{Dir: dir, Paths: exists}
		}
	}
	var written []string
	for _, f := range files {
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(target, f.Data, 0o644); err != nil {
			return written, err
		}
		written = append(written, f.Path)
	}
	return written, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidName reports whether name can name an application: a DNS label.
func ValidName(name string) bool { return len(name) <= 63 && dnsLabel.MatchString(name) }

var notLabel = regexp.MustCompile(`[^a-z0-9]+`)

// NameFor derives an application name from the folder a project is written
// to: its base name made a DNS label ("My App" becomes my-app), or "starter"
// when nothing usable is left.
func NameFor(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	name := notLabel.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-")
	name = strings.Trim(name, "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if !ValidName(name) {
		return "starter"
	}
	return name
}
