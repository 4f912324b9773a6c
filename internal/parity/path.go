package parity

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// segment is one step of a field path: a name (a struct field or a map key) or
// a list index. In a pattern, a name "*" matches any one name and an index "*"
// any one index.
type segment struct {
	index bool
	text  string
	end   int // offset just after the segment in the path it was cut from
}

// splitPath cuts a field path as spec writes it (services.users.env.X,
// ingress[0].paths[1], events["com.acme.x"].schema) into segments.
func splitPath(p string) ([]segment, error) {
	var segs []segment
	for i := 0; i < len(p); {
		switch {
		case p[i] == '.':
			if i == 0 || i == len(p)-1 || p[i+1] == '.' || p[i+1] == '[' {
				return nil, fmt.Errorf("path %q: empty name at offset %d", p, i)
			}
			i++
		case p[i] == '[' && i+1 < len(p) && p[i+1] == '"':
			end, key, err := quotedKey(p, i+1)
			if err != nil {
				return nil, err
			}
			segs = append(segs, segment{text: key, end: end})
			i = end
		case p[i] == '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [ at offset %d", p, i)
			}
			idx := p[i+1 : i+end]
			if idx != "*" {
				if _, err := strconv.Atoi(idx); err != nil {
					return nil, fmt.Errorf("path %q: index %q is not a number or *", p, idx)
				}
			}
			i += end + 1
			segs = append(segs, segment{index: true, text: idx, end: i})
		default:
			end := strings.IndexAny(p[i:], ".[")
			if end < 0 {
				end = len(p) - i
			}
			segs = append(segs, segment{text: p[i : i+end], end: i + end})
			i += end
		}
	}
	return segs, nil
}

// quotedKey reads a Go-quoted map key starting at the quote p[start] and
// followed by "]"; it returns the offset after the "]".
func quotedKey(p string, start int) (int, string, error) {
	for j := start + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case '"':
			key, err := strconv.Unquote(p[start : j+1])
			if err != nil || j+1 >= len(p) || p[j+1] != ']' {
				return 0, "", fmt.Errorf("path %q: bad quoted key at offset %d", p, start)
			}
			return j + 2, key, nil
		}
	}
	return 0, "", fmt.Errorf("path %q: unclosed quoted key at offset %d", p, start)
}

// hasPrefix reports whether the pattern matches the first segments of path.
func hasPrefix(path, pattern []segment) bool {
	if len(pattern) > len(path) {
		return false
	}
	for i, ps := range pattern {
		s := path[i]
		if ps.index != s.index {
			return false
		}
		if ps.text != "*" && ps.text != s.text {
			return false
		}
	}
	return true
}

// valueAt walks v (an *spec.App) along path, by yaml tags in structs, keys in
// maps and indexes in lists, and returns the value it reaches as text. It is
// how a row like `gateway.authorizers.*.type=jwt` looks at what was written:
// App.Paths gives places, not values.
func valueAt(v reflect.Value, path []segment) (string, bool) {
	for _, s := range path {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return "", false
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(v, s.text)
			if !ok || s.index {
				return "", false
			}
			v = f
		case reflect.Map:
			if s.index || v.Type().Key().Kind() != reflect.String {
				return "", false
			}
			v = v.MapIndex(reflect.ValueOf(s.text).Convert(v.Type().Key()))
			if !v.IsValid() {
				return "", false
			}
		case reflect.Slice:
			i, err := strconv.Atoi(s.text)
			if !s.index || err != nil || i < 0 || i >= v.Len() {
				return "", false
			}
			v = v.Index(i)
		default:
			return "", false
		}
	}
	return scalarText(v)
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == name && t.Field(i).IsExported() {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

var stringerType = reflect.TypeFor[fmt.Stringer]()

// scalarText renders a scalar as it was written: strings as they are, spec's
// Duration, Quantity and Target through their String method.
func scalarText(v reflect.Value) (string, bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "", false
		}
		v = v.Elem()
	}
	if v.Type().Implements(stringerType) {
		return v.Interface().(fmt.Stringer).String(), true
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), true
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), true
	case reflect.Int, reflect.Int64, reflect.Int32:
		return strconv.FormatInt(v.Int(), 10), true
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), true
	}
	return "", false
}
