package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/nubo-dev/nubo/internal/broker/brokertest"
)

// TestJetStreamBackupJobRuns runs the shop's rendered backup CronJob's own
// script, with the NATS CLI that nats-box ships (built from tools/natscli,
// a release of the same CLI), against a real JetStream server holding the
// streams and buckets NACK would create from the render: every stream is
// backed up, a backup restores into an empty server with every message,
// and nine nightly runs leave the last seven.
func TestJetStreamBackupJobRuns(t *testing.T) {
	natsCLI := filepath.Join(t.TempDir(), "nats")
	build := exec.Command("go", "build", "-o", natsCLI, "github.com/nats-io/natscli/nats")
	build.Dir = "../../tools/natscli"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the NATS CLI from tools/natscli: %v\n%s", err, out)
	}

	res, err := Render(loadOrParse(t, "../../examples/shop/nubo.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.CronJob
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := brokertest.StartEmbedded(t)
	js := srv.JetStream()
	var streams []string
	for _, o := range res.Objects {
		switch {
		case o.GetKind() == "CronJob" && o.GetName() == jetStreamBackupName:
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &job); err != nil {
				t.Fatal(err)
			}
		case o.GetAPIVersion() == nack && o.GetKind() == "Stream":
			name, _, _ := unstructured.NestedString(o.Object, "spec", "name")
			subjects, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "subjects")
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects}); err != nil {
				t.Fatalf("stream %s %v: %v", name, subjects, err)
			}
			streams = append(streams, name)
		case o.GetAPIVersion() == nack && o.GetKind() == "KeyValue":
			bucket, _, _ := unstructured.NestedString(o.Object, "spec", "bucket")
			kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
			if err != nil {
				t.Fatalf("bucket %s: %v", bucket, err)
			}
			if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			streams = append(streams, "KV_"+bucket)
		}
	}
	if len(job.Spec.JobTemplate.Spec.Template.Spec.Containers) != 1 || len(streams) == 0 {
		t.Fatalf("render: backup job %q, %d streams", job.Name, len(streams))
	}
	// Three messages on every stream, on its first subject.
	for _, name := range streams {
		if strings.HasPrefix(name, "KV_") {
			continue
		}
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		subject := strings.ReplaceAll(strings.ReplaceAll(st.CachedInfo().Config.Subjects[0], ">", "x"), "*", "x")
		for i := range 3 {
			if _, err := js.Publish(ctx, subject, fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatalf("publish %s: %v", subject, err)
			}
		}
	}

	c := job.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if c.Image != natsBoxImage || len(c.Command) != 3 || c.Command[0] != "/bin/sh" {
		t.Fatalf("backup container: %s %q", c.Image, c.Command)
	}
	// The script as rendered, with the volume's mount point moved into the
	// test's folder, and date(1) shimmed to give each run its own night.
	backup := t.TempDir()
	script := strings.ReplaceAll(c.Command[2], "/backup", backup)
	bin := t.TempDir()
	if err := os.Symlink(natsCLI, filepath.Join(bin, "nats")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "date"), []byte("#!/bin/sh\necho \"$NIGHT\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for night := 1; night <= 9; night++ {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+t.TempDir(),
			"NATS_URL="+srv.ClientURL(), fmt.Sprintf("NIGHT=2026120%dT030000Z", night))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("night %d: the job's script: %v\n%s", night, err, out)
		}
	}
	runs, err := filepath.Glob(filepath.Join(backup, "2*"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range runs {
		kept = append(kept, filepath.Base(r))
	}
	if want := []string{"20261203T030000Z", "20261204T030000Z", "20261205T030000Z", "20261206T030000Z", "20261207T030000Z", "20261208T030000Z", "20261209T030000Z"}; !slices.Equal(kept, want) {
		t.Fatalf("runs kept: %v, want the last %d: %v", kept, jetStreamBackupKeep, want)
	}

	// The last night's backups restore, with every message, into a server
	// that has never seen them.
	empty := brokertest.StartEmbedded(t)
	last := filepath.Join(backup, kept[len(kept)-1])
	for _, name := range streams {
		cmd := exec.CommandContext(ctx, natsCLI, "--server", empty.ClientURL(), "stream", "restore", filepath.Join(last, name))
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restore %s: %v\n%s", name, err, out)
		}
		st, err := empty.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(3)
		if strings.HasPrefix(name, "KV_") {
			want = 1
		}
		if got := st.CachedInfo().State.Msgs; got != want {
			t.Errorf("%s restored with %d messages, want %d", name, got, want)
		}
	}
}
