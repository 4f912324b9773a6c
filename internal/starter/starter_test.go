package starter

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	files, err := Files(Data{Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
		if strings.Contains(string(f.Data), "{{") {
			t.Errorf("%s: template action left in the output", f.Path)
		}
	}
	want := []string{".gitignore", "go.mod", "greet/main.go", "hello/main.go", "nubo.yaml"}
	if !slices.Equal(paths, want) {
		t.Fatalf("files %v, want %v", paths, want)
	}
	content := func(p string) string {
		i := slices.Index(paths, p)
		return string(files[i].Data)
	}
	if !strings.Contains(content("nubo.yaml"), "\nname: demo\n") {
		t.Errorf("nubo.yaml does not name the application demo:\n%s", content("nubo.yaml"))
	}
	if got := content("go.mod"); !strings.HasPrefix(got, "module starter\n") || strings.Contains(got, "require") {
		t.Errorf("go.mod is not a dependency-free module starter:\n%s", got)
	}
	for _, line := range []string{".nubo/", "bin/"} {
		if !slices.Contains(strings.Split(content(".gitignore"), "\n"), line) {
			t.Errorf(".gitignore lacks %q", line)
		}
	}
}

func TestFilesRefusesABadName(t *testing.T) {
	for _, name := range []string{"", "Demo", "-x", "a_b", strings.Repeat("a", 64)} {
		if _, err := Files(Data{Name: name}); err == nil {
			t.Errorf("Files(%q) succeeded", name)
		}
	}
}

// TestTemplatesAreNotGoFiles keeps the template sources out of nubo's module:
// a .go file there would be built and vetted as part of it.
func TestTemplatesAreNotGoFiles(t *testing.T) {
	err := filepath.WalkDir(templateRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, ".tmpl") {
			t.Errorf("%s: a template file must end in .tmpl", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "project")
	written, err := Write(dir, Data{Name: "demo"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 5 {
		t.Errorf("wrote %v, want 5 files", written)
	}
	for _, p := range written {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}

	// A second run refuses and names every file that is in the way.
	if err := os.WriteFile(filepath.Join(dir, "nubo.yaml"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Write(dir, Data{Name: "demo"}, false)
	var exists *ExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("second Write: %v, want an *ExistsError", err)
	}
	if !slices.Equal(exists.Paths, written) {
		t.Errorf("existing files %v, want %v", exists.Paths, written)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nubo.yaml")); string(b) != "mine" {
		t.Errorf("a refused Write changed nubo.yaml to %q", b)
	}

	// Only the starter's own files count: others in the folder are fine.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "README.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(other, Data{Name: "demo"}, false); err != nil {
		t.Errorf("Write into a folder with other files: %v", err)
	}

	// force overwrites.
	if _, err := Write(dir, Data{Name: "demo"}, true); err != nil {
		t.Fatalf("forced Write: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nubo.yaml")); string(b) == "mine" {
		t.Error("a forced Write left nubo.yaml as it was")
	}
}

func TestNameFor(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"/src/shop", "shop"},
		{"/src/My App", "my-app"},
		{"/src/--api_v2--", "api-v2"},
		{"/src/___", "starter"},
		{"/src/" + strings.Repeat("a", 62) + "-b", strings.Repeat("a", 62)},
		{"/", "starter"},
	}
	for _, tt := range tests {
		if got := NameFor(tt.dir); got != tt.want {
			t.Errorf("NameFor(%q) = %q, want %q", tt.dir, got, tt.want)
		}
		if got := NameFor(tt.dir); !ValidName(got) {
			t.Errorf("NameFor(%q) = %q, not a valid name", tt.dir, got)
		}
	}
}
