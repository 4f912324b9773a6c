package apitype

import (
	"time"
)

// SLO is an SLO's state, read from its recorded series.
type SLO struct {
	// Name of the SLO.
	Name string `json:"name"`
	// Description from the spec.
	Description string `json:"description,omitempty"`
	// Objective in percent.
	Objective float64 `json:"objective"`
	// Window of the objective, as PromQL writes it (30d).
	Window string `json:"window"`
	// SLI is the share of good events over the window, 0 to 1; null
	// without data.
	SLI *float64 `json:"sli"`
	// Indicators are each indicator's SLI over the window.
	Indicators []Indicator `json:"indicators"`
	// ErrorBudget is the budget over the window.
	ErrorBudget Budget `json:"errorBudget"`
	// BurnRates over each window, shortest first, the SLO's window last.
	BurnRates []BurnRate `json:"burnRates"`
	// Alerts are the states of the page and ticket alerts.
	Alerts []SLOAlert `json:"alerts"`
	// Time is when the figures were read.
	Time time.Time `json:"time"`
}

// Indicator is one indicator's SLI.
type Indicator struct {
	// Name of the indicator.
	Name string `json:"name"`
	// Type is ratio or latency.
	Type string `json:"type"`
	// Weight in the combination.
	Weight float64 `json:"weight"`
	// SLI over the SLO's window; null without data.
	SLI *float64 `json:"sli"`
}

// Budget is an error budget: the share of events allowed to be bad.
type Budget struct {
	// Total is the allowed error ratio, 1 - objective.
	Total float64 `json:"total"`
	// TotalSeconds is the budget as time: how long the service may be
	// fully down in a window.
	TotalSeconds float64 `json:"totalSeconds"`
	// Consumed is the share of the budget spent over the window; more than
	// 1 when overspent. Null without data.
	Consumed *float64 `json:"consumed"`
	// Remaining is 1 - Consumed; negative when overspent.
	Remaining *float64 `json:"remaining"`
	// RemainingSeconds is Remaining as time.
	RemainingSeconds *float64 `json:"remainingSeconds"`
}

// BurnRate is how fast the budget burns over a window: 1 spends it in
// exactly the SLO's window.
type BurnRate struct {
	// Window, as PromQL writes it.
	Window string `json:"window"`
	// Rate; null without data.
	Rate *float64 `json:"rate"`
}

// SLOAlert is the state of one burn-rate alert.
type SLOAlert struct {
	// Class is page or ticket.
	Class string `json:"class"`
	// Name is the alert's name.
	Name string `json:"name"`
	// State is inactive, pending or firing.
	State string `json:"state"`
}
