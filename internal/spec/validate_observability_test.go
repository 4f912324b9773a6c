package spec

import "testing"

func TestObservabilitySemantics(t *testing.T) {
	runDiagCases(t, []diagCase{
		{"sample rate", `name: t
observability:
  tracing: {sampleRate: 1.5}
`, []string{
			`t.yaml:3:25: observability.tracing.sampleRate: sampleRate 1.5 is not within 0..1`,
		}},
		{"channels", `name: t
observability:
  channels:
    hook: {type: webhook}
    chat: {type: slack}
    mail: {type: email}
    creds: {type: webhook, url: "https://user:hunter2@example.com/x"}
    pw: {type: email, to: [a@b.c], smtp: {host: h, password: hunter2}}
    ok: {type: webhook, url: "https://user:${secrets.x.y}@example.com/x"}
`, []string{
			`t.yaml:4:5: observability.channels.hook: a webhook channel needs url`,
			`t.yaml:5:5: observability.channels.chat: a slack channel needs url`,
			`t.yaml:6:5: observability.channels.mail: an email channel needs smtp`,
			`t.yaml:6:5: observability.channels.mail: an email channel needs to`,
			`t.yaml:9:30: observability.channels.ok.url: ${secrets.x.y}: unknown secret "x" (no secret is declared)`,
			`t.yaml:7:33: observability.channels.creds.url: warning: ` + inlineSecretMessage,
			`t.yaml:8:62: observability.channels.pw.smtp.password: warning: ` + inlineSecretMessage,
		}},
		{"escalation", `name: t
observability:
  channels:
    log: {type: log}
  escalation:
    empty: {steps: []}
    quiet: {steps: [{channels: []}], maxRepeat: -1}
`, []string{
			`t.yaml:6:20: observability.escalation.empty.steps: an escalation policy needs at least one step`,
			`t.yaml:7:32: observability.escalation.quiet.steps[0].channels: a step needs at least one channel`,
			`t.yaml:7:49: observability.escalation.quiet.maxRepeat: maxRepeat must be at least 0, not -1`,
		}},
		{"slos", `name: t
services:
  users: {run: x}
observability:
  slos:
    a:
      objective: 100
      indicators:
        - {name: r, type: ratio, errors: up}
        - {name: l, type: latency, weight: 0}
    b:
      objective: 99
      indicators: []
`, []string{
			`t.yaml:7:18: observability.slos.a.objective: objective 100 must be more than 0 and less than 100 (a percent)`,
			`t.yaml:9:12: observability.slos.a.indicators[0]: a ratio indicator needs total`,
			`t.yaml:10:12: observability.slos.a.indicators[1]: a latency indicator needs service and threshold`,
			`t.yaml:10:44: observability.slos.a.indicators[1].weight: weight 0 must be more than 0`,
			`t.yaml:13:19: observability.slos.b.indicators: an SLO needs at least one indicator`,
		}},
	})
}
