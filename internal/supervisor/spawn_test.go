package supervisor

import "testing"

func TestShellCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"./bin/users", "exec ./bin/users"},
		{"python3 -m orders --port 80", "exec python3 -m orders --port 80"},
		{"./a && ./b", "./a && ./b"},
		{"FOO=1 ./a", "FOO=1 ./a"},
		{"cd sub; ./a", "cd sub; ./a"},
		{"cd sub", "cd sub"},
		{"exec ./a", "exec ./a"},
		{"./a 'quoted arg'", "./a 'quoted arg'"},
		{"echo $HOME", "echo $HOME"},
	}
	for _, tt := range tests {
		if got := shellCommand(tt.in); got != tt.want {
			t.Errorf("shellCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
