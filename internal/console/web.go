package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
)

// web holds the console's pages: plain HTML, ES modules and CSS served as
// they are, so that `go build` alone makes a binary with the whole console
// (no JavaScript build step). web/vendor holds uPlot with its licence.
//
//go:embed web
var web embed.FS

// webRoutes registers the console's pages: the shell at / and its assets
// under /ui/VERSION/. Pages route on the URL's fragment (#/logs), so that the
// server has one page to serve and to put the token into.
func (s *Server) webRoutes(mux *http.ServeMux) error {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		return err
	}
	shell, err := template.ParseFS(sub, "index.html")
	if err != nil {
		return err
	}
	version, err := assetsVersion(sub)
	if err != nil {
		return err
	}
	prefix := "/ui/" + version + "/"
	assets := http.StripPrefix(prefix, http.FileServerFS(sub))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.HasPrefix(r.URL.Path, prefix) {
			// An older page of an engine that has since restarted as a
			// newer nubo: its assets are gone; a reload gets the new ones.
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s: no such asset in this nubo (reload the page)", r.URL.Path))
			return
		}
		// The URL names the content (its hash): the browser keeps it
		// and asks again only when the binary changes, which is what
		// keeps page loads fast.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		assets.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		// The token goes into the page: only a page of this origin can
		// read this answer (no CORS headers), and the Host check keeps a
		// rebound DNS name from being this origin.
		if err := shell.Execute(&b, map[string]string{"Token": s.cfg.Token, "Assets": strings.TrimSuffix(prefix, "/")}); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		_, _ = w.Write(b.Bytes())
	})
	return nil
}

// assetsVersion is a hash of every asset, which their URLs carry.
func assetsVersion(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := fsys.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		io.WriteString(h, path)
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("console: assets: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
