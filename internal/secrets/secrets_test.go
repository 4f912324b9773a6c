package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubo-dev/nubo/internal/spec"
)

func openTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenStore(filepath.Join(dir, "state"), filepath.Join(dir, "config", "identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestStoreRoundTripEncrypted(t *testing.T) {
	s, dir := openTestStore(t)
	if err := s.Set("db", "PASSWORD", NewValue("hunter2-very-secret")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("db", "USER", NewValue("app")); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "state", storeFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("hunter2")) {
		t.Fatal("the store holds the value in plain text")
	}
	fi, _ := os.Stat(filepath.Join(dir, "state", storeFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store mode = %v, want 0600", fi.Mode().Perm())
	}
	// A second Store with the same identity reads it back.
	s2, err := OpenStore(filepath.Join(dir, "state"), filepath.Join(dir, "config", "identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := s2.List()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(list) != "map[db:[PASSWORD USER]]" {
		t.Errorf("List = %v", list)
	}
	all, _ := s2.all()
	if all["db"]["PASSWORD"] != "hunter2-very-secret" {
		t.Error("value not read back")
	}
	if ok, err := s2.Delete("db", "PASSWORD"); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, _ := s2.Delete("db", "PASSWORD"); ok {
		t.Error("deleting twice reports a removal")
	}
	if ok, _ := s2.Delete("db", ""); !ok {
		t.Error("deleting the whole secret failed")
	}
	if list, _ := s2.List(); len(list) != 0 {
		t.Errorf("store not empty: %v", list)
	}
}

func TestStoreWrongIdentity(t *testing.T) {
	s, dir := openTestStore(t)
	if err := s.Set("a", "b", NewValue("c")); err != nil {
		t.Fatal(err)
	}
	other, err := OpenStore(filepath.Join(dir, "state"), filepath.Join(dir, "other-identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.List(); err == nil || !strings.Contains(err.Error(), "another identity") {
		t.Errorf("want a decryption error naming the identity, got %v", err)
	}
}

func TestValueNeverPrinted(t *testing.T) {
	v := NewValue("s3cr3t")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "v", v)
	for _, out := range []string{fmt.Sprint(v), fmt.Sprintf("%v %s %+v %#v", v, v, v, v), logs.String()} {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("value printed: %s", out)
		}
	}
	if v.Reveal() != "s3cr3t" {
		t.Error("Reveal lost the value")
	}
}

func loadApp(t *testing.T, dir, yaml string) *spec.App {
	t.Helper()
	path := filepath.Join(dir, "nubo.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := spec.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func TestResolveOrder(t *testing.T) {
	s, dir := openTestStore(t)
	app := loadApp(t, dir, `
name: a
secrets:
  db:
    keys: [PASSWORD, USER, HOST, partner-a]
    from: {env: true, file: db.env}
  nofile:
    keys: [TOKEN]
    from: {env: false}
`)
	os.WriteFile(filepath.Join(dir, "db.env"), []byte("# comment\nexport USER='file-user'\nPASSWORD=\"file \\\"pw\\\"\"\nHOST=db.local # trailing\n"), 0o600)
	s.Set("db", "HOST", NewValue("store-host"))
	s.Set("nofile", "TOKEN", NewValue("store-token"))
	env := map[string]string{"PASSWORD": "env-pw", "TOKEN": "env-token", "PARTNER_A": "env-partner"}
	vals, err := Resolve(app, s, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]string{
		{"db", "PASSWORD"}:  "env-pw",      // environment first
		{"db", "USER"}:      "file-user",   // then the dotenv file
		{"db", "HOST"}:      "db.local",    // the file wins over the store
		{"db", "partner-a"}: "env-partner", // read as PARTNER_A
		{"nofile", "TOKEN"}: "store-token", // env off: the store
	}
	for k, w := range want {
		v, ok := vals.Get(k[0], k[1])
		if !ok || v.Reveal() != w {
			t.Errorf("%s.%s = %q, want %q", k[0], k[1], v.Reveal(), w)
		}
	}
}

func TestResolveMissingNamesAll(t *testing.T) {
	s, dir := openTestStore(t)
	app := loadApp(t, dir, "name: a\nsecrets:\n  db: {keys: [PASSWORD]}\n  api: {keys: [KEY1, KEY2]}\n")
	_, err := Resolve(app, s, func(string) string { return "" })
	var me *MissingError
	if !errors.As(err, &me) || len(me.Missing) != 3 {
		t.Fatalf("want 3 missing keys, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{`secret "db": key "PASSWORD"`, `secret "api": key "KEY2"`, "nubo secret set api KEY1", "the local store"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestDotenvErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.env")
	os.WriteFile(path, []byte("GOOD=1\nPASSWORD='unterminated-secret-value\n"), 0o600)
	_, err := readDotenv(path)
	if err == nil || !strings.Contains(err.Error(), "x.env:2: unterminated quote in the value of PASSWORD") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "unterminated-secret-value") {
		t.Error("the error shows the value")
	}
}

// TestDotenvDevZero points a secret's dotenv file at /dev/zero: it must be
// refused, with the spec's position, instead of read until memory runs
// out.
func TestDotenvDevZero(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	s, dir := openTestStore(t)
	app := loadApp(t, dir, "name: a\nsecrets:\n  db:\n    keys: [PASSWORD]\n    from: {file: /dev/zero}\n")
	_, err := Resolve(app, s, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "nubo.yaml:5:") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want the spec's position and a refusal", err)
	}
}
