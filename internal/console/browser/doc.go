// Package browser holds the web console's tests in a real browser
// (headless Chromium driven by chromedp) against a real engine running a
// small system. It has no code of its own: it lives apart from
// internal/console so that its tests can import the engine, which imports
// the console.
package browser
