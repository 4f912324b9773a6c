package spec

func checkExpressions(a *App, r *report) {}
