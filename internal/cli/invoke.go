package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

const invokeLong = `Invoke invokes a function of the running engine once, with a CloudEvent of
type --type (default nubo.invoke) whose data is --data, and waits for its
answer. The function's result goes to stdout; its status, how long it ran and
whether the invocation waited for a cold start go to stderr.

--data takes JSON, @FILE for a file's content, or @- for stdin. A function
that answers with an error status exits 1, its answer still printed. With
--async the engine invokes it in the background, with the function's retries
and dead-letter queue, as a trigger would; nubo prints the event's id.

With --output json, stdout holds one document: the function, status,
contentType, result (JSON when the answer is JSON, else a string),
durationMs, coldStart, initDurationMs, instance, and error when it failed.`

// invokeAnswer is the --output json document of nubo invoke.
type invokeAnswer struct {
	Function       string          `json:"function"`
	Status         int             `json:"status"`
	ContentType    string          `json:"contentType,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	DurationMs     float64         `json:"durationMs"`
	ColdStart      bool            `json:"coldStart"`
	InitDurationMs float64         `json:"initDurationMs,omitempty"`
	Instance       int             `json:"instance,omitempty"`
	ID             string          `json:"id,omitempty"`
	Error          string          `json:"error,omitempty"`
}

func newInvokeCmd(std stdio, g *globals) *cobra.Command {
	var (
		addr, output, data, typ, source, subject string
		async                                    bool
	)
	cmd := &cobra.Command{
		Use:               "invoke FUNCTION",
		ValidArgsFunction: completeNames(g, functionNames),
		Short:             "Invoke a function of the running engine",
		Long:              invokeLong,
		Example: `  nubo invoke send-welcome --type com.shop.user.created --data '{"email":"ada@shop.localhost"}'
  nubo invoke order-processor --data @order.json -o json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			body, contentType, err := readData(data, std.in)
			if err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			name := args[0]
			req := invokeRequest{function: name, typ: typ, source: source, subject: subject, body: body, contentType: contentType, async: async}
			ans, err := newEngineClient(t).invoke(cmd.Context(), req)
			if err != nil {
				return err
			}
			return writeInvoke(std, output, ans)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the event's data: JSON, @FILE or @- for stdin")
	cmd.Flags().StringVar(&typ, "type", "nubo.invoke", "the event's type")
	cmd.Flags().StringVar(&source, "source", "nubo/cli", "the event's source")
	cmd.Flags().StringVar(&subject, "subject", "", "the event's subject")
	cmd.Flags().BoolVar(&async, "async", false, "invoke in the background, with retries and dead letter, as a trigger does")
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

// readData reads --data: inline JSON, or a file's (or stdin's) content,
// typed application/json when it is JSON.
func readData(data string, stdin io.Reader) ([]byte, string, error) {
	switch {
	case data == "":
		return nil, "", nil
	case data == "@-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read --data from stdin: %w", err)
		}
		return b, dataType(b), nil
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, "", usageErrorf("--data %s: %v", data, err)
		}
		return b, dataType(b), nil
	}
	if !json.Valid([]byte(data)) {
		return nil, "", usageErrorf("--data %q is not JSON (quote strings: '\"text\"'; or pass a file with @FILE)", data)
	}
	return []byte(data), "application/json", nil
}

func dataType(b []byte) string {
	if json.Valid(b) {
		return "application/json"
	}
	return "application/octet-stream"
}

type invokeRequest struct {
	function, typ, source, subject string
	body                           []byte
	contentType                    string
	async                          bool
}

// invoke POSTs a binary-mode CloudEvent to the function's invoke route and
// returns its answer. A function's error status is an answer (with Error
// set); nubo's own errors are errors.
func (c *engineClient) invoke(ctx context.Context, r invokeRequest) (invokeAnswer, error) {
	path := "/v1/functions/" + url.PathEscape(r.function) + "/invoke"
	if r.async {
		path += "?async=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.target.addr+path, bytes.NewReader(r.body))
	if err != nil {
		return invokeAnswer{}, fmt.Errorf("engine at %s: %w", c.target.addr, err)
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", uuid.NewString())
	h.Set("Ce-Type", r.typ)
	h.Set("Ce-Source", r.source)
	if r.subject != "" {
		h.Set("Ce-Subject", r.subject)
	}
	if r.contentType != "" {
		h.Set("Content-Type", r.contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return invokeAnswer{}, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return invokeAnswer{}, errNotRunning{c.target}
		}
		return invokeAnswer{}, fmt.Errorf("ask the engine at %s: %w", c.target.addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return invokeAnswer{}, fmt.Errorf("read the answer of the engine at %s: %w", c.target.addr, err)
	}
	ans := invokeAnswer{Function: r.function, Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		ColdStart: resp.Header.Get("Nubo-Cold-Start") == "true", Error: resp.Header.Get("Nubo-Error")}
	ans.DurationMs, _ = strconv.ParseFloat(resp.Header.Get("Nubo-Duration-Ms"), 64)
	ans.InitDurationMs, _ = strconv.ParseFloat(resp.Header.Get("Nubo-Init-Duration-Ms"), 64)
	ans.Instance, _ = strconv.Atoi(resp.Header.Get("Nubo-Instance"))
	if r.async && resp.StatusCode == http.StatusAccepted {
		var doc struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &doc)
		ans.ID = doc.ID
		return ans, nil
	}
	// An answer that did not come from the function (no instance ran it)
	// is nubo's own error document.
	if resp.StatusCode/100 != 2 && ans.Instance == 0 {
		var doc struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &doc) != nil || doc.Error == "" {
			return invokeAnswer{}, fmt.Errorf("the server at %s (%s) does not answer as a nubo engine: POST %s: %s", c.target.addr, c.target.source, path, resp.Status)
		}
		return invokeAnswer{}, &apiError{code: resp.StatusCode, msg: doc.Error}
	}
	ans.Result = resultJSON(body)
	return ans, nil
}

// resultJSON keeps a JSON answer as it is and makes a string of any other.
func resultJSON(body []byte) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	if json.Valid(body) {
		return json.RawMessage(bytes.TrimSpace(body))
	}
	s, _ := json.Marshal(string(body))
	return s
}

// writeInvoke prints an invocation's answer: the result on stdout and a
// summary on stderr, or one JSON document. A function's error exits 1.
func writeInvoke(std stdio, output string, ans invokeAnswer) error {
	failed := ans.Status/100 != 2
	if output == "json" {
		data, err := json.MarshalIndent(ans, "", "  ")
		if err != nil {
			return err
		}
		if _, err := std.out.Write(append(data, '\n')); err != nil {
			return err
		}
		if failed {
			return errReported
		}
		return nil
	}
	if ans.ID != "" {
		fmt.Fprintf(std.err, "%s: invoking in the background, event %s\n", ans.Function, ans.ID)
		_, err := fmt.Fprintln(std.out, ans.ID)
		return err
	}
	if len(ans.Result) > 0 {
		out := []byte(ans.Result)
		var s string
		if json.Unmarshal(out, &s) == nil && !strings.HasPrefix(ans.ContentType, "application/json") {
			out = []byte(s) // text stays text
		}
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		if _, err := std.out.Write(out); err != nil {
			return err
		}
	}
	start := "warm"
	if ans.ColdStart {
		start = fmt.Sprintf("cold start %s", ms(ans.InitDurationMs))
	}
	fmt.Fprintf(std.err, "%s: %d %s in %s, %s (instance %d)\n", ans.Function, ans.Status, http.StatusText(ans.Status), ms(ans.DurationMs), start, ans.Instance)
	if failed {
		if ans.Error != "" {
			fmt.Fprintf(std.err, "nubo: %s\n", ans.Error)
		}
		return errReported
	}
	return nil
}

// ms writes milliseconds as 0.42ms, 12.3ms or 1.25s.
func ms(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + "s"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}
