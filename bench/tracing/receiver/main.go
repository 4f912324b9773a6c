// Command receiver runs nubo's OTLP/HTTP receiver and trace store alone for
// the benchmark, as nubo up runs them: spans decoded with the collector's
// pdata, written to the store on disk and indexed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/nubo-dev/nubo/internal/tracing"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4318", "listen address")
	dir := flag.String("dir", "", "trace store folder (required)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("receiver: -dir is required")
	}
	st, err := tracing.OpenStore(tracing.StoreConfig{Dir: *dir, MaxBytes: 4 << 30})
	if err != nil {
		log.Fatal(err)
	}
	t := tracing.NewTracer(nil)
	t.SetStore(st)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: (&tracing.Receiver{Spans: t.Receive}).Handler()}
	go srv.Serve(ln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = srv.Shutdown(context.Background())
	s := st.Stats()
	_ = st.Close()
	fmt.Fprintf(os.Stderr, "receiver: %d spans in %d traces stored, %d bytes\n", s.Spans, s.Traces, s.Bytes)
}
