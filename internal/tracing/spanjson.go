package tracing

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// appendSpanJSON appends sp as encoding/json writes it (the same bytes:
// field order, omitempty, string escaping), without reflection or an
// allocation per span: the store writes every span it takes this way,
// and encoding/json was a third of the receiver's time. The store reads
// spans back with encoding/json.
func appendSpanJSON(b []byte, sp *Span) []byte {
	b = append(b, `{"tid":"`...)
	b = hex.AppendEncode(b, sp.TraceID[:])
	b = append(b, `","sid":"`...)
	b = hex.AppendEncode(b, sp.SpanID[:])
	b = append(b, '"')
	if !sp.Parent.IsZero() {
		b = append(b, `,"pid":"`...)
		b = hex.AppendEncode(b, sp.Parent[:])
		b = append(b, '"')
	}
	b = append(b, `,"n":`...)
	b = appendJSONString(b, sp.Name)
	if sp.Kind != 0 {
		b = append(b, `,"k":`...)
		b = strconv.AppendInt(b, int64(sp.Kind), 10)
	}
	b = append(b, `,"svc":`...)
	b = appendJSONString(b, sp.Service)
	b = append(b, `,"s":`...)
	b = strconv.AppendInt(b, sp.Start, 10)
	b = append(b, `,"e":`...)
	b = strconv.AppendInt(b, sp.End, 10)
	if sp.Status != 0 {
		b = append(b, `,"st":`...)
		b = strconv.AppendInt(b, int64(sp.Status), 10)
	}
	if sp.StatusMessage != "" {
		b = append(b, `,"sm":`...)
		b = appendJSONString(b, sp.StatusMessage)
	}
	if len(sp.Attrs) > 0 {
		b = append(b, `,"a":`...)
		b = appendAttrsJSON(b, sp.Attrs)
	}
	if len(sp.Events) > 0 {
		b = append(b, `,"ev":[`...)
		for i := range sp.Events {
			if i > 0 {
				b = append(b, ',')
			}
			ev := &sp.Events[i]
			b = append(b, `{"t":`...)
			b = strconv.AppendInt(b, ev.Time, 10)
			b = append(b, `,"n":`...)
			b = appendJSONString(b, ev.Name)
			if len(ev.Attrs) > 0 {
				b = append(b, `,"a":`...)
				b = appendAttrsJSON(b, ev.Attrs)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(sp.Resource) > 0 {
		b = append(b, `,"r":`...)
		b = appendAttrsJSON(b, sp.Resource)
	}
	if sp.Scope != "" {
		b = append(b, `,"sc":`...)
		b = appendJSONString(b, sp.Scope)
	}
	return append(b, '}')
}

func appendAttrsJSON(b []byte, attrs []Attr) []byte {
	b = append(b, '[')
	for i := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		a := &attrs[i]
		b = append(b, `{"k":`...)
		b = appendJSONString(b, a.Key)
		if a.Type != "" {
			b = append(b, `,"t":`...)
			b = appendJSONString(b, a.Type)
		}
		b = append(b, `,"v":`...)
		b = appendJSONString(b, a.Value)
		b = append(b, '}')
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes it (with
// HTML escaping, as json.Marshal does): control characters, <, > and &,
// U+2028 and U+2029 as \u escapes, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
