package nubotest_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/sdk/nubotest"
)

// TestTwoShopsInParallel runs examples/shop twice at once: each copy has
// its own ports and state, answers through its gateway and its ingress,
// and takes an event into its own queue.
func TestTwoShopsInParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs examples/shop twice")
	}
	var mu sync.Mutex
	consoles := map[string]bool{}
	for i := range 2 {
		t.Run(fmt.Sprint("copy", i), func(t *testing.T) {
			t.Parallel()
			sys := nubotest.Up(t, "../../examples/shop/nubo.yaml")
			st := sys.Status()
			mu.Lock()
			if consoles[st.Console] || consoles[st.StateDir] {
				t.Errorf("a port or the state directory is shared: %s %s", st.Console, st.StateDir)
			}
			consoles[st.Console], consoles[st.StateDir] = true, true
			mu.Unlock()

			resp, err := http.Get(sys.Gateway("dev") + "/products")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("gateway dev /products: %d %s", resp.StatusCode, body)
			}
			resp, err = sys.Ingress().Get("http://shop.localhost/products")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("ingress shop.localhost/products: %d", resp.StatusCode)
			}
			resp, err = http.Get(sys.URL("service:catalog") + "/products")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 503 { // the canary injects 1% 503s
				t.Errorf("service:catalog /products: %d", resp.StatusCode)
			}
			id := sys.Publish("queue:loyalty-dlq", "com.shop.test", map[string]any{"copy": i})
			got := sys.WaitForEvent("loyalty-dlq", func(d apitype.Delivery) bool { return d.Event.ID() == id })
			if !strings.Contains(string(got.Event.Data()), fmt.Sprintf(`"copy":%d`, i)) {
				t.Errorf("the event of copy %d: %s", i, got.Event.Data())
			}
			sys.WaitForLog("catalog", regexp.MustCompile(`.`))
		})
	}
}

// failRecorder is a testing.TB whose Fatal ends only the goroutine it runs
// in and keeps the message, to test what Up does with a system that fails.
type failRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *failRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *failRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// TestFailingSystemFailsTheTest: a service whose build fails makes Up fail
// the test, with the system's output in the message.
func TestFailingSystemFailsTheTest(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(file, []byte("name: broken\nservices:\n  api: {run: sleep 600, build: 'echo compiling api; exit 3'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &failRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nubotest.Up(rec, file)
	}()
	<-done
	if !strings.Contains(rec.msg, "exit code 3") || !strings.Contains(rec.msg, "api-build | compiling api") {
		t.Errorf("Up's failure does not carry the reason and the output: %q", rec.msg)
	}
}
