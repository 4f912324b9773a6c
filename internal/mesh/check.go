package mesh

// Check compiles cfg as Update would, without applying it: the first phase
// of the engine's two-phase reload. An Update of the same cfg then fails
// only for reasons outside the spec (an ingress port taken meanwhile).
func Check(cfg Config) error {
	cfg.fillDefaults()
	_, err := compile(cfg)
	return err
}
