package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
)

// web holds the console's pages: plain HTML, ES modules and CSS served as
// they are, so that `go build` alone makes a binary with the whole console
// (no JavaScript build step). web/vendor holds uPlot with its licence.
//
//go:embed web
var web embed.FS

// webRoutes registers the console's pages: the shell at / and its assets
// under /ui/. Pages route on the URL's fragment (#/logs), so that the
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
	assets := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change with the binary only; a restarted engine may be
		// a newer nubo, so the browser revalidates.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		assets.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		// The token goes into the page: only a page of this origin can
		// read this answer (no CORS headers), and the Host check keeps a
		// rebound DNS name from being this origin.
		if err := shell.Execute(&b, map[string]string{"Token": s.cfg.Token}); err != nil {
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
