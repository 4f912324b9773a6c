package tracing

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// DefaultMaxBody bounds an OTLP request's body, after decompression too:
// the collector's default max_request_body_size is 20 MiB.
const DefaultMaxBody = 16 << 20

// Receiver serves OTLP/HTTP: POST /v1/traces, /v1/logs and /v1/metrics in
// protobuf or JSON, gzip-compressed or not, answering as the
// OpenTelemetry Collector's receiver does: 200 with an export response
// (partial success when something was rejected), 400 for a body that does
// not decode, 413 past the size bound, 415 for another content type, 405
// for another method.
type Receiver struct {
	// Spans takes the received spans; it must not block.
	Spans func([]Span)
	// Logs takes the received log records; nil answers 404 on /v1/logs.
	Logs func(plog.Logs) (rejected int, err error)
	// Metrics takes the received metrics (with the request's context);
	// nil answers 404 on /v1/metrics.
	Metrics func(context.Context, pmetric.Metrics) (rejected int, err error)
	// MaxBody bounds a request; default DefaultMaxBody.
	MaxBody int64
	Logger  *slog.Logger
}

// Handler routes the three signals.
func (rc *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", rc.traces)
	if rc.Logs != nil {
		mux.HandleFunc("/v1/logs", rc.logs)
	}
	if rc.Metrics != nil {
		mux.HandleFunc("/v1/metrics", rc.metrics)
	}
	return mux
}

const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

// request is what every signal reads first: the encoding and the body.
func (rc *Receiver) request(w http.ResponseWriter, r *http.Request) (ct string, body []byte, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, ctJSON, http.StatusMethodNotAllowed, "405 method not allowed, supported: [POST]")
		return "", nil, false
	}
	ct, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != ctProto && ct != ctJSON {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		fmt.Fprintf(w, "%q unsupported media type, supported: [%s, %s]", r.Header.Get("Content-Type"), ctJSON, ctProto)
		return "", nil, false
	}
	max := rc.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	var in io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(in)
		if err != nil {
			rc.tooLargeOr(w, ct, err, "gzip: "+err.Error())
			return "", nil, false
		}
		defer gz.Close()
		in = gz
	default:
		writeStatus(w, ct, http.StatusBadRequest, "unsupported Content-Encoding "+strconv.Quote(r.Header.Get("Content-Encoding"))+", supported: [gzip]")
		return "", nil, false
	}
	// The decompressed body is bounded as well: a small gzip body can
	// expand a thousandfold.
	body, err := io.ReadAll(io.LimitReader(in, max+1))
	if err == nil && int64(len(body)) > max {
		err = &http.MaxBytesError{Limit: max}
	}
	if err != nil {
		rc.tooLargeOr(w, ct, err, "reading the body: "+err.Error())
		return "", nil, false
	}
	return ct, body, true
}

func (rc *Receiver) tooLargeOr(w http.ResponseWriter, ct string, err error, msg string) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeStatus(w, ct, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit))
		return
	}
	writeStatus(w, ct, http.StatusBadRequest, msg)
}

// writeStatus answers an error as the collector does: a google.rpc.Status
// in the request's encoding.
func writeStatus(w http.ResponseWriter, ct string, code int, msg string) {
	st := &spb.Status{Code: grpcCode(code), Message: msg}
	var b []byte
	if ct == ctProto {
		b, _ = proto.Marshal(st)
	} else {
		ct = ctJSON
		b = []byte(`{"code":` + strconv.Itoa(int(st.Code)) + `,"message":` + strconv.Quote(msg) + `}`)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// grpcCode maps the HTTP status to the gRPC code the collector puts in
// its Status answers.
func grpcCode(code int) int32 {
	switch code {
	case http.StatusBadRequest:
		return 3 // InvalidArgument
	case http.StatusRequestEntityTooLarge:
		return 8 // ResourceExhausted
	case http.StatusServiceUnavailable:
		return 14 // Unavailable
	case http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return 12 // Unimplemented
	}
	return 2 // Unknown
}

// marshaler is an OTLP export response.
type marshaler interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

func writeResponse(w http.ResponseWriter, ct string, resp marshaler) {
	var b []byte
	var err error
	if ct == ctProto {
		b, err = resp.MarshalProto()
	} else {
		b, err = resp.MarshalJSON()
	}
	if err != nil {
		writeStatus(w, ct, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func unmarshal(ct string, body []byte, req interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}) error {
	if ct == ctProto {
		return req.UnmarshalProto(body)
	}
	return req.UnmarshalJSON(body)
}

func (rc *Receiver) traces(w http.ResponseWriter, r *http.Request) {
	ct, body, ok := rc.request(w, r)
	if !ok {
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := unmarshal(ct, body, &req); err != nil {
		writeStatus(w, ct, http.StatusBadRequest, "traces: "+err.Error())
		return
	}
	spans, rejected, why := FromTraces(req.Traces())
	if len(spans) > 0 {
		rc.Spans(spans)
	}
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(why)
	}
	writeResponse(w, ct, resp)
}

func (rc *Receiver) logs(w http.ResponseWriter, r *http.Request) {
	ct, body, ok := rc.request(w, r)
	if !ok {
		return
	}
	req := plogotlp.NewExportRequest()
	if err := unmarshal(ct, body, &req); err != nil {
		writeStatus(w, ct, http.StatusBadRequest, "logs: "+err.Error())
		return
	}
	rejected, err := rc.Logs(req.Logs())
	resp := plogotlp.NewExportResponse()
	if rejected > 0 || err != nil {
		resp.PartialSuccess().SetRejectedLogRecords(int64(rejected))
		if err != nil {
			resp.PartialSuccess().SetErrorMessage(err.Error())
		}
	}
	writeResponse(w, ct, resp)
}

func (rc *Receiver) metrics(w http.ResponseWriter, r *http.Request) {
	ct, body, ok := rc.request(w, r)
	if !ok {
		return
	}
	req := pmetricotlp.NewExportRequest()
	if err := unmarshal(ct, body, &req); err != nil {
		writeStatus(w, ct, http.StatusBadRequest, "metrics: "+err.Error())
		return
	}
	rejected, err := rc.Metrics(r.Context(), req.Metrics())
	resp := pmetricotlp.NewExportResponse()
	if rejected > 0 || err != nil {
		resp.PartialSuccess().SetRejectedDataPoints(int64(rejected))
		if err != nil {
			resp.PartialSuccess().SetErrorMessage(err.Error())
		}
	}
	writeResponse(w, ct, resp)
}

// compile-time check that the response types are what writeResponse
// takes.
var _ = []marshaler{ptraceotlp.NewExportResponse(), plogotlp.NewExportResponse(), pmetricotlp.NewExportResponse()}
