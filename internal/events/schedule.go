package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"
)

// ScheduleType is the CloudEvents type of every schedule firing.
const ScheduleType = "nubo.schedule"

// toSchedule labels the published metric of schedule firings.
const toSchedule DestinationKind = "schedule"

// cronParser reads the 5-field expressions and the descriptors (@every
// 5m, @hourly) of the spec; seconds are not a field.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// startSchedules starts a cron that fires every enabled schedule whose
// target runs. It runs only while nubo does: a tick missed while nubo was
// down is not replayed.
func (d *Dispatcher) startSchedules() (*cron.Cron, error) {
	var c *cron.Cron
	for _, r := range d.routes {
		if r.kind != "schedule" {
			continue
		}
		s := d.app.Schedules[r.name]
		sched, err := cronParser.Parse(s.Expression)
		if err != nil {
			return nil, fmt.Errorf("events: schedule %q: expression %q: %w", r.name, s.Expression, err)
		}
		data, err := json.Marshal(s.Payload)
		if err != nil {
			return nil, fmt.Errorf("events: schedule %q: payload: %w", r.name, err)
		}
		if s.Payload == nil {
			data = nil
		}
		if c == nil {
			c = cron.New(cron.WithParser(cronParser), cron.WithLocation(time.Local))
		}
		name := r.name
		c.Schedule(sched, cron.FuncJob(func() { d.fire(name, data) }))
	}
	if c != nil {
		c.Start()
	}
	return c, nil
}

// fire publishes one firing of a schedule. Its id is the schedule's name
// and the second of the tick, and JetStream deduplicates by it: several
// dispatchers running the same spec (replicas in Kubernetes) fire a cron
// expression once.
func (d *Dispatcher) fire(name string, data []byte) {
	tick := time.Now().UTC().Truncate(time.Second)
	ev := event.New(event.CloudEventsVersionV1)
	ev.SetType(ScheduleType)
	ev.SetSource("nubo/schedules/" + name)
	ev.SetSubject(name)
	ev.SetID(name + "@" + tick.Format(time.RFC3339))
	ev.SetTime(tick)
	if data != nil {
		ev.SetDataContentType(event.ApplicationJSON)
		ev.DataEncoded = data
	}
	msg := encodeEvent(d.n.scheduleSubject(name), &ev)
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID())
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	out, err := d.store(ctx, []*nats.Msg{msg})
	if err != nil {
		d.log.Error("schedule did not fire", "schedule", name, "err", err)
		return
	}
	if !out[0].Duplicate {
		d.metrics.published(Destination{Kind: toSchedule, Name: name}).Inc()
	}
	d.log.Debug("schedule fired", "schedule", name, "id", ev.ID())
}
