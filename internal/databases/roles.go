package databases

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// The grants a role may have, and what they mean.
//
// PostgreSQL, in the database and its public schema:
//   - readonly: CONNECT; USAGE on the schema; SELECT on every table and
//     sequence, including the ones created later.
//   - readwrite: readonly, plus CREATE on the schema (a service creates its
//     own tables at start), INSERT, UPDATE, DELETE, TRUNCATE on every table
//     and USAGE, UPDATE on every sequence, including later ones.
//   - admin: every privilege on the database, the schema, its tables and
//     sequences.
//
// Tables created later get the same privileges because the admin's, the
// owner's and the writing roles' default privileges grant them ("later"
// covers tables any of them creates).
//
// Redis ACLs, on every key and channel:
//   - readonly: +@read +@connection (GET, SCAN, ...; no writes);
//   - readwrite: +@all -@admin -@dangerous (no CONFIG, FLUSHALL, ...);
//   - admin: +@all.
const (
	GrantReadonly  = "readonly"
	GrantReadwrite = "readwrite"
	GrantAdmin     = "admin"
)

// strongest is the widest of a role's grants; readonly when none is given.
func strongest(grants []string) string {
	switch {
	case slices.Contains(grants, GrantAdmin):
		return GrantAdmin
	case slices.Contains(grants, GrantReadwrite):
		return GrantReadwrite
	}
	return GrantReadonly
}

// roles creates or updates the spec's roles, sets their passwords to the
// stored ones (the store is the source of truth) and grants what their
// grants say. Running it again changes nothing.
func (p postgres) roles(ctx context.Context, db *Database) error {
	rs := db.spec.Security.Access.Roles
	if len(rs) == 0 {
		return nil
	}
	conn, err := p.connect(ctx, db, db.databaseName())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	dbIdent := pgx.Identifier{db.databaseName()}.Sanitize()
	creators := []string{pgx.Identifier{db.admin.User}.Sanitize(), pgx.Identifier{db.owner.User}.Sanitize()}
	for _, r := range rs {
		if strongest(r.Grants) != GrantReadonly {
			creators = append(creators, pgx.Identifier{r.Name}.Sanitize())
		}
	}
	// Every role exists before any grant: a role's default privileges name
	// the other writing roles.
	existed := map[string]bool{}
	for _, r := range rs {
		role := pgx.Identifier{r.Name}.Sanitize()
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Name).Scan(&exists); err != nil {
			return fmt.Errorf("role %q: %w", r.Name, err)
		}
		existed[r.Name] = exists
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		// The verifier, not the password (see scramVerifier); it is made of
		// base64 and punctuation that needs no escaping in a literal.
		v, err := scramVerifier(db.roles[r.Name].Password.Reveal())
		if err != nil {
			return fmt.Errorf("role %q: %w", r.Name, err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN PASSWORD '%s'", verb, role, v)); err != nil {
			return fmt.Errorf("role %q: %s ROLE: %w", r.Name, verb, err)
		}
	}
	for _, r := range rs {
		role := pgx.Identifier{r.Name}.Sanitize()
		var stmts []string
		if existed[r.Name] {
			// A grant taken out of the spec is taken back: revoke what
			// the role may hold before granting what it should.
			stmts = append(stmts,
				fmt.Sprintf("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %s", role),
				fmt.Sprintf("REVOKE ALL ON SCHEMA public FROM %s", role))
		}
		var tables, seqs, schema, dbPriv string
		switch strongest(r.Grants) {
		case GrantAdmin:
			tables, seqs, schema, dbPriv = "ALL PRIVILEGES", "ALL PRIVILEGES", "ALL PRIVILEGES", "ALL PRIVILEGES"
		case GrantReadwrite:
			tables, seqs, schema, dbPriv = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE", "USAGE, SELECT, UPDATE", "USAGE, CREATE", "CONNECT, TEMPORARY"
		default:
			tables, seqs, schema, dbPriv = "SELECT", "SELECT", "USAGE", "CONNECT"
		}
		stmts = append(stmts,
			fmt.Sprintf("GRANT %s ON DATABASE %s TO %s", dbPriv, dbIdent, role),
			fmt.Sprintf("GRANT %s ON SCHEMA public TO %s", schema, role),
			fmt.Sprintf("GRANT %s ON ALL TABLES IN SCHEMA public TO %s", tables, role),
			fmt.Sprintf("GRANT %s ON ALL SEQUENCES IN SCHEMA public TO %s", seqs, role))
		for _, c := range creators {
			stmts = append(stmts,
				fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA public GRANT %s ON TABLES TO %s", c, tables, role),
				fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA public GRANT %s ON SEQUENCES TO %s", c, seqs, role))
		}
		for _, st := range stmts {
			if _, err := conn.Exec(ctx, st); err != nil {
				return fmt.Errorf("role %q: %s: %w", r.Name, st, err)
			}
		}
	}
	return nil
}

// redisACL is the ACL rule of a role's grants.
func redisACL(grants []string) string {
	switch strongest(grants) {
	case GrantAdmin:
		return "~* &* +@all"
	case GrantReadwrite:
		return "~* &* +@all -@admin -@dangerous"
	}
	return "~* &* -@all +@read +@connection"
}
