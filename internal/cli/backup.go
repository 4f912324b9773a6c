package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	agelib "filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/nubo-dev/nubo/internal/audit"
	"github.com/nubo-dev/nubo/internal/backup"
	"github.com/nubo-dev/nubo/internal/engine"
)

const backupLong = `Backup takes one archive of the running system: every stream of the broker
(queues, topics, the event bus, the event store, KV buckets) through
JetStream's own snapshots, the metrics as a TSDB snapshot, every database
through its own dump (pg_dump, a Redis snapshot), and the local CA, the
secrets store (still encrypted) and the audit trail as they are on disk.

The archive is a zstd-compressed tar whose manifest lists every file with its
size and SHA-256, and the snapshot time: everything acknowledged before it is
inside. With --recipient (an age public key, age1...) or --passphrase-file
the archive is encrypted with age as it is written: it never lands on disk in
clear. The CLI reads the archive back as it arrives and checks it against its
manifest before it keeps the file.

The secrets store's age identity ($NUBO_AGE_IDENTITY, ~/.config/nubo/
identity.txt) is not in the archive: keep it, and the archive's key, apart.`

func newBackupCmd(std stdio, g *globals) *cobra.Command {
	var addr, out, passFile string
	var recipients []string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take one archive of the running system (streams, metrics, databases, CA, secrets)",
		Long:  backupLong,
		Example: `  nubo backup --out shop.nubo-backup
  nubo backup --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  nubo backup --passphrase-file ~/.config/nubo/backup-pass`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(recipients) > 0 && passFile != "" {
				return usageErrorf("--recipient and --passphrase-file: give one")
			}
			rcpts, err := backupRecipients(recipients, passFile)
			if err != nil {
				return err
			}
			t, err := findEngine(g, addr)
			if err != nil {
				return err
			}
			return takeBackup(cmd.Context(), std, newEngineClient(t), out, rcpts)
		},
	}
	addrFlag(cmd, &addr)
	cmd.Flags().StringVarP(&out, "out", "o", "", "the archive's file (default SYSTEM-TIME.nubo-backup[.age] here)")
	cmd.Flags().StringArrayVar(&recipients, "recipient", nil, "encrypt to this age recipient (age1...); repeatable")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "encrypt with the passphrase in this file's first line (age scrypt)")
	return cmd
}

// backupRecipients are the age recipients the archive is encrypted to;
// none leaves it in clear.
func backupRecipients(keys []string, passFile string) ([]agelib.Recipient, error) {
	var out []agelib.Recipient
	for _, k := range keys {
		r, err := agelib.ParseX25519Recipient(strings.TrimSpace(k))
		if err != nil {
			return nil, usageErrorf("--recipient %q: not an age recipient (age1...): %v", k, err)
		}
		out = append(out, r)
	}
	if passFile != "" {
		pass, err := readPassphrase(passFile)
		if err != nil {
			return nil, err
		}
		r, err := agelib.NewScryptRecipient(pass)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// readPassphrase reads the first line of file.
func readPassphrase(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("--passphrase-file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--passphrase-file %s: %w", file, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("--passphrase-file %s: the first line is empty", file)
	}
	return line, nil
}

// takeBackup streams the engine's archive into out (through age when
// there are recipients), checking it against its manifest as it arrives;
// the file appears under its name only once the archive is whole.
func takeBackup(ctx context.Context, std stdio, c *engineClient, out string, rcpts []agelib.Recipient) error {
	resp, err := c.do(ctx, http.MethodPost, "/admin/v1/backup")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != engine.BackupContentType {
		return fmt.Errorf("the engine at %s answered %q, not a backup", c.target.addr, ct)
	}
	if out == "" {
		out = defaultBackupName(resp.Header.Get("Content-Disposition"), len(rcpts) > 0)
	}
	part := out + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(part)
		}
	}()
	var w io.WriteCloser = nopCloser{f}
	if len(rcpts) > 0 {
		if w, err = agelib.Encrypt(f, rcpts...); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	// The archive is checked as it is written: a second reader on a pipe.
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	var m backup.Manifest
	go func() {
		var err error
		m, err = backup.Verify(pr)
		_, _ = io.Copy(io.Discard, pr)
		checked <- err
	}()
	n, err := io.Copy(io.MultiWriter(w, pw), resp.Body)
	pw.CloseWithError(err)
	verr := <-checked
	if err != nil {
		return fmt.Errorf("backup: the archive was cut short after %d bytes (the engine's output says why): %w", n, err)
	}
	if verr != nil {
		return fmt.Errorf("backup: the archive does not check: %w", verr)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(part, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	keep = true
	files := 0
	for _, p := range m.Parts {
		files += len(p.Files)
	}
	enc := ""
	if len(rcpts) > 0 {
		enc = ", encrypted with age"
	}
	_, err = fmt.Fprintf(std.out, "backup of %s as of %s: %d parts, %d files, %d bytes%s -> %s\n",
		m.System, m.Time.Format(time.RFC3339), len(m.Parts), files, n, enc, out)
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// defaultBackupName is SYSTEM-TIME.nubo-backup, from the engine's
// Content-Disposition.
func defaultBackupName(disposition string, encrypted bool) string {
	system := "nubo"
	if _, after, ok := strings.Cut(disposition, `filename="`); ok {
		if name, _, ok := strings.Cut(after, ".nubo-backup"); ok && name != "" && !strings.ContainsAny(name, `/\`) {
			system = name
		}
	}
	name := system + "-" + time.Now().UTC().Format("20060102T150405Z") + ".nubo-backup"
	if encrypted {
		name += ".age"
	}
	return name
}

const restoreLong = `Restore puts an archive of nubo backup back into a stopped state directory
(--state, else the spec's local.stateDir); the next nubo up runs from it.
Every file is checked against the archive's manifest before anything is
replaced. The broker's streams are loaded by the embedded server's restore
when it next starts, the databases' dumps into the new clusters they create,
the metrics are a TSDB the store opens as it is.

Restore refuses while an engine runs on the state directory, and refuses to
replace data already there unless --yes is given; then what it replaces is
moved aside into a replaced-TIME folder of the state directory, never deleted. An encrypted archive needs
--identity (an age identity file) or --passphrase-file.`

func newRestoreCmd(std stdio, g *globals) *cobra.Command {
	var identity, passFile string
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Put a backup back into a stopped state directory",
		Long:  restoreLong,
		Example: `  nubo restore shop-20261207T190000Z.nubo-backup --state /srv/shop-state
  nubo restore shop.nubo-backup.age --identity ~/backup-key.txt --yes`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.state
			if dir == "" {
				app, err := loadSpecFor(g.file, "find the state directory to restore into", false)
				if err != nil {
					return fmt.Errorf("%w (or pass --state DIR)", err)
				}
				dir = app.StatePath()
			}
			dir, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			return restoreBackup(std, args[0], dir, identity, passFile, yes)
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "decrypt with the age identities in this file")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "decrypt with the passphrase in this file's first line")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "replace the data already in the state directory")
	return cmd
}

func restoreBackup(std stdio, file, dir, identity, passFile string, yes bool) (err error) {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	in, err := decrypted(f, file, identity, passFile)
	if err != nil {
		return err
	}
	release, err := engine.HoldStateDir(dir, "nubo restore")
	if err != nil {
		var le *engine.LockedError
		if errors.As(err, &le) {
			return fmt.Errorf("restore into %s: an engine is running on it (pid %d): stop it with nubo down first", dir, le.Holder.PID)
		}
		return fmt.Errorf("restore: %w", err)
	}
	defer release()
	m, err := backup.Restore(in, dir, yes)
	detail := fmt.Sprintf("backup of %s as of %s, %d parts", m.System, m.Time.Format(time.RFC3339Nano), len(m.Parts))
	if _, aerr := audit.Open(dir).Append(audit.Record{Actor: audit.Actor("cli"), Action: "restore", Target: file, Detail: detail}, err); aerr != nil {
		fmt.Fprintf(std.err, "nubo: warning: the audit trail was not written: %v\n", aerr)
	}
	if err != nil {
		return err
	}
	if m.Replaced != "" {
		fmt.Fprintf(std.out, "what was there is in %s (remove it when the restored system runs)\n", m.Replaced)
	}
	_, err = fmt.Fprintf(std.out, "restored the %s into %s; the next nubo up runs from it\n", detail, dir)
	return err
}

// decrypted is the archive's content: in itself, or through age when it
// is encrypted.
func decrypted(f *os.File, file, identity, passFile string) (io.Reader, error) {
	br := bufio.NewReader(f)
	head, _ := br.Peek(len("age-encryption.org/"))
	if !bytes.Equal(head, []byte("age-encryption.org/")) {
		if identity != "" || passFile != "" {
			return nil, fmt.Errorf("restore: %s is not encrypted: --identity and --passphrase-file are for an age-encrypted archive", file)
		}
		return br, nil
	}
	var ids []agelib.Identity
	switch {
	case identity != "":
		idf, err := os.Open(identity)
		if err != nil {
			return nil, fmt.Errorf("restore: --identity: %w", err)
		}
		defer idf.Close()
		if ids, err = agelib.ParseIdentities(idf); err != nil {
			return nil, fmt.Errorf("restore: --identity %s: %w", identity, err)
		}
	case passFile != "":
		pass, err := readPassphrase(passFile)
		if err != nil {
			return nil, err
		}
		id, err := agelib.NewScryptIdentity(pass)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	default:
		return nil, fmt.Errorf("restore: %s is encrypted with age: give --identity FILE or --passphrase-file FILE", file)
	}
	r, err := agelib.Decrypt(br, ids...)
	if err != nil {
		return nil, fmt.Errorf("restore: decrypt %s: %w", file, err)
	}
	return r, nil
}
