package databases

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Route is one handler of the databases' part of the admin API.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes is the databases' part of the admin API, which `nubo db` uses:
//
//	GET  /admin/v1/databases                 every database's status
//	GET  /admin/v1/databases/{name}/backups  its backups, oldest first
//	POST /admin/v1/databases/{name}/backups  take a backup now
//	POST /admin/v1/databases/{name}/restore  restore ?backup=NAME, else the newest
//
// No answer holds a password.
func (d *Databases) Routes() []Route {
	return []Route{
		{"GET /admin/v1/databases", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, d.Status())
		})},
		{"GET /admin/v1/databases/{name}/backups", d.withDB(func(w http.ResponseWriter, r *http.Request, db *Database) {
			all, err := db.Backups()
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			if all == nil {
				all = []apitype.Backup{}
			}
			writeJSON(w, http.StatusOK, all)
		})},
		{"POST /admin/v1/databases/{name}/backups", d.withDB(func(w http.ResponseWriter, r *http.Request, db *Database) {
			b, err := db.Backup(r.Context())
			if err != nil {
				writeError(w, statusOf(db), err.Error())
				return
			}
			db.notify(fmt.Sprintf("database %s: backed up to %s (%d bytes)", db.name, b.Name, b.Size))
			writeJSON(w, http.StatusCreated, b)
		})},
		{"POST /admin/v1/databases/{name}/restore", d.withDB(func(w http.ResponseWriter, r *http.Request, db *Database) {
			b, err := db.Restore(r.Context(), r.URL.Query().Get("backup"))
			switch {
			case errors.Is(err, ErrBackupNotFound):
				writeError(w, http.StatusNotFound, err.Error())
			case err != nil:
				writeError(w, statusOf(db), err.Error())
			default:
				writeJSON(w, http.StatusOK, b)
			}
		})},
	}
}

// statusOf is the status of a failed operation: 409 when the database is
// not ready, else 500.
func statusOf(db *Database) int {
	select {
	case <-db.ready:
		return http.StatusInternalServerError
	default:
		return http.StatusConflict
	}
}

func (d *Databases) withDB(h func(http.ResponseWriter, *http.Request, *Database)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		db := d.dbs[name]
		if db == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no database %q in the spec", name))
			return
		}
		h(w, r, db)
	})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
