package databases

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/nubo-dev/nubo/internal/spec"
)

// ErrNotInstalled is returned when a database's server is not installed.
var ErrNotInstalled = errors.New("not installed")

// Finder finds the servers' binaries. The zero value searches PATH and the
// usual package locations.
type Finder struct {
	// Dirs are folders searched before PATH, by database type ("postgres",
	// "redis"): local.databases of the spec.
	Dirs map[string]string
	// NoSystem skips PATH and the package locations, for tests of the
	// missing-binary path.
	NoSystem bool
}

// Binaries are the programs of one server, found together in one folder.
type Binaries struct {
	// Dir is the folder the server was found in.
	Dir string
	// Major is the server's major version ("15", "7").
	Major string
	// Full is what the server says its version is ("15.18", "7.0.15").
	Full string
}

// Path returns the path of program prog next to the server.
func (b Binaries) Path(prog string) string { return filepath.Join(b.Dir, prog) }

// server is the program that is the server of a database type.
func server(typ string) string {
	if typ == "redis" {
		return "redis-server"
	}
	return "postgres"
}

// installHint is the one command that installs the server of typ (version
// major if given) on this platform.
func installHint(typ, major string) string {
	if runtime.GOOS == "darwin" {
		if typ == "redis" {
			return "brew install redis"
		}
		if major == "" {
			major = "16"
		}
		return "brew install postgresql@" + major
	}
	if typ == "redis" {
		return "apt-get install -y redis-server"
	}
	if major != "" {
		return "apt-get install -y postgresql-" + major + " (or postgresql, Debian's default major)"
	}
	return "apt-get install -y postgresql"
}

// candidates lists the folders that may hold typ's server, in search order:
// Dirs, PATH, then the package locations (Debian's
// /usr/lib/postgresql/<major>/bin, the asked major first, then the newest;
// Homebrew's).
func (f Finder) candidates(typ, major string) []string {
	var dirs []string
	if d := f.Dirs[typ]; d != "" {
		dirs = append(dirs, d)
	}
	if f.NoSystem {
		return dirs
	}
	if p, err := exec.LookPath(server(typ)); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	if typ == "redis" {
		// valkey-server is a drop-in redis-server where Redis is not packaged.
		return append(dirs, "/usr/bin", "/usr/local/bin", "/opt/homebrew/bin")
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(debian, func(i, j int) bool { return versionOf(debian[i]) > versionOf(debian[j]) })
	if major != "" {
		dirs = append(dirs, "/usr/lib/postgresql/"+major+"/bin", "/opt/homebrew/opt/postgresql@"+major+"/bin", "/usr/local/opt/postgresql@"+major+"/bin")
	}
	dirs = append(dirs, debian...)
	return append(dirs, "/opt/homebrew/bin", "/usr/local/bin")
}

func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// FinderFor is the finder of app: local.databases first, resolved against
// the spec's folder.
func FinderFor(app *spec.App) Finder {
	f := Finder{Dirs: map[string]string{}}
	for typ, d := range map[string]string{"postgres": app.Local.Databases.Postgres, "redis": app.Local.Databases.Redis} {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(app.Dir, d)
		}
		f.Dirs[typ] = d
	}
	return f
}

// Find finds the server of typ. When major is given, a folder holding that
// major wins; if only another major is found, the error names both and how
// to install the one asked for.
func (f Finder) Find(typ, major string) (Binaries, error) {
	prog := server(typ)
	var other *Binaries
	seen := map[string]bool{}
	for _, dir := range f.candidates(typ, major) {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		b, ok := probe(dir, prog)
		if !ok && typ == "redis" {
			b, ok = probe(dir, "valkey-server")
		}
		if !ok {
			continue
		}
		if major == "" || b.Major == major {
			return b, nil
		}
		if other == nil {
			other = &b
		}
	}
	if other != nil {
		return Binaries{}, fmt.Errorf("%s %s is asked for but %s %s is installed (%s); install it: %s",
			prog, major, prog, other.Full, other.Dir, installHint(typ, major))
	}
	return Binaries{}, fmt.Errorf("%s is %w: %s", prog, ErrNotInstalled, installHint(typ, major))
}

var versionRE = regexp.MustCompile(`(?:\(PostgreSQL\) |v=)(\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// probe runs dir/prog --version and parses its answer.
func probe(dir, prog string) (Binaries, bool) {
	path := filepath.Join(dir, prog)
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		return Binaries{}, false
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return Binaries{}, false
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, false
	}
	full := strings.TrimSuffix(strings.Join([]string{m[1], m[2], m[3]}, "."), ".")
	full = strings.TrimSuffix(full, ".")
	b := Binaries{Dir: dir, Major: m[1], Full: full}
	if prog == "valkey-server" {
		// valkey speaks Redis 7's protocol and commands.
		b.Major = "7"
	}
	return b, true
}

// Client returns the path of a client program (psql, pg_dump, redis-cli)
// next to the server, else on PATH.
func (b Binaries) Client(prog string) (string, error) {
	if p := b.Path(prog); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath(prog); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is %w (next to the server in %s, or on PATH)", prog, ErrNotInstalled, b.Dir)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
