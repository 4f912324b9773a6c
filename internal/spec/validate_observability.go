package spec

// observabilitySemantics checks tracing, channels, escalation and SLOs.
// References between them are checked by checkReferences.
func observabilitySemantics(r *report, o *Observability) {
	if sr := o.Tracing.SampleRate; sr != nil && (*sr < 0 || *sr > 1) {
		r.errorf("observability.tracing.sampleRate", "sampleRate %g is not within 0..1", *sr)
	}
	for i, s := range o.Metrics.Scrape {
		checkPort(r, indexPath("observability.metrics.scrape", i)+".port", s.Port)
	}
	for _, name := range sortedKeys(o.Channels) {
		channelSemantics(r, joinPath("observability.channels", name), o.Channels[name])
	}
	for _, name := range sortedKeys(o.Escalation) {
		p, e := joinPath("observability.escalation", name), o.Escalation[name]
		if len(e.Steps) == 0 {
			r.errorf(p+".steps", "an escalation policy needs at least one step")
		}
		for i, st := range e.Steps {
			if len(st.Channels) == 0 {
				r.errorf(indexPath(p+".steps", i)+".channels", "a step needs at least one channel")
			}
		}
		checkAtLeast(r, p+".maxRepeat", "maxRepeat", e.MaxRepeat, 0)
	}
	for _, name := range sortedKeys(o.SLOs) {
		sloSemantics(r, joinPath("observability.slos", name), o.SLOs[name])
	}
}

func channelSemantics(r *report, p string, c *Channel) {
	switch c.Type {
	case "webhook", "slack":
		if c.URL == "" {
			r.objectErrorf(p, "a %s channel needs url", c.Type)
		}
	case "email":
		if len(c.To) == 0 {
			r.objectErrorf(p, "an email channel needs to")
		}
		if c.SMTP == nil {
			r.objectErrorf(p, "an email channel needs smtp")
		}
	}
	if c.URL != "" {
		checkURLCredentials(r, p+".url", c.URL)
	}
	if s := c.SMTP; s != nil {
		checkPort(r, p+".smtp.port", s.Port)
		if isInlineValue(s.Password) {
			r.warnf(p+".smtp.password", inlineSecretMessage)
		}
	}
}

func sloSemantics(r *report, p string, s *SLO) {
	if s.Objective <= 0 || s.Objective >= 100 {
		r.errorf(p+".objective", "objective %g must be more than 0 and less than 100 (a percent)", s.Objective)
	}
	if len(s.Indicators) == 0 {
		r.errorf(p+".indicators", "an SLO needs at least one indicator")
	}
	for i, ind := range s.Indicators {
		ip := indexPath(p+".indicators", i)
		var missing []string
		switch ind.Type {
		case "ratio":
			if ind.Errors == "" {
				missing = append(missing, "errors")
			}
			if ind.Total == "" {
				missing = append(missing, "total")
			}
		case "latency":
			if ind.Service == "" {
				missing = append(missing, "service")
			}
			if !ind.Threshold.IsSet() {
				missing = append(missing, "threshold")
			}
		}
		if len(missing) > 0 {
			r.objectErrorf(ip, "a %s indicator needs %s", ind.Type, joinWords(missing, "and"))
		}
		if ind.Weight != nil && *ind.Weight <= 0 {
			r.errorf(ip+".weight", "weight %g must be more than 0", *ind.Weight)
		}
	}
}
