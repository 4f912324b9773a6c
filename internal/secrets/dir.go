package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nubo-dev/nubo/internal/readlimit"
	"github.com/nubo-dev/nubo/internal/spec"
)

// maxValueSize bounds one secret value read from a file, as Kubernetes
// bounds a Secret.
const maxValueSize = 1 << 20

// FromDir reads secrets mounted as Kubernetes does: one folder per secret
// under dir, one file per key (NUBO_SECRETS_DIR of `nubo serve`). A secret
// whose folder is absent is not this component's and is left out; a
// mounted secret that lacks a declared key is an error naming it.
func FromDir(app *spec.App, dir string) (Values, error) {
	out := Values{}
	if dir == "" {
		return out, nil
	}
	var missing []Missing
	for _, name := range sortedNames(app.Secrets) {
		folder := filepath.Join(dir, name)
		if _, err := os.Stat(folder); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("secret %q: %w", name, err)
		}
		for _, key := range app.Secrets[name].Keys {
			// Kubernetes bounds a Secret to 1 MiB; so does nubo a value,
			// and refuses a device or pipe in place of a file.
			data, err := readlimit.File(filepath.Join(folder, key), maxValueSize)
			if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, Missing{Secret: name, Key: key, Tried: []string{filepath.Join(folder, key)}})
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("secret %q: key %q: %w", name, key, err)
			}
			if out[name] == nil {
				out[name] = map[string]Value{}
			}
			// Files written by hand often end in a newline; Kubernetes'
			// own do not. A value never ends in one.
			out[name][key] = NewValue(strings.TrimRight(string(data), "\r\n"))
		}
	}
	if len(missing) > 0 {
		return nil, &MissingError{Missing: missing}
	}
	return out, nil
}

func sortedNames(m map[string]*spec.Secret) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
