package databases

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/nubo-dev/nubo/internal/mesh/localca"
)

// TLS in transit (security.encryption.inTransit): the server gets a
// certificate for 127.0.0.1 from nubo's local CA (the one the ingress
// uses, `nubo ca`) and accepts only TLS connections (PostgreSQL: hostssl;
// Redis: tls-port and no plain port). PostgreSQL URLs ask for
// sslmode=verify-full against the CA's certificate; Redis URLs are
// rediss://, and the client must trust the CA. A client checks whom it
// talks to even through the allow-list listener, which forwards the TLS
// bytes untouched.

func (db *Database) tlsOn() bool { return db.spec.Security.Encryption.InTransit }

// caPath is the local CA's certificate, which clients verify the servers
// against.
func (db *Database) caPath() string { return localca.CertPath(db.d.cfg.CADir) }

// clientTLS is the TLS configuration of nubo's own Redis clients, nil
// without TLS.
func (db *Database) clientTLS() (*tls.Config, error) {
	if !db.tlsOn() {
		return nil, nil
	}
	pem, err := os.ReadFile(db.caPath())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", db.caPath())
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

// tlsFiles writes the server's certificate and key into its folder and
// returns their paths.
func (db *Database) tlsFiles() (cert, key string, err error) {
	if db.d.cfg.CADir == "" {
		return "", "", fmt.Errorf("encryption.inTransit: no local CA to issue the server's certificate")
	}
	ca, err := localca.Open(db.d.cfg.CADir)
	if err != nil {
		return "", "", fmt.Errorf("encryption.inTransit: %w", err)
	}
	leaf, err := ca.Leaf(host)
	if err != nil {
		return "", "", fmt.Errorf("encryption.inTransit: %w", err)
	}
	k, ok := leaf.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return "", "", fmt.Errorf("encryption.inTransit: the local CA's key is not ECDSA")
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	cert, key = filepath.Join(db.dir, "server.crt"), filepath.Join(db.dir, "server.key")
	if err := os.WriteFile(cert, chain, 0o644); err != nil {
		return "", "", err
	}
	// PostgreSQL refuses a key others can read.
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return cert, key, nil
}

// sslQuery is the query of a PostgreSQL URL: verify-full against the local
// CA with TLS, else no TLS.
func (db *Database) sslQuery() string {
	if !db.tlsOn() {
		return "sslmode=disable"
	}
	return "sslmode=verify-full&sslrootcert=" + url.QueryEscape(localca.CertPath(db.d.cfg.CADir))
}

// sslEnv is the libpq environment of nubo's own clients (pg_dump,
// pg_restore, psql).
func (db *Database) sslEnv() []string {
	if !db.tlsOn() {
		return []string{"PGSSLMODE=disable"}
	}
	return []string{"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + localca.CertPath(db.d.cfg.CADir)}
}

// writeHBA writes pg_hba.conf: password (scram-sha-256) logins and
// replication over TCP from loopback only, over TLS only when inTransit is
// on.
func (db *Database) writeHBA() error {
	kind := "host"
	if db.tlsOn() {
		kind = "hostssl"
	}
	conf := "# Written by nubo at each start: edits are lost.\n" +
		kind + " all all 127.0.0.1/32 scram-sha-256\n" +
		kind + " all all ::1/128 scram-sha-256\n" +
		// The streaming replicas (replicas > 1) connect as the superuser.
		kind + " replication all 127.0.0.1/32 scram-sha-256\n"
	return os.WriteFile(filepath.Join(db.dataDir(), "pg_hba.conf"), []byte(conf), 0o600)
}
