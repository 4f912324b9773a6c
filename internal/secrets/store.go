// Package secrets finds the values of the secrets a spec declares and keeps the
// local encrypted store behind `nubo secret set|list|rm`.
//
// Values come, per secret and first match first, from the environment of
// `nubo up`, a dotenv file, or the store: one age-encrypted file in the state
// directory. The age identity that decrypts it lives outside the state
// directory (the user's config folder), so a copied or committed state
// directory holds only ciphertext. Values are never logged: they travel as
// Value, whose String is "[redacted]".
package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"filippo.io/age"
)

// Value is a secret value. Printing it with fmt or slog shows "[redacted]";
// Reveal returns the value where it must go (a process's environment).
type Value struct{ v string }

// NewValue wraps a secret value.
func NewValue(s string) Value { return Value{s} }

// Reveal returns the value itself.
func (v Value) Reveal() string { return v.v }

// String keeps the value out of logs and errors.
func (v Value) String() string { return "[redacted]" }

// GoString keeps the value out of %#v.
func (v Value) GoString() string { return "secrets.Value([redacted])" }

// LogValue keeps the value out of slog.
func (v Value) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON keeps the value out of JSON output.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// StoreFile is the store's file name inside the state directory.
const StoreFile = storeFile

// storeFile is the store's file name inside the state directory.
const storeFile = "secrets.age"

// maxStoreSize bounds the decrypted store; secrets are small.
const maxStoreSize = 16 << 20

// Store is the encrypted local store: secret name -> key -> value.
// It is safe for concurrent use.
type Store struct {
	path     string
	identity *age.X25519Identity

	mu sync.Mutex // guards writes to the file
}

// OpenStore opens the store in stateDir with the identity at identityPath,
// creating the identity (mode 0600) on first use.
func OpenStore(stateDir, identityPath string) (*Store, error) {
	id, err := loadOrCreateIdentity(identityPath)
	if err != nil {
		return nil, err
	}
	return &Store{path: filepath.Join(stateDir, storeFile), identity: id}, nil
}

// DefaultIdentityPath is $NUBO_AGE_IDENTITY, or identity.txt in the user's
// config folder (~/.config/nubo on Linux).
func DefaultIdentityPath() (string, error) {
	if p := os.Getenv("NUBO_AGE_IDENTITY"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config folder for the secrets identity: %w (set NUBO_AGE_IDENTITY)", err)
	}
	return filepath.Join(dir, "nubo", "identity.txt"), nil
}

func loadOrCreateIdentity(path string) (*age.X25519Identity, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("generate secrets identity: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create secrets identity: %w", err)
		}
		content := "# nubo secrets identity: decrypts every state dir's secrets.age. Keep it private.\n" + id.String() + "\n"
		if err := writeFileAtomic(path, []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("create secrets identity: %w", err)
		}
		return id, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets identity: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read secrets identity %s: %w", path, err)
	}
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("read secrets identity %s: no X25519 identity in it", path)
}

// load decrypts the whole store; a missing file is an empty store.
func (s *Store) load() (map[string]map[string]string, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open secrets store: %w", err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, s.identity)
	if err != nil {
		return nil, fmt.Errorf("decrypt secrets store %s: %w (was it made with another identity?)", s.path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxStoreSize+1))
	if err != nil {
		return nil, fmt.Errorf("decrypt secrets store %s: %w", s.path, err)
	}
	if len(plain) > maxStoreSize {
		return nil, fmt.Errorf("secrets store %s is larger than %d bytes", s.path, maxStoreSize)
	}
	m := map[string]map[string]string{}
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("secrets store %s is corrupt: %w", s.path, err)
	}
	return m, nil
}

func (s *Store) save(m map[string]map[string]string) error {
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, s.identity.Recipient())
	if err != nil {
		return fmt.Errorf("encrypt secrets store: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("encrypt secrets store: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypt secrets store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("write secrets store: %w", err)
	}
	return writeFileAtomic(s.path, buf.Bytes(), 0o600)
}

// Set stores value under secret name and key.
func (s *Store) Set(name, key string, value Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	if m[name] == nil {
		m[name] = map[string]string{}
	}
	m[name][key] = value.Reveal()
	return s.save(m)
}

// Get returns the stored value of secret name's key, and whether there is
// one.
func (s *Store) Get(name, key string) (Value, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return Value{}, false, err
	}
	v, ok := m[name][key]
	return NewValue(v), ok, nil
}

// Delete removes one key, or the whole secret when key is "". It reports
// whether anything was removed.
func (s *Store) Delete(name, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return false, err
	}
	keys, ok := m[name]
	if !ok {
		return false, nil
	}
	if key == "" {
		delete(m, name)
	} else {
		if _, ok := keys[key]; !ok {
			return false, nil
		}
		delete(keys, key)
		if len(keys) == 0 {
			delete(m, name)
		}
	}
	return true, s.save(m)
}

// List returns the stored secret names with their keys, sorted; never values.
func (s *Store) List() (map[string][]string, error) {
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(m))
	for name, keys := range m {
		for k := range keys {
			out[name] = append(out[name], k)
		}
		sort.Strings(out[name])
	}
	return out, nil
}

// all returns the decrypted store for the resolver.
func (s *Store) all() (map[string]map[string]string, error) { return s.load() }

// writeFileAtomic writes through a temporary file and a rename, so a crash
// leaves the old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
