package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// decoder fills Go values from a node tree. It never stops at the first
// problem: a bad value is reported and left at its zero value, so one run
// shows every mistake.
type decoder struct {
	src *source
	r   *report
}

// fieldInfo is what the struct tags of a field say.
type fieldInfo struct {
	name     string
	index    int
	required bool
	enum     []string
	names    string // name rule for the keys of a map, or for a string's value
	// bounds are the schema keywords of the min, max, xmin (exclusive),
	// xmax and pattern tags: what the validators check of the value, said
	// again for the JSON Schema; TestSchemaAndValidateRefuseTogether holds
	// the two to each other.
	bounds map[string]any
}

// structCache memoizes fieldsOf; types never change, so sharing it between
// loads is safe.
var structCache sync.Map // reflect.Type -> []fieldInfo

// fieldsOf lists the YAML fields of a struct type from its tags.
func fieldsOf(t reflect.Type) []fieldInfo {
	if fs, ok := structCache.Load(t); ok {
		return fs.([]fieldInfo)
	}
	var fs []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fi := fieldInfo{name: tag, index: i, required: f.Tag.Get("required") == "true", names: f.Tag.Get("names")}
		if e := f.Tag.Get("enum"); e != "" {
			fi.enum = strings.Split(e, "|")
		}
		fi.bounds = boundsOf(f.Tag)
		fs = append(fs, fi)
	}
	structCache.Store(t, fs)
	return fs
}

// boundTags maps the bound tags to their JSON Schema keywords.
var boundTags = map[string]string{
	"min": "minimum", "max": "maximum", "xmin": "exclusiveMinimum", "xmax": "exclusiveMaximum", "pattern": "pattern",
}

func boundsOf(tag reflect.StructTag) map[string]any {
	var out map[string]any
	for t, kw := range boundTags {
		v, ok := tag.Lookup(t)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		if t == "pattern" {
			out[kw] = v
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(fmt.Sprintf("spec: bad %s tag %q", t, v)) // a bug in the types, caught by tests
		}
		out[kw] = n
	}
	return out
}

var scalarDecoderType = reflect.TypeFor[scalarDecoder]()

func (d *decoder) decode(n *node, v reflect.Value, path string, fi fieldInfo) {
	d.src.pos[path] = n.pos
	if v.CanAddr() && v.Addr().Type().Implements(scalarDecoderType) {
		if n.kind == kindNull {
			return
		}
		if n.kind != kindScalar {
			d.r.errorf(path, "expected a scalar, not %s", n.kind)
			return
		}
		if err := v.Addr().Interface().(scalarDecoder).decodeScalar(n.text); err != nil {
			d.r.errorf(path, "%v", err)
		}
		if strings.Contains(n.text, "${") {
			d.src.interpolations = append(d.src.interpolations, stringValue{path, n.text})
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.kind == kindNull {
			return
		}
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path, fi)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path, fi)
	case reflect.Slice:
		if n.kind == kindNull {
			return
		}
		if n.kind != kindSeq {
			d.r.errorf(path, "expected a list, not %s", n.kind)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.values), len(n.values))
		for i, item := range n.values {
			d.decode(item, s.Index(i), indexPath(path, i), fi)
			fillNil(s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		if text, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(text)
			d.checkEnum(text, path, fi)
			if rule, ok := nameRules[fi.names]; ok && text != "" && !rule.valid(text) {
				d.r.errorf(path, "%q is not a valid name: use %s", text, rule.what)
			}
			if strings.Contains(text, "${") {
				d.src.interpolations = append(d.src.interpolations, stringValue{path, text})
			}
		}
	case reflect.Int:
		text, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(text, 0, 64)
		if err != nil || n.stype != scalarInt {
			d.r.errorf(path, "expected an integer, not %s", describe(n))
			return
		}
		if i > math.MaxInt32 || i < math.MinInt32 {
			d.r.errorf(path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		text, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || (n.stype != scalarInt && n.stype != scalarFloat) || math.IsNaN(f) || math.IsInf(f, 0) {
			d.r.errorf(path, "expected a number, not %s", describe(n))
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		if _, ok := d.scalar(n, path, "true or false"); !ok {
			return
		}
		if n.stype != scalarBool {
			d.r.errorf(path, "expected true or false, not %s", describe(n))
			return
		}
		v.SetBool(n.text == "true")
	case reflect.Interface:
		v.Set(reflect.ValueOf(n.generic()))
	default:
		panic(fmt.Sprintf("spec: no decoding for %s at %s", v.Type(), path)) // a bug in the types, caught by tests
	}
}

// scalar returns the text of a scalar node; null is "absent" and not an error.
func (d *decoder) scalar(n *node, path, want string) (string, bool) {
	switch n.kind {
	case kindScalar:
		return n.text, true
	case kindNull:
		return "", false
	}
	d.r.errorf(path, "expected %s, not %s", want, n.kind)
	return "", false
}

func describe(n *node) string {
	switch n.stype {
	case scalarString:
		return fmt.Sprintf("the string %q", n.text)
	case scalarBool:
		return "the boolean " + n.text
	}
	return n.text
}

func (d *decoder) checkEnum(text, path string, fi fieldInfo) {
	if fi.enum == nil || text == "" {
		return
	}
	for _, e := range fi.enum {
		if e == text {
			return
		}
	}
	msg := fmt.Sprintf("%q is not one of %s", text, strings.Join(fi.enum, ", "))
	if s := Suggest(text, fi.enum); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.r.errorf(path, "%s", msg)
}

func (d *decoder) decodeStruct(n *node, v reflect.Value, path string) {
	if n.kind == kindNull {
		return
	}
	if n.kind != kindMap {
		d.r.errorf(path, "expected a mapping, not %s", n.kind)
		return
	}
	fields := fieldsOf(v.Type())
	set := map[string]bool{}
	for i, k := range n.keys {
		var fi *fieldInfo
		for j := range fields {
			if fields[j].name == k.text {
				fi = &fields[j]
				break
			}
		}
		fpath := joinPath(path, k.text)
		if fi == nil {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.name
			}
			msg := fmt.Sprintf("unknown field %q", k.text)
			if s := Suggest(k.text, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.r.add(k.pos, fpath, SeverityError, "%s", msg)
			continue
		}
		d.src.keyPos[fpath] = k.pos
		set[fi.name] = n.values[i].kind != kindNull
		d.decode(n.values[i], v.Field(fi.index), fpath, *fi)
	}
	for _, f := range fields {
		if f.required && !set[f.name] {
			d.r.add(d.src.atKey(path), path, SeverityError, "missing required field %q", f.name)
		}
	}
}

func (d *decoder) decodeMap(n *node, v reflect.Value, path string, fi fieldInfo) {
	if n.kind == kindNull {
		return
	}
	if n.kind != kindMap {
		d.r.errorf(path, "expected a mapping, not %s", n.kind)
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.keys))
	rule, hasRule := nameRules[fi.names]
	for i, k := range n.keys {
		kpath := joinPath(path, k.text)
		d.src.keyPos[kpath] = k.pos
		if hasRule && !rule.valid(k.text) {
			d.r.add(k.pos, kpath, SeverityError, "%q is not a valid name: use %s", k.text, rule.what)
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		// A map's elements take the enum of the field but not its name rule.
		d.decode(n.values[i], elem, kpath, fieldInfo{enum: fi.enum})
		fillNil(elem)
		m.SetMapIndex(reflect.ValueOf(k.text), elem)
	}
	v.Set(m)
}

// generic converts a node to plain Go values (map[string]any, []any, string,
// int64, float64, bool, nil), for free-form fields such as JSON Schemas.
func (n *node) generic() any {
	switch n.kind {
	case kindMap:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k.text] = n.values[i].generic()
		}
		return m
	case kindSeq:
		s := make([]any, len(n.values))
		for i, item := range n.values {
			s[i] = item.generic()
		}
		return s
	case kindScalar:
		switch n.stype {
		case scalarInt:
			if i, err := strconv.ParseInt(n.text, 0, 64); err == nil {
				return i
			}
			if f, err := strconv.ParseFloat(n.text, 64); err == nil {
				return f
			}
		case scalarFloat:
			if f, err := strconv.ParseFloat(n.text, 64); err == nil {
				return f
			}
		case scalarBool:
			return n.text == "true"
		}
		return n.text
	}
	return nil
}

// fillNil gives a nil pointer to a struct an empty value, so that `users:` with
// nothing under it is an empty service (reported as such), never a nil one.
func fillNil(v reflect.Value) {
	if v.Kind() == reflect.Pointer && v.IsNil() && v.Type().Elem().Kind() == reflect.Struct {
		v.Set(reflect.New(v.Type().Elem()))
	}
}
