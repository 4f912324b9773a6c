package spec

import "sort"

// checkNames reports names used twice where they must be unique, and names of
// list entries that must be DNS labels (map keys are checked by the decoder).
func checkNames(a *App, r *report) {
	checkMeshNameSpace(a, r)

	var ingress, policies, alerts []namedEntry
	for i, in := range a.Ingress {
		ingress = append(ingress, namedEntry{indexPath("ingress", i) + ".name", in.Name})
	}
	for i, p := range a.Mesh.Policies {
		policies = append(policies, namedEntry{indexPath("mesh.policies", i) + ".name", p.Name})
	}
	uniqueNames(r, "ingress", ingress, true)
	uniqueNames(r, "policy", policies, true)

	// Alerts of databases and of the observability section go to one rule
	// evaluator, and the console and notifications name an alert by its name.
	for i, al := range a.Observability.Alerts {
		alerts = append(alerts, namedEntry{indexPath("observability.alerts", i) + ".name", al.Name})
	}
	for _, db := range sortedKeys(a.Databases) {
		p := joinPath("databases", db) + ".monitoring.alerts"
		for i, al := range a.Databases[db].Monitoring.Alerts {
			alerts = append(alerts, namedEntry{indexPath(p, i) + ".name", al.Name})
		}
	}
	sort.SliceStable(alerts, func(i, j int) bool {
		return posBefore(r.src.files, r.src.at(alerts[i].path), r.src.at(alerts[j].path))
	})
	uniqueNames(r, "alert", alerts, false)

	for _, db := range sortedKeys(a.Databases) {
		p := joinPath("databases", db) + ".security.access.roles"
		var roles []namedEntry
		for i, role := range a.Databases[db].Security.Access.Roles {
			roles = append(roles, namedEntry{indexPath(p, i) + ".name", role.Name})
		}
		uniqueNames(r, "role", roles, false)
	}

	o := &a.Observability
	var parsers, filters []namedEntry
	for i, lp := range o.Logs.Parsers {
		parsers = append(parsers, namedEntry{indexPath("observability.logs.parsers", i) + ".name", lp.Name})
	}
	for i, lf := range o.Logs.Filters {
		filters = append(filters, namedEntry{indexPath("observability.logs.filters", i) + ".name", lf.Name})
	}
	uniqueNames(r, "log parser", parsers, false)
	uniqueNames(r, "log filter", filters, false)

	for _, d := range sortedKeys(o.Dashboards) {
		p := joinPath("observability.dashboards", d) + ".variables"
		var vars []namedEntry
		for i, v := range o.Dashboards[d].Variables {
			vars = append(vars, namedEntry{indexPath(p, i) + ".name", v.Name})
			if v.Name == ReservedDashboardVariable {
				r.errorf(indexPath(p, i)+".name", "%q is reserved: nubo adds the variable that picks the Prometheus data source of every panel", v.Name)
			}
		}
		uniqueNames(r, "variable", vars, false)
	}
	for _, s := range sortedKeys(o.SLOs) {
		p := joinPath("observability.slos", s) + ".indicators"
		var inds []namedEntry
		for i, ind := range o.SLOs[s].Indicators {
			inds = append(inds, namedEntry{indexPath(p, i) + ".name", ind.Name})
		}
		uniqueNames(r, "indicator", inds, false)
	}
}

// ReservedDashboardVariable is the dashboard variable nubo adds itself: in
// Grafana, the Prometheus data source every panel queries.
const ReservedDashboardVariable = "datasource"

// namedEntry is the name of one entry of a list, with the path of that name.
type namedEntry struct {
	path string
	name string
}

// uniqueNames reports repeated names (at the second and later ones) and, when
// dns is set, names that are not DNS labels. Empty names are left to the
// decoder's required-field check unless they must be DNS labels.
func uniqueNames(r *report, what string, entries []namedEntry, dns bool) {
	first := map[string]string{}
	for _, e := range entries {
		if dns && !isDNSLabel(e.name) {
			r.errorf(e.path, "%q is not a valid name: use %s", e.name, nameRules["dns"].what)
			continue
		}
		if e.name == "" {
			continue
		}
		if p, dup := first[e.name]; dup {
			r.errorf(e.path, "%s %q is already declared at %s", what, e.name, parentPath(p))
			continue
		}
		first[e.name] = e.path
	}
}

// checkMeshNameSpace reports a name given to more than one of the services,
// databases and functions: callers reach all three as http://NAME, so one
// name must mean one thing. The later one in the file is reported.
func checkMeshNameSpace(a *App, r *report) {
	type owner struct{ kind, path string }
	owners := map[string][]owner{}
	add := func(kind, section string, names []string) {
		for _, n := range names {
			owners[n] = append(owners[n], owner{kind, joinPath(section, n)})
		}
	}
	add("service", "services", sortedKeys(a.Services))
	add("database", "databases", sortedKeys(a.Databases))
	add("function", "functions", sortedKeys(a.Functions))
	for _, name := range sortedKeys(owners) {
		list := owners[name]
		if builtinPrincipals[name] {
			for _, o := range list {
				r.keyErrorf(o.path, "%q is reserved: nubo's own %s calls services under that name in the mesh", name, name)
			}
		}
		if len(list) < 2 {
			continue
		}
		sort.SliceStable(list, func(i, j int) bool {
			return posBefore(r.src.files, r.src.atKey(list[i].path), r.src.atKey(list[j].path))
		})
		for _, o := range list[1:] {
			r.keyErrorf(o.path, "%q is already the name of a %s (%s): services, databases and functions share one name space (http://%s)",
				name, list[0].kind, r.src.atKey(list[0].path), name)
		}
	}
}
