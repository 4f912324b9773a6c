package spec

import (
	"path/filepath"
	"reflect"

	"github.com/nubo-dev/nubo/internal/readlimit"
)

// maxIncludes bounds the files one spec may pull in.
const maxIncludes = 64

// Load reads, merges, decodes, defaults and validates a spec file. On problems
// with the file's content the error is a Diagnostics holding every error, sorted
// by position; warnings of a valid spec are on App.Warnings.
func Load(file string) (*App, error) {
	data, err := readBounded(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// Parse is Load for a spec already in memory; file names it in messages and
// included files are read relative to its folder.
func Parse(file string, data []byte) (*App, error) {
	src := newSource()
	root, err := loadTree(file, data, src, map[string]bool{})
	if err != nil {
		return nil, err
	}
	r := &report{src: src}
	app := &App{File: file, Dir: filepath.Dir(file), src: src}
	if root.kind != kindMap && root.kind != kindNull {
		return nil, fatalf(root.pos, "a spec is a mapping of sections (name, services, ...), not %s", root.kind)
	}
	if root.kind == kindNull {
		r.add(Pos{File: file, Line: 1, Col: 1}, "", SeverityError, "the file is empty: a spec needs at least a name")
	}
	d := &decoder{src: src, r: r}
	d.decode(root, reflect.ValueOf(app).Elem(), "", fieldInfo{})
	applyDefaults(app)
	for _, c := range validators {
		c.check(app, r)
	}
	sortDiagnostics(r.diags, src.files)
	if errs := r.diags.Errors(); len(errs) > 0 {
		return nil, append(errs, r.diags.Warnings()...)
	}
	app.warnings = r.diags.Warnings()
	return app, nil
}

// Warnings returns what validation found worth saying but not failing on.
func (a *App) Warnings() Diagnostics { return a.warnings }

// readBounded reads a spec file: a regular file of at most maxFileSize
// bytes, counted as read, so that /dev/zero or a FIFO named as an include
// is refused rather than read until memory runs out.
func readBounded(file string) ([]byte, error) {
	return readlimit.File(file, maxFileSize)
}

// loadTree parses file and merges the files it includes into its tree.
func loadTree(file string, data []byte, src *source, seen map[string]bool) (*node, error) {
	abs, _ := filepath.Abs(file)
	if seen[abs] {
		return nil, fatalf(Pos{File: file}, "included twice (an include cycle?)")
	}
	seen[abs] = true
	if len(src.files) >= maxIncludes {
		return nil, fatalf(Pos{File: file}, "more than %d included files", maxIncludes)
	}
	src.files = append(src.files, file)
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	inc := root.lookup("include")
	if inc == nil || inc.kind != kindSeq {
		return root, nil // a wrong shape is reported by the decoder
	}
	for _, item := range inc.values {
		if item.kind != kindScalar || item.text == "" {
			return nil, fatalf(item.pos, "include: expected a file path")
		}
		path := item.text
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(file), path)
		}
		data, err := readBounded(path)
		if err != nil {
			return nil, fatalf(item.pos, "include %q: %v", item.text, err)
		}
		sub, err := loadTree(path, data, src, seen)
		if err != nil {
			return nil, err
		}
		if sub.kind == kindNull {
			continue
		}
		if sub.kind != kindMap {
			return nil, fatalf(sub.pos, "an included file is a mapping of sections, not %s", sub.kind)
		}
		sub = withoutKey(sub, "include")
		if err := mergeTree(root, sub, ""); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func withoutKey(n *node, key string) *node {
	out := &node{kind: n.kind, pos: n.pos}
	for i, k := range n.keys {
		if k.text != key {
			out.keys = append(out.keys, k)
			out.values = append(out.values, n.values[i])
		}
	}
	return out
}

// mergeTree merges src into dst: mappings merge key by key, lists are
// concatenated, and a scalar set differently in both files is an error naming
// both places.
func mergeTree(dst, src *node, path string) error {
	for i, k := range src.keys {
		sv := src.values[i]
		kpath := joinPath(path, k.text)
		di := dst.index(k.text)
		if di < 0 {
			dst.keys = append(dst.keys, k)
			dst.values = append(dst.values, sv)
			continue
		}
		dv := dst.values[di]
		switch {
		case dv.kind == kindNull:
			dst.values[di] = sv
		case dv.kind == kindMap && sv.kind == kindMap:
			if err := mergeTree(dv, sv, kpath); err != nil {
				return err
			}
		case dv.kind == kindSeq && sv.kind == kindSeq:
			dv.values = append(dv.values, sv.values...)
		case dv.kind == kindScalar && sv.kind == kindScalar && dv.text == sv.text:
		case sv.kind == kindNull:
		default:
			return fatalf(k.pos, "%s: set both here and at %s; an included file may add to a section but not change a value", kpath, dv.pos)
		}
	}
	return nil
}
