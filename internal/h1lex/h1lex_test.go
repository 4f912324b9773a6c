package h1lex

import (
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// Each rule agrees with the library net/http itself relies on, for every
// byte and for names and values of the shapes the parsers meet.
func TestRulesAgreeWithNetHTTP(t *testing.T) {
	cases := []string{"", "Host", "content-length", "X-Forwarded-For", "x-a-b", "Content-Type ", "a b", "a:b", "Ünicode", "X_Under", "--x", "-", "ETag", "WWW-Authenticate"}
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "A"+string([]byte{byte(c)})+"b")
	}
	for _, s := range cases {
		b := []byte(s)
		if got, want := Tokens(b), s != "" && httpguts.ValidHeaderFieldName(s); got != want && s != "" {
			t.Errorf("Tokens(%q) = %v, httpguts says %v", s, got, want)
		}
		if got, want := PlainValue(b), httpguts.ValidHeaderFieldValue(s) && !strings.ContainsAny(s, "\r\n"); got != want {
			t.Errorf("PlainValue(%q) = %v, httpguts says %v", s, got, want)
		}
		if s != "" && Tokens(b) {
			if got, want := IsCanonical(b), textproto.CanonicalMIMEHeaderKey(s) == s; got != want {
				t.Errorf("IsCanonical(%q) = %v, textproto says %v", s, got, want)
			}
		}
		padded := " \t" + s + "\t "
		if got, want := string(TrimOWS([]byte(padded))), strings.Trim(padded, " \t"); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", padded, got, want)
		}
	}
}
