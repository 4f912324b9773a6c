package alerting

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
	"github.com/nubo-dev/nubo/internal/spec"
)

// gateListener is a listener whose connections are closed as soon as they
// are accepted until up is set: to a client, a receiver not started yet.
type gateListener struct {
	net.Listener
	up atomic.Bool
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.up.Load() {
			return c, err
		}
		c.Close()
	}
}

// lateReceiver is a webhook receiver that is down until started.
type lateReceiver struct {
	ln    *gateListener
	mu    sync.Mutex
	posts []WebhookMessage
}

func newLateReceiver(t *testing.T) *lateReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &lateReceiver{ln: &gateListener{Listener: ln}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts = append(r.posts, m)
		r.mu.Unlock()
	})}
	go srv.Serve(r.ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *lateReceiver) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *lateReceiver) waitPosts(t *testing.T, n int) []WebhookMessage {
	t.Helper()
	var got []WebhookMessage
	nubotest.WaitFor(t, 30*time.Second, func() error {
		r.mu.Lock()
		got = slices.Clone(r.posts)
		r.mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("%d notifications received, want %d", len(got), n)
		}
		return nil
	})
	return got
}

// summary writes a message as "status: alert=status, ..." by the alerts'
// instance labels, for comparing.
func summary(m WebhookMessage) string {
	var parts []string
	for _, a := range m.Alerts {
		parts = append(parts, a.Labels["instance"]+"="+a.Status)
		if (a.Status == "resolved") == a.EndsAt.IsZero() {
			parts = append(parts, "(endsAt "+a.EndsAt.String()+")")
		}
	}
	slices.Sort(parts)
	return m.Status + ": " + strings.Join(parts, ", ")
}

// TestLateReceiver: a webhook receiver that comes up long after the alert
// fired still gets the group's state as it is by then, with the alerts
// resolved while it was down, as Alertmanager delivers them; a notification
// is never dropped after a number of attempts.
func TestLateReceiver(t *testing.T) {
	t.Parallel()
	now := time.Now()
	a, b := firing("api_down", now, "instance", "a"), firing("api_down", now, "instance", "b")
	tests := []struct {
		name string
		// whileDown are the alerts of each evaluation before the receiver
		// is up.
		whileDown [][]Alert
		// want are the notifications received once it is up, then after
		// one more evaluation with after.
		want  []string
		after []Alert
	}{
		{
			name:      "one alert resolves while the receiver is down",
			whileDown: [][]Alert{{a, b}, {a}},
			want:      []string{"firing: a=firing, b=resolved", "resolved: a=resolved"},
			after:     []Alert{},
		},
		{
			name:      "the whole group resolves while the receiver is down",
			whileDown: [][]Alert{{a, b}, {}},
			want:      []string{"resolved: a=resolved, b=resolved"},
		},
		{
			name:      "the group fires again while the receiver is down",
			whileDown: [][]Alert{{a}, {}, {b}},
			want:      []string{"firing: a=resolved, b=firing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recv := newLateReceiver(t)
			n := startNotifier(t, Config{
				Channels: map[string]*spec.Channel{"oncall": {Type: "webhook", URL: recv.url()}},
				Routes:   map[string]Route{"api_down": {Channels: []string{"oncall"}}},
				// About 6 attempts per group interval.
				Retry:         Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond},
				GroupInterval: 200 * time.Millisecond,
			})
			for _, alerts := range tt.whileDown {
				n.Update(time.Now(), alerts)
			}
			// Five times more failures than one group interval allows: the
			// deliveries went on through several, where they used to stop
			// after 5 attempts.
			nubotest.WaitFor(t, 30*time.Second, func() error {
				if ch := n.Status(time.Now()).Channels[0]; ch.Failed < 30 {
					return fmt.Errorf("%d failed attempts, want 30", ch.Failed)
				}
				return nil
			})
			recv.ln.up.Store(true)
			first := len(tt.want)
			if tt.after != nil {
				first--
			}
			got := recv.waitPosts(t, first)
			if tt.after != nil {
				n.Update(time.Now(), tt.after)
				got = recv.waitPosts(t, len(tt.want))
			}
			var sums []string
			for _, m := range got {
				sums = append(sums, summary(m))
			}
			if !slices.Equal(sums, tt.want) {
				t.Errorf("received:\n%s\nwant:\n%s", strings.Join(sums, "\n"), strings.Join(tt.want, "\n"))
			}
			// Nothing is left to send: every delivery succeeded.
			nubotest.WaitFor(t, 10*time.Second, func() error {
				if ch := n.Status(time.Now()).Channels[0]; ch.Queued != 0 || ch.Sent != len(tt.want) {
					return fmt.Errorf("channel %+v: want %d sent, none queued", ch, len(tt.want))
				}
				return nil
			})
		})
	}
}
