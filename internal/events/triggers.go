package events

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"sort"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/nubo-dev/nubo/internal/spec"
)

// A function's triggers are what they mean for the dispatcher: a topic
// trigger is a subscription, a schedule trigger a schedule, an event trigger
// a rule on the bus, and a queue trigger a pull worker (runQueueTriggers).
// The dispatcher runs them when its Deliverer is a FunctionDeliverer; a
// function's own retries and dead-letter queue apply inside
// DeliverToFunction, so a function target is never retried twice.

// withFunctionTriggers returns app with each enabled trigger of a function
// turned into the route it amounts to. The spec itself is not changed.
func withFunctionTriggers(app *spec.App) *spec.App {
	out := *app
	out.Topics = maps.Clone(app.Topics)
	out.Schedules = maps.Clone(app.Schedules)
	out.Rules = maps.Clone(app.Rules)
	if out.Topics == nil {
		out.Topics = map[string]*spec.Topic{}
	}
	if out.Schedules == nil {
		out.Schedules = map[string]*spec.Schedule{}
	}
	if out.Rules == nil {
		out.Rules = map[string]*spec.Rule{}
	}
	for _, fname := range sortedKeys(app.Functions) {
		f := app.Functions[fname]
		if f.Run == "" {
			continue
		}
		target := spec.Target{Kind: spec.TargetFunction, Name: fname, Text: "function:" + fname}
		for i, t := range f.Triggers {
			if t.Enabled != nil && !*t.Enabled {
				continue
			}
			name := TriggerName(fname, i)
			switch {
			case t.Topic != "":
				topic := *out.Topics[t.Topic]
				topic.Subscriptions = append(append([]*spec.Subscription(nil), topic.Subscriptions...),
					&spec.Subscription{Endpoint: target, Filter: t.Filter, Protocol: "function", BatchSize: max(t.BatchSize, 1)})
				out.Topics[t.Topic] = &topic
			case t.Schedule != "":
				out.Schedules[name] = &spec.Schedule{Expression: t.Schedule, Target: target, Enabled: ptrTrue()}
			case t.Event != nil:
				f := &spec.Filter{Exact: map[string]string{}}
				if t.Event.Source != "" {
					f.Exact["source"] = t.Event.Source
				}
				if t.Event.Type != "" {
					f.Exact["type"] = t.Event.Type
				}
				if t.Filter != nil {
					f = &spec.Filter{All: []*spec.Filter{f, t.Filter}}
				}
				if len(f.Exact) == 0 && f.All == nil {
					f = nil
				}
				out.Rules[name] = &spec.Rule{Filter: f, Target: target, Enabled: ptrTrue()}
			}
		}
	}
	return &out
}

// TriggerName names the route a function's trigger i becomes: a DNS label,
// unique per function and trigger, short enough even for long function
// names.
func TriggerName(function string, i int) string {
	name := fmt.Sprintf("fn-%s-trigger-%d", function, i)
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(function))
	return fmt.Sprintf("fn-%.40s-%08x-%d", function, h.Sum32(), i)
}

func ptrTrue() *bool { t := true; return &t }

// queueTrigger is a function's queue trigger.
type queueTrigger struct {
	function, queue string
	batch           int
	// workers is how many batches may be in flight at once: the pool's
	// instances times each one's concurrency, as Knative's and Lambda's
	// queue pollers scale, so a queue drains as fast as the function can
	// take it.
	workers int
}

// maxQueueWorkers bounds one trigger's workers whatever the spec says.
const maxQueueWorkers = 64

func queueTriggers(app *spec.App) []queueTrigger {
	var out []queueTrigger
	names := make([]string, 0, len(app.Functions))
	for n := range app.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, fname := range names {
		f := app.Functions[fname]
		if f.Run == "" {
			continue
		}
		for _, t := range f.Triggers {
			if t.Queue == "" || (t.Enabled != nil && !*t.Enabled) {
				continue
			}
			workers := min(max(f.Scaling.Max, 1)*max(f.Concurrency, 1), maxQueueWorkers)
			out = append(out, queueTrigger{function: fname, queue: t.Queue, batch: max(t.BatchSize, 1), workers: workers})
		}
	}
	return out
}

// settleTimeout bounds an ack or a nack, which run on a context of their
// own: a stop must not turn a finished invocation into a redelivery.
const settleTimeout = 5 * time.Second

// runQueueTrigger receives up to batch events, invokes the function, and
// acknowledges them when it took them, or gives them back with the error:
// the queue's visibility and deadLetter then apply, as for any consumer.
// Receiving stops with ctx; an invocation under way runs on deliverCtx,
// which a stop cancels only when its grace period is over.
func (d *Dispatcher) runQueueTrigger(ctx, deliverCtx context.Context, fd FunctionDeliverer, t queueTrigger) {
	for ctx.Err() == nil {
		ds, err := d.Receive(ctx, t.queue, t.batch, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("queue trigger: receive failed", "function", t.function, "queue", t.queue, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if len(ds) == 0 {
			continue
		}
		evs := make([]*event.Event, len(ds))
		for i, dl := range ds {
			evs[i] = dl.Event
		}
		err = fd.DeliverToFunction(deliverCtx, t.function, evs)
		if deliverCtx.Err() != nil {
			// The stop's grace ran out mid-invocation: not a failure of
			// the events. Left unsettled, the queue's visibility timeout
			// delivers them again after the next start.
			return
		}
		settleCtx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		for _, dl := range ds {
			var serr error
			if err == nil {
				serr = d.Ack(settleCtx, t.queue, dl.ID)
			} else {
				serr = d.Nack(settleCtx, t.queue, dl.ID, err.Error(), 0)
			}
			if serr != nil {
				// The queue's visibility timeout delivers it again.
				d.log.Warn("queue trigger: settle failed", "function", t.function, "queue", t.queue, "err", serr)
			}
		}
		cancel()
	}
}
