package apitype

import (
	"time"

	"github.com/prometheus/common/model"
)

// AlertState is an alert's state. Rules report pending and firing alerts;
// resolved appears in notifications only.
type AlertState string

// Alert states.
const (
	AlertPending  AlertState = "pending"
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// AlertNameLabel is the label that holds an alert's name.
const AlertNameLabel = "alertname"

// Name is the alert's name.
func (a Alert) Name() string { return a.Labels[AlertNameLabel] }

// Fingerprint identifies the alert by its labels, as Prometheus and
// Alertmanager do.
func (a Alert) Fingerprint() string { return LabelsFingerprint(a.Labels) }

// LabelsFingerprint is the Prometheus fingerprint of a label set.
func LabelsFingerprint(l map[string]string) string {
	ls := make(model.LabelSet, len(l))
	for k, v := range l {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// Alert is one instance of an alerting rule: one series of its expression,
// with the rule's labels and annotations expanded.
type Alert struct {
	// Labels identify the alert; alertname is the rule's name.
	Labels map[string]string `json:"labels"`
	// Annotations are the rule's annotations, expanded.
	Annotations map[string]string `json:"annotations,omitempty"`
	// State is pending or firing.
	State AlertState `json:"state"`
	// Value is the expression's value at the last evaluation, as Prometheus
	// writes it ("0.052", "NaN", "+Inf").
	Value string `json:"value"`
	// ActiveAt is when the expression first returned this series.
	ActiveAt time.Time `json:"activeAt"`
	// FiredAt is when the alert began to fire; zero while pending.
	FiredAt time.Time `json:"firedAt,omitzero"`
	// GeneratorURL links to the expression in the console.
	GeneratorURL string `json:"generatorURL,omitempty"`
}

// Ack records an acknowledgement.
type Ack struct {
	// By names who acknowledged.
	By string `json:"by,omitempty"`
	// At is when.
	At time.Time `json:"at"`
}

// Route says where an alert's notifications go.
type Route struct {
	// Escalation names an escalation policy.
	Escalation string `json:"escalation,omitempty"`
	// Channels are notified directly when the alert fires.
	Channels []string `json:"channels,omitempty"`
}

// ChannelStatus counts a channel's deliveries.
type ChannelStatus struct {
	// Name of the channel.
	Name string `json:"name"`
	// Type of the channel.
	Type string `json:"type"`
	// Sent counts successful deliveries.
	Sent int `json:"sent"`
	// Failed counts failed attempts, retries included.
	Failed int `json:"failed"`
	// Queued counts notifications waiting.
	Queued int `json:"queued"`
	// LastError is the last failure's message.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when it happened.
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// Escalation is an incident's progress through its policy.
type Escalation struct {
	// Policy names the escalation policy.
	Policy string `json:"policy"`
	// Step is the last step run or skipped in the current pass, from 1; 0
	// before the first.
	Step int `json:"step"`
	// Steps is the number of steps of the policy.
	Steps int `json:"steps"`
	// Repeat is the repeat under way, 0 in the first pass.
	Repeat int `json:"repeat"`
	// MaxRepeat is the most repeats of the policy.
	MaxRepeat int `json:"maxRepeat"`
	// Next is when the next step is due; zero once done.
	Next time.Time `json:"next,omitzero"`
	// Done is set once no step is left to run.
	Done bool `json:"done"`
}

// Alerts is everything the notifier knows: the answer of GET /admin/v1/alerts.
type Alerts struct {
	// Alerts are the alert groups with a pending or firing alert, or an
	// open incident, by name.
	Alerts []AlertStatus `json:"alerts"`
	// Silences are the active silences and those expired in the last day.
	Silences []Silence `json:"silences"`
	// Channels count each channel's deliveries, by name.
	Channels []ChannelStatus `json:"channels"`
}

// AlertStatus is one alert name: its alerts, incident and escalation.
type AlertStatus struct {
	// Name is the alert name.
	Name string `json:"name"`
	// State is firing when any alert fires, else pending.
	State AlertState `json:"state"`
	// Severity is the severity label, when all alerts share one.
	Severity string `json:"severity,omitempty"`
	// ActiveAt is when the oldest alert became active.
	ActiveAt time.Time `json:"activeAt"`
	// FiredAt is when the incident opened; zero while only pending.
	FiredAt time.Time `json:"firedAt,omitzero"`
	// Silenced is set when every firing alert is silenced.
	Silenced bool `json:"silenced"`
	// Acknowledged is the incident's acknowledgement, if any.
	Acknowledged *Ack `json:"acknowledged,omitempty"`
	// Route says where notifications go.
	Route Route `json:"route"`
	// Escalation is the incident's escalation, if its route has a policy.
	Escalation *Escalation `json:"escalation,omitempty"`
	// Notified lists the channels notified during the incident.
	Notified []string `json:"notified,omitempty"`
	// Instances are the alerts, oldest first.
	Instances []AlertInstance `json:"instances"`
}

// AlertInstance is one alert of a group.
type AlertInstance struct {
	Alert
	// Fingerprint identifies the alert by its labels.
	Fingerprint string `json:"fingerprint"`
	// SilencedBy is the ID of the silence that mutes it.
	SilencedBy string `json:"silencedBy,omitempty"`
}

// Silence mutes the alerts its matchers all match, from StartsAt to EndsAt.
type Silence struct {
	// ID identifies the silence.
	ID string `json:"id"`
	// Matchers, written as PromQL label matchers: alertname="x", severity=~"crit.*".
	Matchers string `json:"matchers"`
	// StartsAt is when it was created.
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when it ends (or ended, if expired early).
	EndsAt time.Time `json:"endsAt"`
	// CreatedBy names who created it.
	CreatedBy string `json:"createdBy,omitempty"`
	// Comment says why.
	Comment string `json:"comment,omitempty"`
	// State is active or expired, at the time of the answer.
	State string `json:"state"`
}
