package alerting

import (
	"fmt"
	"time"

	"github.com/nubo-dev/nubo/internal/apitype"
	"github.com/nubo-dev/nubo/internal/spec"
)

// escalation is the progress of one incident through its policy.
type escalation struct {
	policy string
	step   int       // index of the next step
	pass   int       // repeats begun, 0 in the first pass
	ran    int       // steps run or skipped in the current pass
	next   time.Time // when the next step is due
	done   bool
}

// runDue runs every escalation step due by now, and returns when the next
// one (or the end of a silence) is due; zero when nothing is. Lock held.
func (n *Notifier) runDue(now time.Time) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, name := range sortedKeys(n.groups) {
		g := n.groups[name]
		if g.inc == nil || g.inc.esc == nil {
			continue
		}
		e := g.inc.esc
		p := n.cfg.Escalation[e.policy]
		if p == nil {
			e.done = true // the policy went away in a reload
			continue
		}
		for !e.done && !e.next.After(now) {
			n.runStep(g, p, e)
		}
		if !e.done {
			earlier(e.next)
		}
	}
	for _, s := range n.silences {
		if s.EndsAt.After(now) {
			earlier(s.EndsAt)
		}
	}
	return next
}

// runStep runs (or, when acknowledged and the step wants no
// acknowledgement, skips) the next step, then schedules the one after.
func (n *Notifier) runStep(g *group, p *spec.EscalationPolicy, e *escalation) {
	st := p.Steps[e.step]
	if st.Condition == "unacknowledged" && g.inc.ack != nil {
		n.log.Debug("escalation step skipped: acknowledged", "alert", g.name, "policy", e.policy, "step", e.step+1)
	} else {
		what := fmt.Sprintf("escalation %s, step %d of %d", e.policy, e.step+1, len(p.Steps))
		if e.pass > 0 {
			what += fmt.Sprintf(", repeat %d of %d", e.pass, p.MaxRepeat)
		}
		n.notify(g, st.Channels, StateFiring, g.firingAlerts(), what)
		g.inc.notified = appendNew(g.inc.notified, st.Channels...)
	}
	e.step++
	e.ran++
	if e.step == len(p.Steps) {
		if !p.Repeat || e.pass >= p.MaxRepeat || g.inc.ack != nil {
			e.done = true
			return
		}
		e.pass++
		e.step, e.ran = 0, 0
	}
	e.next = e.next.Add(p.Steps[e.step].Delay.Duration)
	e.settle(p, g.inc.ack != nil)
}

// settle ends an acknowledged escalation once no step of the current pass
// would run any more.
func (e *escalation) settle(p *spec.EscalationPolicy, acked bool) {
	if e.done || !acked || p == nil {
		return
	}
	for _, st := range p.Steps[e.step:] {
		if st.Condition != "unacknowledged" {
			return
		}
	}
	e.done = true
}

// EscalationStatus is apitype.Escalation: the wire type lives there.
type EscalationStatus = apitype.Escalation

func (e *escalation) status(p *spec.EscalationPolicy) *EscalationStatus {
	s := &EscalationStatus{Policy: e.policy, Step: e.ran, Repeat: e.pass, Done: e.done}
	if p != nil {
		s.Steps = len(p.Steps)
		if p.Repeat {
			s.MaxRepeat = p.MaxRepeat
		}
	}
	if !e.done {
		s.Next = e.next
	}
	return s
}
