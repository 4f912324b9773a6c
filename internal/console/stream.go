package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/logs"
)

// statusEvery is how often the stream looks at the status; it sends it only
// when it changed.
const statusEvery = time.Second

// maxStreamServices bounds the services one stream follows.
const maxStreamServices = 64

// stream is the console's one live channel, server-sent events: "status"
// (the admin API's status document, whenever it changes) and, with
// logs=all or logs=NAME,NAME, "log" (one logs.Line per event, the last tail
// lines first and then every new one; level and grep filter them). Pages
// open one stream each instead of polling.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	follow := map[string]bool{}
	logsOn := v.Get("logs") != ""
	if l := v.Get("logs"); l != "" && l != "all" {
		for _, n := range strings.Split(l, ",") {
			follow[n] = true
		}
		if len(follow) > maxStreamServices {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("logs: %d services; at most %d", len(follow), maxStreamServices))
			return
		}
	}
	search := logs.Search{Level: v.Get("level"), Grep: v.Get("grep")}
	if search.Level != "" && !logs.KnownLevel(search.Level) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("level %q: want debug, info, warn or error", search.Level))
		return
	}
	if logsOn && s.cfg.Logs == nil {
		writeError(w, http.StatusServiceUnavailable, "this engine keeps no logs")
		return
	}
	tail := 200
	if t := v.Get("tail"); t != "" {
		if _, err := fmt.Sscan(t, &tail); err != nil || tail < 0 || tail > 5000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("tail %q: want 0 to 5000 lines", t))
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	send := func(event string, data []byte) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return true
	}
	var lastStatus []byte
	sendStatus := func() bool {
		b, err := json.Marshal(s.cfg.Backend.Status())
		if err != nil || bytes.Equal(b, lastStatus) {
			return true
		}
		lastStatus = b
		return send("status", b)
	}
	q := logs.Query{Tail: tail}
	sendLogs := func() bool {
		lines := s.cfg.Logs.Get(q)
		for _, l := range lines {
			if len(follow) > 0 && !follow[l.Service] {
				continue
			}
			if !search.Match(l) {
				continue
			}
			b, err := json.Marshal(l)
			if err != nil || !send("log", b) {
				return false
			}
		}
		if n := len(lines); n > 0 {
			q.AfterSeq = lines[n-1].Seq
		}
		q.Tail = 0
		return true
	}
	// Status is built on the ticker only: it asks every part of the
	// engine, too much to do on every new log line.
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	statusDue := true
	for {
		var wake <-chan struct{}
		if logsOn {
			wake = s.cfg.Logs.Wait() // before Get: no line falls between
			if !sendLogs() {
				return
			}
		}
		if statusDue && !sendStatus() {
			return
		}
		statusDue = false
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-wake:
		case <-tick.C:
			statusDue = true
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		}
	}
}
