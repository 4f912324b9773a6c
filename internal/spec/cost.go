package spec

// Cost is the price list nubo turns what the system uses into cost with:
// the cloud's prices, so that a laptop run shows what production would
// cost. Every price is optional; an unset one costs nothing.
type Cost struct {
	// Currency names the prices' currency, for display. Default USD.
	Currency string `yaml:"currency"`
	// VCPUHour is the price of one vCPU for an hour (services' CPU use).
	VCPUHour float64 `yaml:"vcpuHour" min:"0"`
	// MemoryGiBHour is the price of one GiB of memory for an hour (services' resident memory).
	MemoryGiBHour float64 `yaml:"memoryGiBHour" min:"0"`
	// FunctionGBSecond is the price of a function's GB-second (memory times duration).
	FunctionGBSecond float64 `yaml:"functionGBSecond" min:"0"`
	// MillionInvocations is the price of a million function invocations.
	MillionInvocations float64 `yaml:"millionInvocations" min:"0"`
	// MillionRequests is the price of a million API gateway requests.
	MillionRequests float64 `yaml:"millionRequests" min:"0"`
	// MonthlyBudget fires the alert cost_over_budget when the projected month costs more; 0: no alert.
	MonthlyBudget float64 `yaml:"monthlyBudget" min:"0"`
}
