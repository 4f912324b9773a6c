// Package cebinding holds what nubo adds to the CloudEvents Go SDK's HTTP
// protocol binding: the percent-encoding of ce- header values (HTTP
// binding 1.0.2, section 3.1.3.2), which the SDK (v2.16.2) neither writes
// nor reads, and the checks of the attributes that the SDK lets through or
// silently rewrites (a numeric id, an invalid dataschema, data and
// data_base64 together). Every refusal names the attribute.
//
// It is hand-written because the SDK is the library for the rest and has
// no hook for either; wrapping its reads and writes keeps the SDK in use.
package cebinding

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// headerPrefix starts every attribute header in binary mode, in Go's
// canonical form.
const headerPrefix = "Ce-"

// AttributeError is an event refused because of one attribute.
type AttributeError struct {
	// Attribute names the attribute, or the ce- header in binary mode.
	Attribute string
	// Reason says what is wrong with it.
	Reason string
}

func (e *AttributeError) Error() string {
	name := e.Attribute
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
		// A member named "" or with spaces (FuzzStructured found
		// "attribute : ...") is shown quoted.
		name = fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("attribute %s: %s", name, e.Reason)
}

// EncodeValue percent-encodes a header value: every character outside
// U+0021..U+007E, and '"' and '%', becomes the %XX of its UTF-8 bytes.
func EncodeValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if mustEncode(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; mustEncode(c) {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mustEncode works on bytes: every byte of a multi-byte UTF-8 character
// is above 0x7E, so encoding bytes encodes exactly those characters.
func mustEncode(c byte) bool { return c < 0x21 || c > 0x7e || c == '"' || c == '%' }

// DecodeValue reads a header value: a double-quoted string is unquoted
// first (older senders), then one round of percent-decoding; a result that
// is not UTF-8 (an overlong %C0%A0, say) is refused.
func DecodeValue(s string) (string, error) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		u, err := unquote(s[1 : len(s)-1])
		if err != nil {
			return "", err
		}
		s = u
	}
	if strings.Contains(s, "%") {
		u, err := url.PathUnescape(s)
		if err != nil {
			return "", fmt.Errorf("bad percent-encoding: %w", err)
		}
		s = u
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("percent-encoded bytes are not UTF-8")
	}
	return s, nil
}

// unquote undoes the backslash escapes of an RFC 7230 quoted string.
func unquote(s string) (string, error) {
	if !strings.ContainsAny(s, `\"`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return "", fmt.Errorf("quoted string ends in a backslash")
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return "", fmt.Errorf("unescaped '\"' inside a quoted string")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// EncodeHeaders percent-encodes the values of h's ce- headers in place,
// after the SDK has written them.
func EncodeHeaders(h http.Header) {
	for k, vs := range h {
		if !strings.HasPrefix(k, headerPrefix) {
			continue
		}
		for i, v := range vs {
			vs[i] = EncodeValue(v)
		}
	}
}

// DecodeHeaders decodes the values of h's ce- headers in place, before
// the SDK reads them; the error names the header.
func DecodeHeaders(h http.Header) error {
	for k, vs := range h {
		if !strings.HasPrefix(k, headerPrefix) {
			continue
		}
		for i, v := range vs {
			d, err := DecodeValue(v)
			if err != nil {
				return &AttributeError{Attribute: strings.ToLower(k), Reason: err.Error()}
			}
			vs[i] = d
		}
	}
	return nil
}

// CheckBinary checks the decoded ce- headers of a binary-mode request:
// present attributes are not empty, dataschema is an absolute URI, source a
// URI reference, time an RFC 3339 timestamp, extension names lowercase
// letters and digits.
func CheckBinary(h http.Header) error {
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, headerPrefix)
		if !ok || len(vs) == 0 {
			continue
		}
		name = strings.ToLower(name)
		if err := checkAttribute(name, vs[0]); err != nil {
			err.Attribute = "ce-" + name
			return err
		}
	}
	return nil
}

// stringAttributes are the context attributes whose JSON value is a string.
var stringAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
}

// CheckStructured checks one event in the JSON format, given as its
// members: the context attributes are strings (an id of 5 is refused, not
// replaced), dataschema an absolute URI, data and data_base64 not both
// there and data_base64 valid base64, extensions named in lowercase
// letters and digits with a string, integer or boolean value. A member
// that is null is absent, as the format says.
func CheckStructured(fields map[string]json.RawMessage) error {
	_, hasData := fields["data"]
	b64, hasBase64 := fields["data_base64"]
	if hasData && hasBase64 && !isNull(fields["data"]) && !isNull(b64) {
		return &AttributeError{Attribute: "data_base64", Reason: "data and data_base64 exclude each other: send one"}
	}
	if hasBase64 && !isNull(b64) {
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return &AttributeError{Attribute: "data_base64", Reason: "must be a string of base64, not " + jsonKind(b64)}
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return &AttributeError{Attribute: "data_base64", Reason: "not base64: " + err.Error()}
		}
	}
	for name, raw := range fields {
		if name == "data" || name == "data_base64" || isNull(raw) {
			continue
		}
		var value string
		switch {
		case stringAttributes[name]:
			if err := json.Unmarshal(raw, &value); err != nil {
				return &AttributeError{Attribute: name, Reason: "must be a string, not " + jsonKind(raw)}
			}
		default:
			if !validExtensionName(name) {
				return &AttributeError{Attribute: name, Reason: extensionNameRule}
			}
			if err := checkExtensionJSON(raw); err != nil {
				return &AttributeError{Attribute: name, Reason: err.Error()}
			}
			continue
		}
		if err := checkAttribute(name, value); err != nil {
			return err
		}
	}
	return nil
}

// checkAttribute checks one attribute's string form, in either mode.
func checkAttribute(name, value string) *AttributeError {
	bad := func(format string, args ...any) *AttributeError {
		return &AttributeError{Attribute: name, Reason: fmt.Sprintf(format, args...)}
	}
	switch name {
	case "id", "type", "specversion", "source", "subject", "datacontenttype":
		if value == "" {
			return bad("must not be empty")
		}
		if name == "source" {
			if _, err := url.Parse(value); err != nil {
				return bad("%q is not a URI reference", value)
			}
		}
	case "dataschema":
		u, err := url.Parse(value)
		if err != nil || !u.IsAbs() {
			return bad("%q is not an absolute URI", value)
		}
	case "time":
		if _, err := time.Parse(time.RFC3339Nano, value); err != nil {
			return bad("%q is not an RFC 3339 timestamp", value)
		}
	default:
		if !validExtensionName(name) {
			return bad("%s", extensionNameRule)
		}
	}
	return nil
}

const extensionNameRule = "not a valid attribute name: lowercase letters a-z and digits 0-9 only"

func validExtensionName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkExtensionJSON accepts the JSON forms of the CloudEvents types an
// extension can have: a string, a boolean or a (32-bit) integer.
func checkExtensionJSON(raw json.RawMessage) error {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string, bool:
		return nil
	case json.Number:
		n, err := x.Int64()
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return fmt.Errorf("%s is not a CloudEvents integer (32 bits, no fraction)", x)
		}
		return nil
	}
	return fmt.Errorf("must be a string, an integer or a boolean, not %s", jsonKind(raw))
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonKind names the JSON type of raw, for errors.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "the number " + string(t)
}
