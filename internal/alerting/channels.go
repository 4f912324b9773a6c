package alerting

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nubo-dev/nubo/internal/spec"
)

// senderFor returns the function that sends a channel's notifications.
func senderFor(name string, c *spec.Channel, cfg Config) func(context.Context, *Notification) error {
	switch c.Type {
	case "webhook":
		return func(ctx context.Context, n *Notification) error {
			return postJSON(ctx, cfg.Client, c.URL, WebhookMessageFor(n))
		}
	case "slack":
		return func(ctx context.Context, n *Notification) error {
			return postJSON(ctx, cfg.Client, c.URL, slackMessageFor(n))
		}
	case "email":
		return func(ctx context.Context, n *Notification) error {
			return sendEmail(ctx, c, cfg.Hostname, n)
		}
	default: // log
		return func(_ context.Context, n *Notification) error {
			cfg.LogLine(fmt.Sprintf("[%s] %s", name, logText(n)))
			return nil
		}
	}
}

// WebhookMessage is Alertmanager's webhook payload, version 4: what a
// webhook channel POSTs as JSON.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// WebhookMessageFor builds the payload of n, as Alertmanager would for a
// route grouped by alertname.
func WebhookMessageFor(n *Notification) WebhookMessage {
	m := WebhookMessage{
		Version:           "4",
		GroupKey:          fmt.Sprintf("{}:{alertname=%q}", n.Group),
		Status:            string(n.Status),
		Receiver:          n.Receiver,
		GroupLabels:       map[string]string{AlertNameLabel: n.Group},
		CommonLabels:      commonLabels(n.Alerts, func(a NotifiedAlert) map[string]string { return a.Labels }),
		CommonAnnotations: commonLabels(n.Alerts, func(a NotifiedAlert) map[string]string { return a.Annotations }),
		ExternalURL:       n.ExternalURL,
		Alerts:            make([]WebhookAlert, 0, len(n.Alerts)),
	}
	for _, a := range n.Alerts {
		ann := a.Annotations
		if ann == nil {
			ann = map[string]string{}
		}
		m.Alerts = append(m.Alerts, WebhookAlert{
			Status: string(a.Status), Labels: a.Labels, Annotations: ann,
			StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(), GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		})
	}
	return m
}

// slackMessage is the JSON of a Slack incoming webhook, with one attachment
// colored by status, as Alertmanager's Slack notifier sends it.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string   `json:"color"`
	Title    string   `json:"title"`
	Text     string   `json:"text"`
	Fallback string   `json:"fallback"`
	MrkdwnIn []string `json:"mrkdwn_in"`
}

func slackMessageFor(n *Notification) slackMessage {
	color := "danger"
	if n.Status == StateResolved {
		color = "good"
	}
	subj := subject(n)
	return slackMessage{
		Text: subj,
		Attachments: []slackAttachment{{
			Color: color, Title: subj, Text: body(n), Fallback: subj, MrkdwnIn: []string{"text"},
		}},
	}
}

// maxErrorBody bounds how much of a failed answer goes into the error.
const maxErrorBody = 512

func postJSON(ctx context.Context, client *http.Client, url string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("post to %s: %w", redactURL(url), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nubo-alerting")
	resp, err := client.Do(req)
	if err != nil {
		// The URL may hold a secret (Slack's do): name the host only.
		return fmt.Errorf("post to %s: %w", redactURL(url), unwrapURLError(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post to %s: %s: %s", redactURL(url), resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// redactURL keeps a URL's scheme and host: Slack webhook paths are secrets.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "the channel's URL"
	}
	host, _, _ := strings.Cut(rest, "/")
	if _, h, ok := strings.Cut(host, "@"); ok {
		host = h
	}
	return scheme + "://" + host
}

// unwrapURLError drops the *url.Error wrapper, which repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// subject is "[FIRING:2] high_error_rate" or "[RESOLVED] high_error_rate".
func subject(n *Notification) string {
	if n.Status == StateResolved {
		return "[RESOLVED] " + n.Group
	}
	firing := 0
	for _, a := range n.Alerts {
		if a.Status == StateFiring {
			firing++
		}
	}
	s := fmt.Sprintf("[FIRING:%d] %s", firing, n.Group)
	if n.Escalation != "" {
		s += " (" + n.Escalation + ")"
	}
	return s
}

// body lists the alerts: status, labels, annotations and times.
func body(n *Notification) string {
	var b strings.Builder
	for i, a := range n.Alerts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s %s\n", strings.ToUpper(string(a.Status)), labelText(a.Labels))
		for _, k := range sortedKeys(a.Annotations) {
			fmt.Fprintf(&b, "  %s: %s\n", k, a.Annotations[k])
		}
		if a.Value != "" {
			fmt.Fprintf(&b, "  value: %s\n", a.Value)
		}
		fmt.Fprintf(&b, "  since: %s\n", a.StartsAt.UTC().Format(time.RFC3339))
		if !a.EndsAt.IsZero() {
			fmt.Fprintf(&b, "  resolved: %s\n", a.EndsAt.UTC().Format(time.RFC3339))
		}
		if a.GeneratorURL != "" {
			fmt.Fprintf(&b, "  source: %s\n", a.GeneratorURL)
		}
	}
	return b.String()
}

// logText is one line: the subject, then each alert's labels and summary.
func logText(n *Notification) string {
	parts := []string{subject(n)}
	for _, a := range n.Alerts {
		p := strings.ToLower(string(a.Status)) + " " + labelText(a.Labels)
		if s := a.Annotations["summary"]; s != "" {
			p += ": " + s
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// labelText writes labels as PromQL does, without alertname: {a="b", c="d"}.
func labelText(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		if k != AlertNameLabel {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// dialTimeout bounds connecting to an SMTP server.
const dialTimeout = 10 * time.Second

// sendEmail sends n through the channel's SMTP server: implicit TLS on port
// 465, STARTTLS whenever the server offers it, and PLAIN authentication when
// a username is set (net/smtp refuses it without TLS, except to localhost).
func sendEmail(ctx context.Context, c *spec.Channel, hostname string, n *Notification) error {
	s := c.SMTP
	port := s.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(port))
	from := s.From
	if from == "" {
		from = "nubo@" + hostname
	}
	msg, err := emailMessage(from, c.To, hostname, n)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: dialTimeout}
	var conn net.Conn
	if port == 465 {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: s.Host}}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cl, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer cl.Close()
	if err := cl.Hello(hostname); err != nil {
		return fmt.Errorf("smtp %s: hello: %w", addr, err)
	}
	if ok, _ := cl.Extension("STARTTLS"); ok && port != 465 {
		if err := cl.StartTLS(&tls.Config{ServerName: s.Host}); err != nil {
			return fmt.Errorf("smtp %s: starttls: %w", addr, err)
		}
	}
	if s.Username != "" {
		if ok, _ := cl.Extension("AUTH"); !ok {
			return fmt.Errorf("smtp %s: the server offers no authentication, but smtp.username is set", addr)
		}
		if err := cl.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", addr, err)
		}
	}
	if err := cl.Mail(from); err != nil {
		return fmt.Errorf("smtp %s: mail from %s: %w", addr, from, err)
	}
	for _, to := range c.To {
		if err := cl.Rcpt(to); err != nil {
			return fmt.Errorf("smtp %s: rcpt to %s: %w", addr, to, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: data: %w", addr, err)
	}
	return cl.Quit()
}

// emailMessage is an RFC 5322 message, its text quoted-printable.
func emailMessage(from string, to []string, hostname string, n *Notification) ([]byte, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject(n)))
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@"+hostname+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := body(n)
	if n.ExternalURL != "" {
		text += "\nConsole: " + n.ExternalURL + "\n"
	}
	if _, err := qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
