package databases

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs is the unprivileged user PostgreSQL runs as when nubo runs as root:
// postgres and initdb refuse to run as root (a superuser process must not
// be reachable through SQL), and CI runs as root. Debian's package creates
// the postgres user; without it, nobody.
type runAs struct {
	cred *syscall.Credential // nil: run as nubo's own user
	name string
}

// lookupRunAs returns who runs PostgreSQL: nubo's own user, or, as root,
// postgres (else nobody).
func lookupRunAs() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, name: name}, nil
	}
	return runAs{}, fmt.Errorf("nubo runs as root, and PostgreSQL refuses to: no postgres or nobody user to run it as")
}

// own gives dir and everything under it to the run-as user.
func (r runAs) own(dir string) error {
	if r.cred == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
			return fmt.Errorf("give %s to user %s: %w", p, r.name, err)
		}
		return nil
	})
}

// checkReach checks that the run-as user can reach dir: every folder above
// it must let others through (x), or PostgreSQL fails later with a less
// clear message. nubo does not change the modes of the user's folders.
func (r runAs) checkReach(dir string) error {
	if r.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		reach := fi.Mode().Perm()&0o001 != 0 ||
			(ok && st.Uid == r.cred.Uid && fi.Mode().Perm()&0o100 != 0) ||
			(ok && st.Gid == r.cred.Gid && fi.Mode().Perm()&0o010 != 0)
		if !reach {
			return fmt.Errorf("nubo runs as root, so PostgreSQL runs as user %s, which cannot reach %s (mode %04o): chmod o+x %s, or run nubo as another user",
				r.name, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// addMode adds the permission bits bits to dir's mode.
func addMode(dir string, bits os.FileMode) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&bits == bits {
		return nil
	}
	if err := os.Chmod(dir, fi.Mode().Perm()|bits); err != nil {
		return fmt.Errorf("let the database server through %s: %w", dir, err)
	}
	return nil
}
