package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/nubo-dev/nubo/internal/secrets"
	"github.com/nubo-dev/nubo/internal/spec"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// maxSecretSize bounds a value read from stdin.
const maxSecretSize = 1 << 20

const secretLong = `Secret manages the local encrypted store of secret values, the last source
nubo up looks in for a key the spec declares (after the environment and the
secret's dotenv file). The store is secrets.age in the spec's state
directory, encrypted with age to an identity kept outside it
($NUBO_AGE_IDENTITY, default ~/.config/nubo/identity.txt on Linux), so the
state directory holds only ciphertext.

These commands need no running engine, and none of them ever prints a value.`

func newSecretCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove local secret values",
		Long:  secretLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSecretSetCmd(std, g), newSecretListCmd(std, g), newSecretRmCmd(std, g))
	return cmd
}

// openSecrets loads the spec and opens its state directory's store.
func openSecrets(g *globals) (*spec.App, *secrets.Store, error) {
	app, err := loadSpecFor(g.file, "find its secrets store", false)
	if app != nil {
		g.stateDirOf(app)
	}
	if err != nil {
		return nil, nil, err
	}
	id, err := secrets.DefaultIdentityPath()
	if err != nil {
		return nil, nil, err
	}
	store, err := secrets.OpenStore(app.StatePath(), id)
	if err != nil {
		return nil, nil, err
	}
	return app, store, nil
}

func newSecretSetCmd(std stdio, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME KEY",
		Short: "Store a secret's key, its value read from stdin",
		Long: `Set stores the value of KEY of the secret NAME, read from stdin: typed without
echo on a terminal, else piped in, with one trailing newline trimmed. An
empty value is refused. A name or key the spec does not declare is stored
anyway, with a warning.`,
		Example: `  nubo secret set users-db DB_PASSWORD
  printf %s "$TOKEN" | nubo secret set api-keys partner-a`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, key := args[0], args[1]
			if name == "" || key == "" {
				return usageErrorf("secret name and key must not be empty")
			}
			app, store, err := openSecrets(g)
			if err != nil {
				return err
			}
			value, err := readSecretValue(std, name, key)
			if err != nil {
				return err
			}
			if w := undeclared(app, name, key); w != "" {
				fmt.Fprintf(std.err, "nubo: warning: %s; storing it anyway\n", w)
			}
			err = store.Set(name, key, secrets.NewValue(value))
			auditCLI(app, "secret-set", name+" "+key, "", err)
			if err != nil {
				return fmt.Errorf("set secret %q key %q: %w", name, key, err)
			}
			if shadowed(app, name, key) {
				fmt.Fprintf(std.err, "nubo: note: the environment or the secret's file also has %s, and nubo up takes it first\n", key)
			}
			_, err = fmt.Fprintf(std.out, "set %s %s\n", name, key)
			return err
		},
	}
}

// readSecretValue reads the value from stdin: without echo on a terminal,
// else everything piped in, less one trailing newline.
func readSecretValue(std stdio, name, key string) (string, error) {
	var value string
	if fd, ok := terminal(std.in); ok {
		fmt.Fprintf(std.err, "value of %s %s (not shown): ", name, key)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(std.err)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		value = string(b)
	} else {
		b, err := io.ReadAll(io.LimitReader(std.in, maxSecretSize+1))
		if err != nil {
			return "", fmt.Errorf("read the value from stdin: %w", err)
		}
		if len(b) > maxSecretSize {
			return "", fmt.Errorf("the value on stdin is larger than %d bytes", maxSecretSize)
		}
		value = string(b)
		if v, ok := strings.CutSuffix(value, "\n"); ok {
			value = strings.TrimSuffix(v, "\r")
		}
	}
	if value == "" {
		return "", fmt.Errorf("empty value for %s %s: nothing stored (the value is read from stdin)", name, key)
	}
	return value, nil
}

// undeclared says how name and key differ from the spec's secrets, or "".
func undeclared(app *spec.App, name, key string) string {
	sec, ok := app.Secrets[name]
	if !ok {
		msg := fmt.Sprintf("secret %q is not declared in %s", name, app.File)
		names := make([]string, 0, len(app.Secrets))
		for n := range app.Secrets {
			names = append(names, n)
		}
		return msg + didYouMean(name, names)
	}
	if !slices.Contains(sec.Keys, key) {
		return fmt.Sprintf("secret %q declares no key %q in %s (keys: %s)%s", name, key, app.File, strings.Join(sec.Keys, ", "), didYouMean(key, sec.Keys))
	}
	return ""
}

// shadowed reports whether a declared key already has a value from the
// environment or the secret's dotenv file, which nubo up prefers.
func shadowed(app *spec.App, name, key string) bool {
	sec, ok := app.Secrets[name]
	if !ok || !slices.Contains(sec.Keys, key) {
		return false
	}
	only := *app
	only.Secrets = map[string]*spec.Secret{name: {Keys: []string{key}, From: sec.From}}
	_, err := secrets.Resolve(&only, nil, os.Getenv)
	return err == nil
}

func newSecretListCmd(std stdio, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List secret names and keys, and the declared keys without a value",
		Long: `List prints every secret key the spec declares or the store holds, never a
value, with its state:

  stored                    in the store
  from env or file          the environment or the secret's dotenv file has it
  stored, env or file wins  both; nubo up takes the environment or file
  missing                   declared, and no source has it: nubo up would stop
  stored, not declared      in the store, but the spec does not declare it`,
		Aliases: []string{"ls"},
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, store, err := openSecrets(g)
			if err != nil {
				return err
			}
			rows, err := secretRows(app, store)
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				_, err := fmt.Fprintf(std.out, "no secrets: %s declares none and the store holds none\n", app.File)
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SECRET\tKEY\tSTATE")
			var missing []secretRow
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.key, r.state)
				if r.state == stateMissing {
					missing = append(missing, r)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(missing) > 0 {
				fmt.Fprintf(std.out, "\n%s missing; nubo up stops until each has a value:\n", plural(len(missing), "key"))
				for _, r := range missing {
					fmt.Fprintf(std.out, "  nubo secret set %s %s\n", r.name, r.key)
				}
			}
			return nil
		},
	}
}

// Secret key states of nubo secret list.
const (
	stateStored     = "stored"
	stateOutside    = "from env or file"
	stateShadowed   = "stored, env or file wins"
	stateMissing    = "missing"
	stateUndeclared = "stored, not declared"
)

type secretRow struct {
	name, key, state string
}

// secretRows lists the declared keys, in the spec's order of keys and by
// secret name, then the stored keys the spec does not declare.
func secretRows(app *spec.App, store *secrets.Store) ([]secretRow, error) {
	stored, err := store.List()
	if err != nil {
		return nil, err
	}
	inStore := func(name, key string) bool { return slices.Contains(stored[name], key) }
	// Resolving with and without the store tells which keys no source has
	// and which the environment or a dotenv file already gives.
	missing, err := missingKeys(app, store)
	if err != nil {
		return nil, err
	}
	noOutside, err := missingKeys(app, nil)
	if err != nil {
		return nil, err
	}
	var rows []secretRow
	names := make([]string, 0, len(app.Secrets))
	for n := range app.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, key := range app.Secrets[name].Keys {
			r := secretRow{name: name, key: key}
			outside := !noOutside[[2]string{name, key}]
			switch {
			case missing[[2]string{name, key}]:
				r.state = stateMissing
			case outside && inStore(name, key):
				r.state = stateShadowed
			case outside:
				r.state = stateOutside
			default:
				r.state = stateStored
			}
			rows = append(rows, r)
		}
	}
	storedNames := make([]string, 0, len(stored))
	for n := range stored {
		storedNames = append(storedNames, n)
	}
	sort.Strings(storedNames)
	for _, name := range storedNames {
		for _, key := range stored[name] {
			if sec, ok := app.Secrets[name]; !ok || !slices.Contains(sec.Keys, key) {
				rows = append(rows, secretRow{name: name, key: key, state: stateUndeclared})
			}
		}
	}
	return rows, nil
}

// missingKeys is the set of declared (secret, key) pairs that no source has,
// looking in the store only when it is not nil.
func missingKeys(app *spec.App, store *secrets.Store) (map[[2]string]bool, error) {
	out := map[[2]string]bool{}
	_, err := secrets.Resolve(app, store, os.Getenv)
	var me *secrets.MissingError
	switch {
	case errors.As(err, &me):
		for _, m := range me.Missing {
			out[[2]string{m.Secret, m.Key}] = true
		}
	case err != nil:
		return nil, err
	}
	return out, nil
}

func newSecretRmCmd(std stdio, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME [KEY]",
		Short:   "Remove a secret's key, or the whole secret, from the store",
		Aliases: []string{"remove"},
		Args:    usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, key, what := args[0], "", fmt.Sprintf("secret %q", args[0])
			if len(args) == 2 {
				key = args[1]
				what = fmt.Sprintf("secret %q key %q", name, key)
			}
			app, store, err := openSecrets(g)
			if err != nil {
				return err
			}
			removed, err := store.Delete(name, key)
			if err == nil && !removed {
				auditCLI(app, "secret-rm", strings.TrimSpace(name+" "+key), "not in the store", errors.New("not in the store"))
			} else {
				auditCLI(app, "secret-rm", strings.TrimSpace(name+" "+key), "", err)
			}
			if err != nil {
				return fmt.Errorf("remove %s: %w", what, err)
			}
			if !removed {
				return fmt.Errorf("%s is not in the store (nubo secret list shows what is)", what)
			}
			_, err = fmt.Fprintf(std.out, "removed %s\n", strings.TrimSpace(name+" "+key))
			return err
		},
	}
}

// didYouMean is ` (did you mean "x"?)` when a candidate is a likely typo of
// s, else "".
func didYouMean(s string, candidates []string) string {
	if best := spec.Suggest(s, candidates); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
