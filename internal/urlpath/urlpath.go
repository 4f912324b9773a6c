// Package urlpath normalises request paths once, the same way for every
// entry of nubo (the ingress, the gateway and the mesh), so that the path
// a rule is matched against, the path a policy is checked against and the
// path a backend receives are one and the same.
//
// The normalisation is Envoy's normalize_path (RFC 3986 section 5.2.4
// dot-segment removal, backslashes read as slashes) with merge_slashes, and
// path_with_escaped_slashes_action REJECT_REQUEST: Istio's MERGE_SLASHES
// option with escaped slashes refused rather than decoded. Beyond Envoy,
// it refuses what a backend could still turn into a traversal after nubo
// has looked at the path: a percent-escape left after decoding (double
// encoding), invalid UTF-8 (overlong forms of "." and "/") and control
// characters (Istio always refuses %00).
//
// It is written by hand because no library does this: path.Clean drops a
// trailing slash and knows nothing of escapes, and net/url decodes without
// normalising.
package urlpath

import (
	"errors"
	"net/url"
	"unicode/utf8"
)

// Errors of Clean: each refuses a request with 400 Bad Request.
var (
	// ErrEscapedSlash is a %2F or %5C in the path. Decoding it would change
	// where the path's segments split, and keeping it would let a backend
	// that decodes it see a different path than nubo matched.
	ErrEscapedSlash = errors.New("escaped slash or backslash (%2F, %5C) in the path")
	// ErrDoubleEncoded is a percent-escape that is still there after one
	// decoding (%252e): a backend decoding again would see another path.
	ErrDoubleEncoded = errors.New("percent-escape left in the path after decoding (double encoding)")
	// ErrInvalid is a path that is not valid UTF-8 (such as the overlong
	// %C0%AE for "."), holds a control character, or does not start with
	// "/".
	ErrInvalid = errors.New("path is not valid UTF-8, holds a control character or does not start with /")
)

// Clean returns the normal form of a request path: decoded is the path
// with its escapes decoded (url.URL.Path) and raw its escaped form as sent
// (url.URL.RawPath, "" when it is the default encoding of decoded). Dot
// segments are removed as RFC 3986 says ("/a/b/../c" is "/a/c", and ".."
// never climbs above "/"), runs of slashes are merged, backslashes are
// slashes, and a trailing slash is kept. "" stays "" (a proxy request for
// "http://host").
//
// An already clean path is returned as it came, without allocating.
func Clean(decoded, raw string) (string, error) {
	if raw != "" && hasEscapedSlash(raw) {
		return "", ErrEscapedSlash
	}
	if decoded == "" {
		return "", nil
	}
	if decoded[0] != '/' && decoded[0] != '\\' {
		return "", ErrInvalid
	}
	dirty, err := scan(decoded)
	if err != nil {
		return "", err
	}
	if !dirty {
		return decoded, nil
	}
	return clean(decoded), nil
}

// CleanURL cleans u's path in place, clearing RawPath when the path
// changed so that the path is escaped anew from its clean form.
func CleanURL(u *url.URL) error {
	p, err := Clean(u.Path, u.RawPath)
	if err != nil {
		return err
	}
	if p != u.Path {
		u.Path, u.RawPath = p, ""
	}
	return nil
}

// HasDotSegment reports whether p (a decoded path) has a "." or ".."
// segment, with "/" or "\" as separators. The gateway checks a backend
// path built from a template and parameter values with it.
func HasDotSegment(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && !isSlash(p[i]) {
			continue
		}
		if seg := p[start:i]; seg == "." || seg == ".." {
			return true
		}
		start = i + 1
	}
	return false
}

// scan checks decoded for what Clean refuses and reports whether it needs
// rewriting: a backslash, an empty segment ("//") or a dot segment.
func scan(p string) (dirty bool, err error) {
	ascii := true
	start := 1 // the current segment begins after the leading slash
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return false, ErrInvalid
		case c >= 0x80:
			ascii = false
		case c == '%':
			if i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
				return false, ErrDoubleEncoded
			}
		case c == '\\':
			dirty = true
		}
		if i == 0 || !isSlash(c) {
			continue
		}
		if seg := p[start:i]; seg == "" || seg == "." || seg == ".." {
			dirty = true
		}
		start = i + 1
	}
	if seg := p[start:]; seg == "." || seg == ".." {
		dirty = true
	}
	if !ascii && !utf8.ValidString(p) {
		return false, ErrInvalid
	}
	return dirty, nil
}

// clean rewrites p, which starts with a slash, by RFC 3986's
// remove_dot_segments with merged slashes.
func clean(p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		for i < len(p) && isSlash(p[i]) {
			i++
		}
		j := i
		for j < len(p) && !isSlash(p[j]) {
			j++
		}
		last := j == len(p)
		switch seg := p[i:j]; seg {
		case "":
			// Only at the end, since runs of slashes were skipped: the
			// path's trailing slash.
			b = append(b, '/')
		case ".":
			if last {
				b = append(b, '/')
			}
		case "..":
			b = b[:max(lastSlash(b), 0)]
			if last {
				b = append(b, '/')
			}
		default:
			b = append(b, '/')
			b = append(b, seg...)
		}
		i = j
	}
	if len(b) == 0 {
		return "/"
	}
	return string(b)
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

// hasEscapedSlash reports a %2F or %5C, in either case, in an escaped path.
func hasEscapedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		a, b := raw[i+1], raw[i+2]|0x20
		if (a == '2' && b == 'f') || (a == '5' && b == 'c') {
			return true
		}
	}
	return false
}

func isSlash(c byte) bool { return c == '/' || c == '\\' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
