package secrets

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/readlimit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// Values holds resolved secrets: name -> key -> value.
type Values map[string]map[string]Value

// Get returns one value.
func (v Values) Get(name, key string) (Value, bool) {
	val, ok := v[name][key]
	return val, ok
}

// MissingError lists every declared key that no source had.
type MissingError struct {
	Missing []Missing
}

// Missing is one secret key without a value, with the sources tried.
type Missing struct {
	Secret, Key string
	Tried       []string
}

func (e *MissingError) Error() string {
	var b strings.Builder
	for i, m := range e.Missing {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "secret %q: key %q has no value (looked in %s); set it with: nubo secret set %s %s",
			m.Secret, m.Key, strings.Join(m.Tried, ", "), m.Secret, m.Key)
	}
	return b.String()
}

// Resolve finds a value for every key of every secret the spec declares,
// first match first: the environment (when from.env), the dotenv file (when
// from.file), then the store (which may be nil). getenv is os.Getenv outside
// tests. When keys are missing the error is a *MissingError naming all of them.
func Resolve(app *spec.App, store *Store, getenv func(string) string) (Values, error) {
	var stored map[string]map[string]string
	if store != nil && len(app.Secrets) > 0 {
		var err error
		if stored, err = store.all(); err != nil {
			return nil, err
		}
	}
	out := Values{}
	var missing []Missing
	names := make([]string, 0, len(app.Secrets))
	for name := range app.Secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sec := app.Secrets[name]
		var file map[string]string
		if sec.From.File != "" {
			path := sec.From.File
			if !filepath.IsAbs(path) {
				path = filepath.Join(app.Dir, path)
			}
			var err error
			if file, err = readDotenv(path); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("%s: secret %q: from.file: %w", app.Pos("secrets."+name+".from.file"), name, err)
			}
		}
		out[name] = map[string]Value{}
		for _, key := range sec.Keys {
			var tried []string
			if sec.From.Env == nil || *sec.From.Env {
				tried = append(tried, "the environment ("+envName(key)+")")
				if v := lookupEnv(getenv, key); v != "" {
					out[name][key] = NewValue(v)
					continue
				}
			}
			if sec.From.File != "" {
				tried = append(tried, sec.From.File)
				if v, ok := file[key]; ok {
					out[name][key] = NewValue(v)
					continue
				}
			}
			if store != nil {
				tried = append(tried, "the local store")
				if v, ok := stored[name][key]; ok {
					out[name][key] = NewValue(v)
					continue
				}
			}
			missing = append(missing, Missing{Secret: name, Key: key, Tried: tried})
		}
	}
	if len(missing) > 0 {
		return nil, &MissingError{Missing: missing}
	}
	return out, nil
}

// envName is the variable a key is read from: the key itself when it is a
// valid name, else upper-cased with '-' and '.' as '_' (partner-a: PARTNER_A).
func envName(key string) string {
	valid := key != ""
	for i, r := range key {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			valid = false
			break
		}
	}
	if valid {
		return key
	}
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(key))
}

func lookupEnv(getenv func(string) string, key string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return getenv(envName(key))
}

// maxDotenvSize bounds a dotenv file.
const maxDotenvSize = 1 << 20

// readDotenv reads KEY=VALUE lines: `#` comments, an optional `export `,
// single quotes taken literally, double quotes with \n, \" and \\ escapes.
// Errors name the file and line but never the value.
func readDotenv(path string) (map[string]string, error) {
	data, err := readlimit.File(path, maxDotenvSize)
	if err != nil {
		return nil, err // names the path, never the content
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxDotenvSize)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		key, val, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE", path, line)
		}
		val = strings.TrimSpace(val)
		switch {
		case len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'':
			val = val[1 : len(val)-1]
		case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
			val = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(val[1 : len(val)-1])
		case strings.HasPrefix(val, "'") || strings.HasPrefix(val, `"`):
			return nil, fmt.Errorf("%s:%d: unterminated quote in the value of %s", path, line, key)
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
