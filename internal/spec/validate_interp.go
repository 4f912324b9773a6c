package spec

import (
	"fmt"
	"strings"
)

// interpolationRoots are what ${ROOT....} may start with.
var interpolationRoots = []string{"env", "services", "functions", "databases", "secrets", "config", "stage"}

// databaseAttributes are what ${databases.NAME.ATTR} may name. Besides the url,
// the parts of it are offered because many clients cannot take a URL, or want
// the password apart (PGPASSWORD, REDISCLI_AUTH), or the database's name
// (PGDATABASE); all of them are known once
// nubo has started the database, and in Kubernetes they come from its Secret.
var databaseAttributes = []string{"url", "host", "port", "user", "password", "database", "readUrl"}

// grafanaBuiltinPrefix starts the names of the variables Grafana itself
// defines ($__interval, ${__rate_interval}, ${__from}, ...).
const grafanaBuiltinPrefix = "__"

// checkInterpolations checks every ${...} the decoder found in a string value.
//
// "$${" is an escape: it stands for a literal "${" and starts no reference,
// so `run: sh -c 'echo $${HOME}'` passes ${HOME} on to the shell.
//
// Strings inside dashboards are Grafana's, not nubo's: $var and ${var} there
// are dashboard variables, so ${name} must name one of its dashboard's.
func checkInterpolations(a *App, r *report) {
	dashboards := map[string]*Dashboard{} // path prefix -> dashboard
	for _, name := range sortedKeys(a.Observability.Dashboards) {
		dashboards[joinPath("observability.dashboards", name)+"."] = a.Observability.Dashboards[name]
	}
	for _, sv := range a.src.interpolations {
		exprs, unterminated := scanInterpolations(sv.value)
		if d := dashboardOf(dashboards, sv.path); d != nil {
			checkGrafanaVariables(r, sv.path, exprs, d)
		} else {
			for _, e := range exprs {
				checkInterpolation(a, r, sv.path, e)
			}
		}
		if unterminated {
			r.errorf(sv.path, `unterminated "${": close it with "}", or write "$${" for a literal "${"`)
		}
	}
}

// dashboardOf returns the dashboard a field path is inside, or nil; a prefix
// ends with "." so that one dashboard's name never matches another's.
func dashboardOf(dashboards map[string]*Dashboard, path string) *Dashboard {
	for prefix, d := range dashboards {
		if strings.HasPrefix(path, prefix) {
			return d
		}
	}
	return nil
}

// scanInterpolations returns the expressions of the ${...} in s, in order,
// and whether a "${" is left open. "$${" is skipped as a literal.
func scanInterpolations(s string) (exprs []string, unterminated bool) {
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return exprs, true
			}
			exprs = append(exprs, s[i+2:i+2+end])
			i += 2 + end + 1
		default:
			i++
		}
	}
	return exprs, false
}

// checkInterpolation checks one ${expr} written at path.
func checkInterpolation(a *App, r *report, path, expr string) {
	parts := strings.SplitN(expr, ".", 3)
	root := parts[0]
	bad := func(format string, args ...any) {
		r.errorf(path, "${%s}: %s", expr, fmt.Sprintf(format, args...))
	}
	// wantParts reports a ROOT.NAME.PART reference with a part missing.
	wantParts := func(form string) bool {
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			bad("write ${%s}", form)
			return false
		}
		return true
	}
	switch root {
	case "env":
		if len(parts) < 2 || parts[1] == "" {
			bad("write ${env.NAME}")
		}
	case "services", "functions":
		kind := strings.TrimSuffix(root, "s")
		if !wantParts(root + ".NAME.url") {
			return
		}
		names := sortedKeys(a.Services)
		if root == "functions" {
			names = sortedKeys(a.Functions)
		}
		if !contains(names, parts[1]) {
			bad("unknown %s %q%s", kind, parts[1], nameHint(kind, parts[1], names))
		} else if parts[2] != "url" {
			bad("unknown attribute %q of a %s%s; the only one is url", parts[2], kind, refHint(parts[2], []string{"url"}))
		}
	case "databases":
		if !wantParts("databases.NAME.url") {
			return
		}
		names := sortedKeys(a.Databases)
		if !contains(names, parts[1]) {
			bad("unknown database %q%s", parts[1], nameHint("database", parts[1], names))
		} else if !contains(databaseAttributes, parts[2]) {
			bad("unknown attribute %q of a database%s; write url, host, port, user, password, database or readUrl",
				parts[2], refHint(parts[2], databaseAttributes))
		}
	case "secrets":
		if !wantParts("secrets.NAME.KEY") {
			return
		}
		names := sortedKeys(a.Secrets)
		sec, ok := a.Secrets[parts[1]]
		switch {
		case !ok:
			bad("unknown secret %q%s", parts[1], nameHint("secret", parts[1], names))
		case !contains(sec.Keys, parts[2]):
			bad("secret %q has no key %q%s", parts[1], parts[2], keysHint(parts[2], sec.Keys))
		}
	case "config":
		if !wantParts("config.NAME.KEY") {
			return
		}
		names := sortedKeys(a.Config)
		cm, ok := a.Config[parts[1]]
		keys := sortedKeys(cm)
		switch {
		case !ok:
			bad("unknown config %q%s", parts[1], nameHint("config", parts[1], names))
		case !contains(keys, parts[2]):
			bad("config %q has no key %q%s", parts[1], parts[2], keysHint(parts[2], keys))
		}
	case "stage":
		if !strings.HasPrefix(path, "gateway.routes[") {
			bad("stage variables are only for gateway routes")
			return
		}
		if len(parts) != 2 || parts[1] == "" {
			bad("write ${stage.NAME}")
			return
		}
		vars := sortedKeys(stageVariables(a.Gateway))
		if !contains(vars, parts[1]) {
			if len(vars) == 0 {
				bad("no stage declares variables")
			} else {
				bad("no stage has a variable %q%s", parts[1], refHint(parts[1], vars))
			}
		}
	default:
		msg := fmt.Sprintf("unknown reference %q%s; nubo knows %s", root, refHint(root, interpolationRoots),
			strings.Join(interpolationRoots, ", "))
		if len(parts) == 1 {
			// Most likely a shell variable in run or build: say how to keep it.
			msg += fmt.Sprintf(`; write "$${%s}" to pass "${%s}" on as it is`, expr, expr)
		}
		bad("%s", msg)
	}
}

// nameHint is refHint for a reference to a declared thing, saying so when
// nothing of its kind is declared, as report.unknown does.
func nameHint(what, name string, names []string) string {
	if len(names) == 0 {
		return fmt.Sprintf(" (no %s is declared)", what)
	}
	return refHint(name, names)
}

// keysHint is refHint for the keys of a secret or config, which may declare none.
func keysHint(key string, keys []string) string {
	if len(keys) == 0 {
		return " (it declares no keys)"
	}
	return refHint(key, keys)
}

// checkGrafanaVariables checks ${name} and ${name:format} in a dashboard's
// strings against the dashboard's variables.
func checkGrafanaVariables(r *report, path string, exprs []string, d *Dashboard) {
	var names []string
	for _, v := range d.Variables {
		names = append(names, v.Name)
	}
	for _, e := range exprs {
		name, _, _ := strings.Cut(e, ":")
		if strings.HasPrefix(name, grafanaBuiltinPrefix) || contains(names, name) {
			continue
		}
		r.errorf(path, "${%s}: %q is not a variable of this dashboard%s", e, name, refHint(name, names))
	}
}
