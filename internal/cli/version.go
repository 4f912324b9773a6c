package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// versionInfo is what `nubo version` reports; with --output json it is the
// document printed, with these field names.
type versionInfo struct {
	// Version of the nubo module: a tag, a pseudo-version, or (devel).
	Version string `json:"version"`
	// Go is the toolchain that built the binary.
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Revision, Time and Modified come from the VCS stamp; empty when the
	// binary was built without one (go build -buildvcs=false, go run).
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

// buildVersion reads the version the Go toolchain stamped into the binary.
func buildVersion() versionInfo {
	v := versionInfo{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line of `nubo version`.
func (v versionInfo) String() string {
	details := []string{v.Go, v.Platform}
	if v.Revision != "" {
		rev := "revision " + v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		details = append(details, rev)
	}
	return fmt.Sprintf("nubo %s (%s)", v.Version, strings.Join(details, ", "))
}

func newVersionCmd(std stdio) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print nubo's version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			v := buildVersion()
			if output == "json" {
				enc := json.NewEncoder(std.out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			_, err := fmt.Fprintln(std.out, v)
			return err
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
