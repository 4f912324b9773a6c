package rulegroups

import (
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// BuiltinGroup names the group of nubo's own alerts, evaluated by `nubo up`
// whatever the spec says.
const BuiltinGroup = "nubo"

// BrokerDegradedAlert fires when the embedded broker stayed degraded by a
// store failure (internal/broker's nubo_broker_degraded) for a minute: it
// normally restarts itself within seconds of file descriptors being free,
// so a minute means publishes are still refused.
const BrokerDegradedAlert = "broker_degraded"

// builtinRules are the alerts on nubo's own health in `nubo up`. In a
// cluster there is no embedded broker: the NATS deployment is watched by
// its own probes and exporters.
func builtinRules() []rulefmt.Rule {
	return []rulefmt.Rule{{
		Alert:  BrokerDegradedAlert,
		Expr:   `nubo_broker_degraded > 0`,
		For:    model.Duration(time.Minute),
		Labels: map[string]string{"severity": "critical"},
		Annotations: map[string]string{
			"summary": "The embedded broker has refused writes for over a minute (nubo status says why); events and queue messages are not accepted until it heals",
		},
	}}
}
