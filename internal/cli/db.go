package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/databases"
	"github.com/nubo-dev/nubo/internal/engine"
	"github.com/nubo-dev/nubo/internal/mesh/localca"
	"github.com/spf13/cobra"
)

// dbTimeout bounds a backup or a restore: a dump of a large database takes
// minutes, not the seconds of other requests.
const dbTimeout = 30 * time.Minute

const dbLong = `Db works with the databases of the running engine: list them, take a backup
now, list the backups, restore one, or open a shell (psql, redis-cli) on one.
Backups go to the database's backup.destination (or its folder under the
state directory), encrypted with age when security.encryption.atRest is on.
No command prints a password. See docs/databases.md.`

func newDBCmd(std stdio, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "List, back up, restore and open a shell on the running databases",
		Long:  dbLong,
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDBListCmd(std, g), newDBBackupCmd(std, g), newDBBackupsCmd(std, g), newDBRestoreCmd(std, g), newDBShellCmd(std, g))
	return cmd
}

func newDBListCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the databases: type, version, state, port, last backup",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var dbs []apitype.Database
			raw, err := newEngineClient(t).getJSON(cmd.Context(), "/admin/v1/databases", &dbs)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := std.out.Write(raw)
				return err
			}
			if len(dbs) == 0 {
				_, err := fmt.Fprintln(std.out, "no databases")
				return err
			}
			writeDatabases(std.out, dbs, time.Now())
			return nil
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

func newDBBackupCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:     "backup NAME",
		Short:   "Back up a database now",
		Example: "  nubo db backup shop-db",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var b apitype.Backup
			if err := newEngineClient(t).dbPost(cmd.Context(), "/admin/v1/databases/"+url.PathEscape(args[0])+"/backups", &b); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "backed up %s to %s (%s)\n", args[0], b.Name, sizeText(b.Size))
			return err
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

func newDBBackupsCmd(std stdio, g *globals) *cobra.Command {
	var output, addr string
	cmd := &cobra.Command{
		Use:   "backups NAME",
		Short: "List a database's backups, oldest first",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var bs []apitype.Backup
			raw, err := newEngineClient(t).getJSON(cmd.Context(), "/admin/v1/databases/"+url.PathEscape(args[0])+"/backups", &bs)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := std.out.Write(raw)
				return err
			}
			if len(bs) == 0 {
				_, err := fmt.Fprintf(std.out, "no backups of %s\n", args[0])
				return err
			}
			tw := tabwriter.NewWriter(std.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "BACKUP\tTIME\tSIZE\tENCRYPTED")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Name, b.Time.Local().Format(time.DateTime), sizeText(b.Size), yesNo(b.Encrypted))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &output)
	addrFlag(cmd, &addr)
	return cmd
}

func newDBRestoreCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore NAME [BACKUP]",
		Short: "Replace a database's data with a backup's (the newest by default)",
		Long: `Restore replaces every row (or key) of the database NAME with those of BACKUP,
the newest backup when none is named (nubo db backups NAME lists them). What
was written since is lost, and connected clients are disconnected. It asks
before it starts unless --yes is given; without a terminal to ask on, --yes
is needed.`,
		Example: "  nubo db restore shop-db\n  nubo db restore shop-db shop-db-20261207T031500.000Z.pgdump --yes",
		Args:    usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, backup := args[0], ""
			if len(args) == 2 {
				backup = args[1]
			}
			if !yes {
				what := "the newest backup"
				if backup != "" {
					what = backup
				}
				ok, err := confirm(std, fmt.Sprintf("replace every row of %s with those of %s? [y/N] ", name, what))
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("restore of %s: not confirmed; nothing changed", name)
				}
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			path := "/admin/v1/databases/" + url.PathEscape(name) + "/restore"
			if backup != "" {
				path += "?backup=" + url.QueryEscape(backup)
			}
			var b apitype.Backup
			if err := newEngineClient(t).dbPost(cmd.Context(), path, &b); err != nil {
				return err
			}
			_, err = fmt.Fprintf(std.out, "restored %s from %s\n", name, b.Name)
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "restore without asking")
	addrFlag(cmd, &addr)
	return cmd
}

// confirm asks question on stderr and reads the answer from stdin, which
// must be a terminal: a script must say --yes.
func confirm(std stdio, question string) (bool, error) {
	if _, ok := terminal(std.in); !ok {
		return false, usageErrorf("stdin is not a terminal to ask on: pass --yes to restore")
	}
	fmt.Fprint(std.err, question)
	line, err := bufio.NewReader(std.in).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func newDBShellCmd(std stdio, g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "shell NAME",
		Short: "Open psql or redis-cli on a database, as its superuser",
		Long: `Shell runs psql (PostgreSQL) or redis-cli (Redis) on the database NAME of the
running engine, connected as its superuser. The password is read from the
spec's secrets store and handed to the client in its environment (PGPASSWORD,
REDISCLI_AUTH), never on its command line or the screen.`,
		Example: "  nubo db shell shop-db",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			var dbs []apitype.Database
			if _, err := newEngineClient(t).getJSON(cmd.Context(), "/admin/v1/databases", &dbs); err != nil {
				return err
			}
			var db *apitype.Database
			for i := range dbs {
				if dbs[i].Name == name {
					db = &dbs[i]
				}
			}
			if db == nil {
				return fmt.Errorf("no database %q in the running engine", name)
			}
			if db.State != databases.StateReady {
				return fmt.Errorf("database %q is %s: %s", name, db.State, db.Message)
			}
			app, store, err := openSecrets(g)
			if err != nil {
				return err
			}
			pw, ok, err := store.Get(databases.StoreSecret, databases.AdminStoreKey(name))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("database %q: no superuser password in the secrets store of %s", name, g.file)
			}
			major, _, _ := strings.Cut(db.Version, ".")
			bins, err := databases.FinderFor(app).Find(db.Type, major)
			if err != nil {
				return fmt.Errorf("database %q: %w", name, err)
			}
			var c *exec.Cmd
			port := strconv.Itoa(db.Port)
			user := databases.AdminUser(db.Type)
			if db.Type == "redis" {
				cli, err := bins.Client("redis-cli")
				if err != nil {
					return fmt.Errorf("database %q: %w: apt-get install -y redis-tools", name, err)
				}
				cargs := []string{"-h", "127.0.0.1", "-p", port, "--user", user, "--no-auth-warning"}
				if db.TLS {
					cargs = append(cargs, "--tls", "--cacert", localca.CertPath(engine.CADir(app)))
				}
				c = exec.CommandContext(cmd.Context(), cli, cargs...)
				c.Env = append(os.Environ(), "REDISCLI_AUTH="+pw.Reveal())
			} else {
				psql, err := bins.Client("psql")
				if err != nil {
					return fmt.Errorf("database %q: %w: apt-get install -y postgresql-client", name, err)
				}
				c = exec.CommandContext(cmd.Context(), psql, "-h", "127.0.0.1", "-p", port, "-U", user, "-d", "app")
				c.Env = append(os.Environ(), "PGPASSWORD="+pw.Reveal())
				if db.TLS {
					c.Env = append(c.Env, "PGSSLMODE=verify-full", "PGSSLROOTCERT="+localca.CertPath(engine.CADir(app)))
				}
			}
			c.Stdin, c.Stdout, c.Stderr = std.in, std.out, std.err
			return c.Run()
		},
	}
	addrFlag(cmd, &addr)
	return cmd
}

// dbPost sends a POST whose answer is a JSON document, with the long
// timeout of backups and restores.
func (c *engineClient) dbPost(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(v); err != nil {
		return fmt.Errorf("the server at %s does not answer as a nubo engine: POST %s: %w", c.target.addr, path, err)
	}
	return nil
}

// sizeText is a size in bytes for people: 512 B, 3.2 MiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
