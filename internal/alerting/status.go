package alerting

import (
	"sort"
	"time"
)

// Status is everything the notifier knows: the answer of GET /admin/v1/alerts.
type Status struct {
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
	State State `json:"state"`
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
	Escalation *EscalationStatus `json:"escalation,omitempty"`
	// Notified lists the channels notified during the incident.
	Notified []string `json:"notified,omitempty"`
	// Instances are the alerts, oldest first.
	Instances []Instance `json:"instances"`
}

// Instance is one alert of a group.
type Instance struct {
	Alert
	// Fingerprint identifies the alert by its labels.
	Fingerprint string `json:"fingerprint"`
	// SilencedBy is the ID of the silence that mutes it.
	SilencedBy string `json:"silencedBy,omitempty"`
}

// Status returns the alerts, silences and channels as of now.
func (n *Notifier) Status(now time.Time) Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{Alerts: []AlertStatus{}, Silences: n.silenceViews(now), Channels: []ChannelStatus{}}
	for _, name := range sortedKeys(n.groups) {
		st.Alerts = append(st.Alerts, n.status(n.groups[name], now))
	}
	for _, name := range sortedKeys(n.deliverers) {
		st.Channels = append(st.Channels, n.deliverers[name].status())
	}
	return st
}

// Alerts returns the alert groups as of now, by name.
func (n *Notifier) Alerts(now time.Time) []AlertStatus {
	return n.Status(now).Alerts
}

// status describes one group. Lock held.
func (n *Notifier) status(g *group, now time.Time) AlertStatus {
	s := AlertStatus{Name: g.name, State: StatePending, Route: n.route(g.name), Instances: []Instance{}}
	severities := map[string]bool{}
	firing, silenced := 0, 0
	for fp, a := range g.alerts {
		in := Instance{Alert: a, Fingerprint: fp}
		if sil := n.silencedBy(a.Labels, now); sil != nil {
			in.SilencedBy = sil.ID
		}
		if a.State == StateFiring {
			s.State = StateFiring
			firing++
			if in.SilencedBy != "" {
				silenced++
			}
		}
		if s.ActiveAt.IsZero() || a.ActiveAt.Before(s.ActiveAt) {
			s.ActiveAt = a.ActiveAt
		}
		severities[a.Labels["severity"]] = true
		s.Instances = append(s.Instances, in)
	}
	sort.Slice(s.Instances, func(i, j int) bool {
		a, b := s.Instances[i], s.Instances[j]
		if !a.ActiveAt.Equal(b.ActiveAt) {
			return a.ActiveAt.Before(b.ActiveAt)
		}
		return labelText(a.Labels) < labelText(b.Labels)
	})
	if len(severities) == 1 {
		for sev := range severities {
			s.Severity = sev
		}
	}
	s.Silenced = firing > 0 && silenced == firing
	if inc := g.inc; inc != nil {
		s.State = StateFiring
		s.FiredAt = inc.opened
		s.Acknowledged = inc.ack
		s.Notified = append([]string(nil), inc.notified...)
		if inc.esc != nil {
			s.Escalation = inc.esc.status(n.cfg.Escalation[inc.esc.policy])
		}
	}
	return s
}
