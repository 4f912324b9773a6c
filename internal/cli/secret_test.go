package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
)

const secretSpec = `name: shop
secrets:
  users-db:
    keys: [DB_PASSWORD]
  api-keys:
    keys: [partner-a, partner-b]
services:
  users:
    run: ./users
`

// The values the tests store; no output may ever contain them.
const (
	dbPassword = "s3cr3t-db-password"
	partnerB   = "partner-b-token-42"
)

// runStdin runs the command tree in process with stdin.
func runStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// TestSecretCommands sets, lists and removes values end to end on a temp
// state directory, with the identity in a temp folder too. It sets the
// environment, so it does not run in parallel.
func TestSecretCommands(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "nubo.yaml", secretSpec)
	t.Setenv("NUBO_AGE_IDENTITY", filepath.Join(t.TempDir(), "identity.txt"))
	for _, k := range []string{"DB_PASSWORD", "partner-a", "PARTNER_A", "partner-b", "PARTNER_B"} {
		t.Setenv(k, "")
	}
	var outputs []string
	run := func(stdin string, args ...string) result {
		t.Helper()
		r := runStdin(t, stdin, append(args, "-f", file)...)
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	expect := func(r result, code int, stdout, stderr string) {
		t.Helper()
		if r.code != code || !strings.Contains(r.stdout, stdout) || !strings.Contains(r.stderr, stderr) {
			t.Errorf("%s\nwant exit %d, %q on stdout, %q on stderr", r, code, stdout, stderr)
		}
	}

	r := run("", "secret", "list")
	expect(r, 0, "3 keys missing; nubo up stops until each has a value:\n  nubo secret set api-keys partner-a\n", "")
	matchRows(t, r.stdout, "api-keys partner-a missing", "api-keys partner-b missing", "users-db DB_PASSWORD missing")

	expect(run(dbPassword+"\n", "secret", "set", "users-db", "DB_PASSWORD"), 0, "set users-db DB_PASSWORD\n", "")
	expect(run("\n", "secret", "set", "api-keys", "partner-a"), 1, "", "empty value for api-keys partner-a: nothing stored")
	expect(run("x", "secret", "set", "usres-db", "DB_PASSWORD"), 0, "set usres-db DB_PASSWORD",
		`nubo: warning: secret "usres-db" is not declared in `+file+` (did you mean "users-db"?); storing it anyway`)
	expect(run("x\r\n", "secret", "set", "users-db", "DB_PASSWROD"), 0, "",
		`secret "users-db" declares no key "DB_PASSWROD" in `+file+` (keys: DB_PASSWORD) (did you mean "DB_PASSWORD"?)`)
	t.Setenv("PARTNER_B", partnerB)
	expect(run(partnerB, "secret", "set", "api-keys", "partner-b"), 0, "", "the environment or the secret's file also has partner-b, and nubo up takes it first")

	r = run("", "secret", "list")
	expect(r, 0, "1 key missing", "")
	matchRows(t, r.stdout,
		"api-keys partner-a missing", "api-keys partner-b stored, env or file wins", "users-db DB_PASSWORD stored",
		"users-db DB_PASSWROD stored, not declared", "usres-db DB_PASSWORD stored, not declared")

	// The store has the values, trimmed of one newline (and a CR).
	app, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := secrets.DefaultIdentityPath()
	store, err := secrets.OpenStore(app.StatePath(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PARTNER_B", "")
	app.Secrets["api-keys"].Keys = []string{"partner-b"}
	app.Secrets["users-db"].Keys = []string{"DB_PASSWORD", "DB_PASSWROD"}
	vals, err := secrets.Resolve(app, store, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][3]string{{"users-db", "DB_PASSWORD", dbPassword}, {"users-db", "DB_PASSWROD", "x"}, {"api-keys", "partner-b", partnerB}} {
		if v, _ := vals.Get(c[0], c[1]); v.Reveal() != c[2] {
			t.Errorf("stored %s %s is %q, want %q", c[0], c[1], v.Reveal(), c[2])
		}
	}

	expect(run("", "secret", "rm", "users-db", "DB_PASSWROD"), 0, "removed users-db DB_PASSWROD\n", "")
	expect(run("", "secret", "rm", "users-db", "DB_PASSWROD"), 1, "", `nubo: secret "users-db" key "DB_PASSWROD" is not in the store`)
	expect(run("", "secret", "rm", "usres-db"), 0, "removed usres-db\n", "")
	expect(run("", "secret", "rm", "nope"), 1, "", `secret "nope" is not in the store`)
	expect(run("", "secret", "rm"), 2, "", "accepts between 1 and 2 arg(s)")
	expect(run("v", "secret", "set", "users-db"), 2, "", "accepts 2 arg(s)")
	r = run("", "secret", "list")
	if strings.Contains(r.stdout, "not declared") {
		t.Errorf("removed keys still listed:\n%s", r.stdout)
	}

	// Status of an engine of this spec shows no value either.
	e := startTestEngine(t)
	run("", "status", "--addr", e.addr)
	run("", "status", "--addr", e.addr, "-o", "json")

	for _, out := range outputs {
		for _, v := range []string{dbPassword, partnerB} {
			if strings.Contains(out, v) {
				t.Errorf("output shows a secret value:\n%s", out)
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, ".nubo", "secrets.age"))
	if err != nil || bytes.Contains(data, []byte(dbPassword)) {
		t.Errorf("the store is not encrypted on disk (%v)", err)
	}
}

// matchRows checks that the table of nubo secret list has the rows, given
// with single spaces between columns.
func matchRows(t *testing.T, out string, rows ...string) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			break // the table ends at the first blank line
		}
		got = append(got, strings.Join(regexp.MustCompile(`\s{2,}`).Split(line, -1), " "))
	}
	want := append([]string{"SECRET KEY STATE"}, rows...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("secret list table:\n%s\nwant rows:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSecretSetBinary pipes a value into the built binary, as a user does,
// with the identity in a temp folder.
func TestSecretSetBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "nubo.yaml", secretSpec)
	env := append(os.Environ(), "NUBO_AGE_IDENTITY="+filepath.Join(t.TempDir(), "id", "identity.txt"), "DB_PASSWORD=")
	nubo := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(nuboBin, args...)
		cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	}
	if r := nubo(dbPassword+"\n", "secret", "set", "users-db", "DB_PASSWORD"); r.code != 0 || r.stdout != "set users-db DB_PASSWORD\n" || r.stderr != "" {
		t.Fatalf("secret set:\n%s", r)
	}
	r := nubo("", "secret", "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^users-db +DB_PASSWORD +stored$`).MatchString(r.stdout) || strings.Contains(r.stdout+r.stderr, dbPassword) {
		t.Errorf("secret list:\n%s", r)
	}
	if r := nubo("", "secret", "list", "-f", "missing.yaml"); r.code != 1 || !strings.Contains(r.stderr, "missing.yaml: no such file, needed to find its secrets store; pass --file FILE\n") {
		t.Errorf("secret list without a spec:\n%s", r)
	}
}
