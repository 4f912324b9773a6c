// Package brokertest starts NATS servers for tests: nubo's embedded one, and
// a nats-server process from the system's package (Debian's nats-server), to
// test nubo against an external server as users run it.
package brokertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nubo-dev/nubo/internal/nubotest"
)

// ExternalServer is a nats-server process started for one test.
type ExternalServer struct {
	// URL is the client URL, nats://127.0.0.1:PORT.
	URL string
	// Version is what `nats-server --version` says, e.g. "v2.9.10".
	Version string
}

// StartExternal starts `nats-server -js` on a free loopback port with its
// store in a temporary directory, and stops it when the test ends. The
// test is skipped, with the reason, when no nats-server is installed.
func StartExternal(t testing.TB) *ExternalServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		// Under CI a missing server is a missing install step, not a
		// reason to pass.
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is not installed (scripts/install-test-deps installs it): CI must test an external NATS server")
		}
		t.Skip("nats-server is not installed (apt-get install -y nats-server): cannot test an external NATS server")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("nats-server --version: %v", err)
	}
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server:"))
	dir := t.TempDir()
	portsDir := filepath.Join(dir, "ports")
	if err := os.Mkdir(portsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", filepath.Join(dir, "store"), "--ports_file_dir", portsDir)
	if os.Getenv("NUBO_TEST_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	portsFile := filepath.Join(portsDir, "nats-server_"+strconv.Itoa(cmd.Process.Pid)+".ports")
	var url string
	nubotest.WaitFor(t, 10*time.Second, func() error {
		data, err := os.ReadFile(portsFile)
		if err != nil {
			return err
		}
		var ports struct {
			Nats []string `json:"nats"`
		}
		if err := json.Unmarshal(data, &ports); err != nil {
			return fmt.Errorf("%s: %w", portsFile, err)
		}
		if len(ports.Nats) == 0 {
			return errors.New("no client port in " + portsFile)
		}
		url = ports.Nats[0]
		return nil
	})
	return &ExternalServer{URL: url, Version: version}
}
