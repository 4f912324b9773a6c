package urlpath

import (
	"errors"
	"net/url"
	"testing"

	"github.com/nubo-dev/nubo/internal/urlpath/urlpathtest"
)

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		decoded, raw string
		want         string
		err          error
	}{
		{"/", "", "/", nil},
		{"", "", "", nil},
		{"/users/42", "", "/users/42", nil},
		{"/users/", "", "/users/", nil},
		{"/a b", "/a%20b", "/a b", nil},
		{"/a/./b", "", "/a/b", nil},
		{"/a/../b", "", "/b", nil},
		{"/a/b/..", "", "/a/", nil},
		{"/a/b/.", "", "/a/b/", nil},
		{"/..", "", "/", nil},
		{"/../../etc/passwd", "", "/etc/passwd", nil},
		{"/public/../private/secret.txt", "/public/%2e%2e/private/secret.txt", "/private/secret.txt", nil},
		{"/public/../private/secret.txt", "/public/%2E%2e/private/secret.txt", "/private/secret.txt", nil},
		{"//a///b//", "", "/a/b/", nil},
		{"/a\\..\\..\\b", "", "/b", nil},
		{"\\a", "", "/a", nil},
		{"/a/...", "", "/a/...", nil},
		{"/a/..b/.c", "", "/a/..b/.c", nil},
		{"/caf\u00e9", "/caf%C3%A9", "/caf\u00e9", nil},
		{"/100%", "/100%25", "/100%", nil},
		{"/public/../private", "/public/..%2Fprivate", "", ErrEscapedSlash},
		{"/public/../private", "/public/..%2fprivate", "", ErrEscapedSlash},
		{"/public/..\\private", "/public/..%5cprivate", "", ErrEscapedSlash},
		{"/public/%2e%2e/private", "/public/%252e%252e/private", "", ErrDoubleEncoded},
		{"/public/..%2Fprivate", "/public/..%252Fprivate", "", ErrDoubleEncoded},
		{"/public/\xc0\xae\xc0\xae/private", "/public/%c0%ae%c0%ae/private", "", ErrInvalid},
		{"/a\x00b", "/a%00b", "", ErrInvalid},
		{"/a\nb", "/a%0Ab", "", ErrInvalid},
		{"a/b", "", "", ErrInvalid},
		{"*", "", "", ErrInvalid},
	}
	for _, tt := range tests {
		got, err := Clean(tt.decoded, tt.raw)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Clean(%q, %q) = %q, %v; want %q, %v", tt.decoded, tt.raw, got, err, tt.want, tt.err)
		}
		if err == nil {
			// Normal forms are fixed points.
			if again, err := Clean(got, ""); again != got || err != nil {
				t.Errorf("Clean(%q) = %q, %v; want it unchanged", got, again, err)
			}
		}
	}
}

// TestCleanRequestTargets goes through net/url, as the servers do, so that
// the corpus is the bytes a client sends.
func TestCleanRequestTargets(t *testing.T) {
	t.Parallel()
	for _, target := range urlpathtest.Corpus {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			continue // the server refuses it before nubo sees it
		}
		if err := CleanURL(u); err != nil {
			continue
		}
		if HasDotSegment(u.Path) {
			t.Errorf("%s: cleaned to %q", target, u.Path)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/a/b": false, "/a/../b": true, "..": true, "/a/.": true, "/a\\..\\b": true, "/a/..b": false, "/...": false,
	} {
		if got := HasDotSegment(p); got != want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestCleanCleanPathDoesNotAllocate(t *testing.T) {
	p := "/api/v1/users/42/orders"
	if n := testing.AllocsPerRun(100, func() { _, _ = Clean(p, "") }); n != 0 {
		t.Errorf("Clean of a clean path: %v allocations, want 0", n)
	}
}

func FuzzClean(f *testing.F) {
	for _, target := range urlpathtest.Corpus {
		f.Add(target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		p, err := Clean(u.Path, u.RawPath)
		if err != nil {
			return
		}
		if HasDotSegment(p) {
			t.Fatalf("Clean(%q) = %q: a dot segment is left", target, p)
		}
		if again, err := Clean(p, ""); again != p || err != nil {
			t.Fatalf("Clean(%q) = %q, but cleaning that gives %q, %v", target, p, again, err)
		}
	})
}

func BenchmarkClean(b *testing.B) {
	for _, bc := range []struct{ name, decoded, raw string }{
		{"clean", "/api/v1/users/42/orders", ""},
		{"dots", "/api/v1/users/../42/./orders", ""},
		{"escaped", "/api/v1/users/caf\u00e9", "/api/v1/users/caf%C3%A9"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Clean(bc.decoded, bc.raw)
			}
		})
	}
}
