package spec

func checkNames(a *App, r *report)          {}
func checkReferences(a *App, r *report)     {}
func checkInterpolations(a *App, r *report) {}
func checkDependencies(a *App, r *report)   {}
func checkSemantics(a *App, r *report)      {}
