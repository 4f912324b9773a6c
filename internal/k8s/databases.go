package k8s

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nubo-dev/nubo/internal/spec"
)

// Ports and names of the databases' objects.
const (
	postgresPort = 5432
	redisPort    = 6379
	// postgresDatabase and postgresOwner are the database and owner
	// CloudNativePG bootstraps by default; its Secret <cluster>-app holds
	// their credentials.
	postgresDatabase = "app"
	postgresOwner    = "app"
	// cnpgNamespace is where the CloudNativePG operator runs by default; it
	// must reach the instances through their network policy.
	cnpgNamespace       = "cnpg-system"
	cnpgClusterLabel    = "cnpg.io/cluster"
	postgresMetricsPort = 9187
	redisExporterImage  = "oliver006/redis_exporter:v1.67.0"
	redisExporterPort   = 9121
	// AnnotationGenerate marks a Secret whose listed keys nubo deploy
	// generates once (a random password) and keeps from then on.
	AnnotationGenerate = "nubo.dev/generate"
)

func (b *builder) databases() error {
	for _, name := range sortedKeys(b.app.Databases) {
		db := b.app.Databases[name]
		var err error
		switch db.Type {
		case "postgres":
			err = b.postgres(name, db)
		case "redis":
			err = b.redis(name, db)
		}
		if err == nil {
			err = b.databaseNetworkPolicy(name, db)
		}
		if err != nil {
			return fmt.Errorf("database %q: %w", name, err)
		}
	}
	return nil
}

// roleSecret is the Secret holding a database role's password.
func roleSecret(db, role string) string {
	return db + "-role-" + strings.ReplaceAll(strings.ToLower(role), "_", "-")
}

// roleOf returns the role whose connection a workload uses, or "".
func roleOf(db *spec.Database, workload string) string {
	for _, r := range db.Security.Access.Roles {
		for _, s := range r.Services {
			if s == workload {
				return r.Name
			}
		}
	}
	return ""
}

// databaseRef resolves ${databases.NAME.ATTR} for a workload: from
// CloudNativePG's Secret of the database's owner, or from the Secret of the
// role the workload is granted.
func (b *builder) databaseRef(name, attr, workload string) (ref, error) {
	db := b.app.Databases[name]
	if db == nil {
		return ref{}, fmt.Errorf("unknown database %q", name)
	}
	if db.Type == "redis" {
		// Every workload uses Redis' default user, whose password nubo
		// deploy generates into the NAME-auth Secret.
		password := ref{from: secretRef(redisAuthSecret(name), "password"), helper: "NUBO_DB_" + envName(name) + "_PASSWORD"}
		switch attr {
		case "url", "readUrl":
			password.prefix = "redis://default:"
			password.suffix = fmt.Sprintf("@%s:%d/0", name, redisPort)
			return password, nil
		case "host":
			return ref{literal: name}, nil
		case "port":
			return ref{literal: fmt.Sprint(redisPort)}, nil
		case "user":
			return ref{literal: "default"}, nil
		case "password":
			return password, nil
		case "database":
			return ref{literal: "0"}, nil
		}
		return ref{}, fmt.Errorf("unknown attribute %q of a database", attr)
	}
	host := name + "-rw"
	role := roleOf(db, workload)
	password := ref{from: secretRef(name+"-app", "password"), helper: "NUBO_DB_" + envName(name) + "_PASSWORD"}
	if role != "" {
		password = ref{from: secretRef(roleSecret(name, role), "password"), helper: "NUBO_DB_" + envName(name) + "_" + envName(role) + "_PASSWORD"}
	}
	switch attr {
	case "url":
		if role == "" {
			return ref{from: secretRef(name+"-app", "uri"), helper: "NUBO_DB_" + envName(name) + "_URL"}, nil
		}
		password.prefix = fmt.Sprintf("postgresql://%s:", role)
		password.suffix = fmt.Sprintf("@%s:%d/%s", host, postgresPort, postgresDatabase)
		return password, nil
	case "host":
		return ref{literal: host}, nil
	case "port":
		return ref{literal: fmt.Sprint(postgresPort)}, nil
	case "user":
		if role != "" {
			return ref{literal: role}, nil
		}
		return ref{literal: postgresOwner}, nil
	case "password":
		return password, nil
	case "database":
		return ref{literal: postgresDatabase}, nil
	case "readUrl":
		// CloudNativePG's NAME-ro Service: the replicas only.
		user := postgresOwner
		if role != "" {
			user = role
		}
		password.prefix = fmt.Sprintf("postgresql://%s:", user)
		password.suffix = fmt.Sprintf("@%s-ro:%d/%s", name, postgresPort, postgresDatabase)
		return password, nil
	}
	return ref{}, fmt.Errorf("unknown attribute %q of a database", attr)
}

func (b *builder) postgres(name string, db *spec.Database) error {
	path := pathOf("databases", name)
	storage := map[string]any{"size": db.Storage.Size.Text}
	if db.Storage.Class != "" {
		storage["storageClass"] = db.Storage.Class
	}
	if db.Storage.AccessMode != "ReadWriteOnce" {
		storage["pvcTemplate"] = map[string]any{"accessModes": []string{db.Storage.AccessMode}}
	}
	inherited := b.labels(name, "database")
	delete(inherited, LabelManagedBy)
	spec := map[string]any{
		"instances": db.Replicas,
		"storage":   storage,
		// What CloudNativePG creates carries the app's labels, so that
		// selectors written for the app find its pods; not managed-by,
		// which would make those objects nubo's to prune.
		"inheritedMetadata": map[string]any{"labels": inherited},
	}
	if db.Version != "" {
		spec["imageName"] = "ghcr.io/cloudnative-pg/postgresql:" + db.Version
	}
	if len(b.app.Kubernetes.ImagePullSecrets) > 0 {
		var refs []any
		for _, s := range b.app.Kubernetes.ImagePullSecrets {
			refs = append(refs, map[string]any{"name": s})
		}
		spec["imagePullSecrets"] = refs
	}
	if db.Security.Encryption.AtRest && db.Storage.Class == "" {
		b.warnf(path+".security.encryption.atRest", "on Kubernetes the volume is encrypted by its storage class: set storage.class to an encrypted one")
	}
	if acc := db.Security.Access; acc.RBAC || len(acc.Roles) > 0 {
		var roles []any
		writes := false
		for _, r := range acc.Roles {
			role := map[string]any{
				"name":           r.Name,
				"ensure":         "present",
				"login":          true,
				"passwordSecret": map[string]any{"name": roleSecret(name, r.Name)},
			}
			inRoles := []string{}
			for _, g := range r.Grants {
				switch g {
				case "readonly":
					inRoles = append(inRoles, "pg_read_all_data")
				case "readwrite":
					inRoles = append(inRoles, "pg_read_all_data", "pg_write_all_data")
					writes = true
				case "admin":
					inRoles = append(inRoles, "pg_read_all_data", "pg_write_all_data")
					writes = true
					role["createdb"] = true
					role["createrole"] = true
				}
			}
			if len(inRoles) > 0 {
				role["inRoles"] = dedupe(inRoles)
			}
			roles = append(roles, role)
			if err := b.roleSecretObject(name, r.Name); err != nil {
				return err
			}
		}
		if len(roles) > 0 {
			spec["managed"] = map[string]any{"roles": roles}
		}
		if writes {
			// Locally a readwrite role may create tables in the public
			// schema (a service creates its own at start); PostgreSQL 15
			// took CREATE there away from everyone but the owner, and
			// pg_write_all_data does not give it back. The grant runs
			// once, when CloudNativePG creates the cluster: the managed
			// roles do not exist yet then, their predefined role does.
			spec["bootstrap"] = map[string]any{"initdb": map[string]any{
				"database":               "app",
				"owner":                  "app",
				"postInitApplicationSQL": []any{"GRANT CREATE ON SCHEMA public TO pg_write_all_data"},
			}}
		}
	}
	if bk := db.Backup; bk.Enabled {
		method, err := b.postgresBackup(path, name, db, spec)
		if err != nil {
			return err
		}
		b.addCustom("postgresql.cnpg.io/v1", "ScheduledBackup", name, "database", map[string]any{"spec": map[string]any{
			"cluster":              map[string]any{"name": name},
			"schedule":             cnpgSchedule(bk.Schedule),
			"method":               method,
			"backupOwnerReference": "self",
		}})
	}
	b.addCustom("postgresql.cnpg.io/v1", "Cluster", name, "database", map[string]any{"spec": spec})
	if db.Monitoring.Enabled && b.monitoring() {
		b.addCustom("monitoring.coreos.com/v1", "PodMonitor", name, "database", map[string]any{"spec": map[string]any{
			"selector":            map[string]any{"matchLabels": map[string]string{cnpgClusterLabel: name}},
			"podMetricsEndpoints": []any{map[string]any{"port": "metrics"}},
		}})
	}
	return nil
}

// postgresBackup configures the cluster's backups and returns the method
// its ScheduledBackup uses: Barman to object storage for an s3:// (or gs://,
// https://) destination, volume snapshots otherwise.
func (b *builder) postgresBackup(path, name string, db *spec.Database, cluster map[string]any) (string, error) {
	bk := db.Backup
	backup := map[string]any{}
	if days := retentionDays(bk.Schedule, bk.Retention); days > 0 {
		backup["retentionPolicy"] = fmt.Sprintf("%dd", days)
	}
	dest := bk.Destination
	if strings.HasPrefix(dest, "s3://") || strings.HasPrefix(dest, "gs://") || strings.HasPrefix(dest, "https://") {
		store := map[string]any{"destinationPath": dest}
		switch {
		case strings.HasPrefix(dest, "s3://"):
			// The pods' cloud identity (IRSA and the like) authorizes the
			// bucket: nubo has no credentials to give.
			store["s3Credentials"] = map[string]any{"inheritFromIAMRole": true}
		case strings.HasPrefix(dest, "gs://"):
			store["googleCredentials"] = map[string]any{"gkeEnvironment": true}
		default:
			store["azureCredentials"] = map[string]any{"inheritFromAzureAD": true}
		}
		if db.Security.Encryption.AtRest {
			store["data"] = map[string]any{"encryption": "AES256"}
			store["wal"] = map[string]any{"encryption": "AES256"}
		}
		backup["barmanObjectStore"] = store
		cluster["backup"] = backup
		return "barmanObjectStore", nil
	}
	b.warnf(path+".backup.destination", "%q is not object storage (s3://, gs:// or https://): backups are volume snapshots of the cluster's default VolumeSnapshotClass", dest)
	backup["volumeSnapshot"] = map[string]any{"online": true}
	cluster["backup"] = backup
	return "volumeSnapshot", nil
}

// cnpgSchedule turns a 5-field cron expression into CloudNativePG's, which
// has a seconds field first; descriptors (@daily, @every 6h) pass as they are.
func cnpgSchedule(expr string) string {
	if strings.HasPrefix(expr, "@") {
		return expr
	}
	return "0 " + expr
}

// retentionDays turns "keep N backups" into CloudNativePG's time-based
// retention: N times the schedule's interval, in whole days.
func retentionDays(schedule string, keep int) int {
	sched, err := cron.ParseStandard(schedule)
	if err != nil || keep <= 0 {
		return 0
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first := sched.Next(start)
	interval := sched.Next(first).Sub(first)
	total := time.Duration(keep) * interval
	return int((total + 24*time.Hour - 1) / (24 * time.Hour))
}

// redisAuthSecret is the Secret holding the password of a Redis database's
// default user.
func redisAuthSecret(db string) string { return db + "-auth" }

// roleSecretObject renders the Secret of a role's password: the user name
// only. nubo deploy generates the password once and keeps it.
func (b *builder) roleSecretObject(db, role string) error {
	return b.passwordSecretObject(roleSecret(db, role), role)
}

// passwordSecretObject renders a basic-auth Secret named name for user,
// whose password nubo deploy generates once and keeps.
func (b *builder) passwordSecretObject(name, user string) error {
	meta := b.meta(name, "database")
	meta.Annotations = map[string]string{AnnotationGenerate: "password"}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeBasicAuth,
		Data:       map[string][]byte{"username": []byte(user)},
	}
	for k, v := range b.opts.Generated[name] {
		sec.Data[k] = []byte(v)
	}
	return b.addTyped(sec)
}

func (b *builder) redis(name string, db *spec.Database) error {
	path := pathOf("databases", name)
	if db.Replicas > 1 {
		b.warnf(path+".replicas", "Redis is rendered as one instance: replication needs an operator nubo does not render for")
	}
	if db.Backup.Enabled {
		b.warnf(path+".backup", "Redis backups are not rendered for Kubernetes")
	}
	version := db.Version
	if version == "" {
		version = "7"
	}
	if len(db.Security.Access.Roles) > 0 {
		b.warnf(path+".security.access.roles", "Redis ACL users are not rendered: every workload uses the default user's password (Secret %s)", redisAuthSecret(name))
	}
	persistent := *db.Storage.Persistent
	args := []string{"--save", ""}
	if persistent {
		args = []string{"--appendonly", "yes"}
	}
	// As locally, the default user has a password: the network policy
	// alone would let any pod it admits run CONFIG or FLUSHALL.
	args = append(args, "--requirepass", "$(REDIS_PASSWORD)")
	auth := []corev1.EnvVar{{Name: "REDIS_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: redisAuthSecret(name)}, Key: "password"}}}}
	if err := b.passwordSecretObject(redisAuthSecret(name), "default"); err != nil {
		return err
	}
	c := corev1.Container{
		Name:  "redis",
		Image: "redis:" + version,
		Args:  args,
		Env:   auth,
		Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: redisPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("redis")}},
			PeriodSeconds: 5,
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
	}
	containers := []corev1.Container{c}
	if db.Monitoring.Enabled {
		containers = append(containers, corev1.Container{
			Name:  "exporter",
			Image: redisExporterImage,
			Env:   auth, // redis_exporter reads REDIS_PASSWORD
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: redisExporterPort, Protocol: corev1.ProtocolTCP}},
		})
	}
	pod := b.podTemplate(name, "database", containers...)
	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: b.meta(name, "database"),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr(int32(1)),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: b.selector(name)},
			Template:    pod,
		},
	}
	if persistent {
		pvc := corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(db.Storage.AccessMode)},
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: db.Storage.Size.Quantity},
				},
			},
		}
		if db.Storage.Class != "" {
			pvc.Spec.StorageClassName = ptr(db.Storage.Class)
		}
		sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{pvc}
	} else {
		sts.Spec.Template.Spec.Volumes = []corev1.Volume{{
			Name:         "data",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(db.Storage.Size.Quantity.DeepCopy())}},
		}}
	}
	if err := b.serviceAccount(name, "database"); err != nil {
		return err
	}
	if err := b.addTyped(sts); err != nil {
		return err
	}
	if err := b.addTyped(&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: b.meta(name, "database"),
		Spec: corev1.ServiceSpec{
			Selector: b.selector(name),
			Ports: []corev1.ServicePort{{
				Name: "redis", Port: redisPort, TargetPort: intstr.FromString("redis"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}); err != nil {
		return err
	}
	if db.Monitoring.Enabled && b.monitoring() {
		b.addCustom("monitoring.coreos.com/v1", "PodMonitor", name, "database", map[string]any{"spec": map[string]any{
			"selector":            map[string]any{"matchLabels": b.selector(name)},
			"podMetricsEndpoints": []any{map[string]any{"port": "metrics"}},
		}})
	}
	return nil
}

// databaseNetworkPolicy admits the workloads security.network lists and
// refuses everything else. The instances of a PostgreSQL cluster and its
// operator always get through: replication and failover need them.
func (b *builder) databaseNetworkPolicy(name string, db *spec.Database) error {
	rules := db.Security.Network.Ingress
	if len(rules) == 0 {
		return nil
	}
	pods := b.selector(name)
	if db.Type == "postgres" {
		pods = map[string]string{cnpgClusterLabel: name}
	}
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: b.meta(name, "database"),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: pods},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	for _, r := range rules {
		var rule networkingv1.NetworkPolicyIngressRule
		for _, p := range r.From {
			workload := p.Service
			if workload == "" {
				workload = p.Function
			}
			rule.From = append(rule.From, networkingv1.NetworkPolicyPeer{
				PodSelector: &metav1.LabelSelector{MatchLabels: b.selector(workload)},
			})
		}
		for _, p := range r.Ports {
			proto := corev1.Protocol(p.Protocol)
			port := intstr.FromInt32(int32(p.Port))
			rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
		}
		np.Spec.Ingress = append(np.Spec.Ingress, rule)
	}
	if db.Type == "postgres" {
		np.Spec.Ingress = append(np.Spec.Ingress,
			networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: pods}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": cnpgNamespace}}},
			}})
	}
	if db.Monitoring.Enabled {
		port := intstr.FromString("metrics")
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
		})
	}
	return b.addTyped(np)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
