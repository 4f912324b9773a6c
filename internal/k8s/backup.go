package k8s

import (
	"fmt"
	"sort"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The JetStream backup job: what `nubo backup` does for the broker
// locally, a CronJob does on Kubernetes, with the NATS CLI's stream
// backup (JetStream's own snapshot, the same as the local archive's) into
// a volume of its own. NACK has no backup object, so a job it is.
const (
	natsBoxImage         = "natsio/nats-box:0.18.0"
	jetStreamBackupName  = "jetstream-backup"
	jetStreamBackupCron  = "0 3 * * *"
	jetStreamBackupKeep  = 7
	jetStreamBackupStore = "10Gi"
)

// jetStreamBackup renders the CronJob that backs up the app's streams and
// key-value buckets every night, keeping the last seven, on a
// PersistentVolumeClaim of the cluster's default storage class.
func (b *builder) jetStreamBackup() error {
	streams := b.renderedStreams()
	if len(streams) == 0 {
		return nil
	}
	name := jetStreamBackupName
	claim := b.meta(name, "backup")
	claim.Annotations = map[string]string{AnnotationPrune: "never"}
	if err := b.addTyped(&corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: claim,
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(jetStreamBackupStore)}},
		},
	}); err != nil {
		return err
	}
	// One folder per run, named by its time; the oldest beyond the last
	// seven go. A stream that fails fails the job (set -e), which the
	// cluster's job alerts see.
	script := fmt.Sprintf(`set -eu
dir=/backup/$(date -u +%%Y%%m%%dT%%H%%M%%SZ)
mkdir -p "$dir"
for s in %s; do
  nats --server "$NATS_URL" stream backup "$s" "$dir/$s"
done
ls -1d /backup/2*/ | sort -r | tail -n +%d | xargs -r rm -rf
`, strings.Join(streams, " "), jetStreamBackupKeep+1)
	noToken := false
	pod := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: b.labels(name, "backup")},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyOnFailure,
			AutomountServiceAccountToken: &noToken,
			Containers: []corev1.Container{{
				Name:         "backup",
				Image:        natsBoxImage,
				Command:      []string{"/bin/sh", "-c", script},
				Env:          []corev1.EnvVar{{Name: "NATS_URL", Value: b.opts.NATSURL}},
				VolumeMounts: []corev1.VolumeMount{{Name: "backup", MountPath: "/backup"}},
			}},
			Volumes: []corev1.Volume{{Name: "backup", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
			}}},
		},
	}
	for _, s := range b.app.Kubernetes.ImagePullSecrets {
		pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	keep := int32(3)
	return b.addTyped(&batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: b.meta(name, "backup"),
		Spec: batchv1.CronJobSpec{
			Schedule:                   jetStreamBackupCron,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			SuccessfulJobsHistoryLimit: &keep,
			FailedJobsHistoryLimit:     &keep,
			JobTemplate:                batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: pod}},
		},
	})
}

// renderedStreams are the JetStream names of the streams and buckets
// rendered so far (a bucket is stream KV_<bucket>), sorted.
func (b *builder) renderedStreams() []string {
	var out []string
	for _, o := range b.objs {
		if o.GetAPIVersion() != nack {
			continue
		}
		spec, _ := o.Object["spec"].(map[string]any)
		switch o.GetKind() {
		case "Stream":
			if n, _ := spec["name"].(string); n != "" {
				out = append(out, n)
			}
		case "KeyValue":
			if n, _ := spec["bucket"].(string); n != "" {
				out = append(out, "KV_"+n)
			}
		}
	}
	sort.Strings(out)
	return out
}
