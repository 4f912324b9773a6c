package spec

// validator is one named check over a decoded, defaulted spec.
type validator struct {
	name  string
	check func(*App, *report)
}

// validators run in order after decoding; each reports through r and never
// stops the others.
var validators = []validator{
	{"names", checkNames},
	{"references", checkReferences},
	{"interpolations", checkInterpolations},
	{"dependencies", checkDependencies},
	{"semantics", checkSemantics},
	{"expressions", checkExpressions},
}
