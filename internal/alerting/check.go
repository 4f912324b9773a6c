package alerting

// Check validates cfg as New and Reconfigure do, without applying it: the
// first phase of the engine's two-phase reload.
func Check(cfg Config) error {
	_, err := withDefaults(cfg)
	return err
}
