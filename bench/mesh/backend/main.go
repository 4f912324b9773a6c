// Command backend is the replica of the mesh benchmark: a Go HTTP server
// answering every request with a short body, as small services do.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the backend\n")
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
