package browser_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// chromium finds Debian's Chromium, or skips the test when it is not
// installed; under CI=true it fails instead (scripts/install-test-deps
// installs it).
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/install-test-deps installs it): CI must test the console in a real browser")
	}
	t.Skip("chromium is not installed: cannot test the console in a browser")
	return ""
}

// browser is one headless Chromium for a test, with its screenshots.
type browser struct {
	t   testing.TB
	ctx context.Context
	dir string // screenshots
	// noShots skips the screenshot of each page opened (benchmarks).
	noShots bool
	base    string // the console's base URL
}

// newBrowser starts Chromium with a new empty profile. The flags turn off
// what reaches out to the network (without them, Chromium's background
// connections crowd the loopback ports and connections are refused).
func newBrowser(t testing.TB, base string) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in CI containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, with no timeout: one would stop
	// the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Screenshots go under the test's temp dir, or where
	// $NUBO_SCREENSHOTS says, to keep them after the test.
	dir := os.Getenv("NUBO_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "screenshots")
	}
	b := &browser{t: t, ctx: ctx, dir: dir, base: base}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots of the console's pages: %s", b.dir)
		}
	})
	return b
}

// run runs actions with a bound, failing the test with what.
func (b *browser) run(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// pageLoad is how long a page took, in milliseconds from navigation: to
// the load event, and to the page's content drawn (app.js marks it).
type pageLoad struct {
	Load, Ready float64
}

// open loads a page of the console afresh (a new document, not a change
// of fragment, so that the load is measured), waits until it has drawn
// its content, and saves a screenshot.
func (b *browser) open(page string) pageLoad {
	b.t.Helper()
	url := fmt.Sprintf("%s/?load=%d#/%s", b.base, time.Now().UnixNano(), page)
	b.run("open "+page, 30*time.Second,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`html[data-ready]`)),
	)
	var pl pageLoad
	if err := b.eval(`({Load: performance.getEntriesByType("navigation")[0].loadEventEnd, Ready: Number(document.documentElement.dataset.ready)})`, &pl); err != nil {
		b.t.Fatalf("page load of %s: %v", page, err)
	}
	if !b.noShots {
		b.shot(strings.SplitN(page, "?", 2)[0])
	}
	return pl
}

// shot saves a screenshot of the whole page.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	_ = os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644)
}

// text returns the text of the first element sel matches, "" when none.
func (b *browser) text(sel string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel)))
	return s
}

// eval evaluates a JavaScript expression into out, through JSON.
func (b *browser) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(s), out)
}

// waitFor polls cond until it holds or d passes: a wait for the page, not
// a timed assertion. A screenshot keeps what the page showed at the end.
func (b *browser) waitFor(what string, d time.Duration, cond func() error) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	nubotest.WaitFor(b.t, d, func() error {
		err := cond()
		if err != nil && time.Now().After(deadline) {
			b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			return fmt.Errorf("%s: %w", what, err)
		}
		return err
	})
}

// has is cond for an element that matches sel.
func (b *browser) has(sel string) func() error {
	return func() error {
		var n int
		if err := b.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no element matches " + sel)
		}
		return nil
	}
}

// click clicks the first element sel matches.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel, 10*time.Second, chromedp.Click(chromedp.CSS(sel)))
}

// clickJS clicks an element from script (for one that may be re-drawn
// between finding and clicking it).
func clickJS(sel string) chromedp.Action[chromedp.Void] {
	return script(fmt.Sprintf(`document.querySelector(%q)?.click()`, sel))
}

// setValue sets a select's value and fires its change event, as a user's
// choice does.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	return script(fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q; el.dispatchEvent(new Event("change")); })()`, sel, value))
}

// script runs JavaScript for its effect.
func script(js string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`(`+js+`, true)`)(ctx, t)
		return chromedp.Void{}, err
	}
}

// navigate loads a URL.
func navigate(url string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(url) }

// evalAsync evaluates an expression that gives a promise, into out through
// JSON.
func (b *browser) evalAsync(expr string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+expr+`).then(v => JSON.stringify(v))`, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(s), out)
}

// colorScheme makes the page see prefers-color-scheme: scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return chromedp.Void{}, err
	}
}
