package alerting

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/nubo-dev/nubo/internal/apitype"
)

// Silence is apitype.Silence: the wire type lives there.
type Silence = apitype.Silence

// silence is a Silence with its parsed matchers.
type silence struct {
	Silence
	matchers []*labels.Matcher
	// ended is set once the silence's end has been applied: the first
	// pass after it re-notifies what it muted.
	ended bool
}

// expiredRetention is how long an expired silence is still listed.
const expiredRetention = 24 * time.Hour

// matcherRe is one matcher: a label name, an operator and a value, quoted or
// not.
var matcherRe = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

// ParseMatchers parses what `nubo alerts silence` takes: an alert name
// (high_error_rate), or comma-separated matchers as in PromQL or
// Alertmanager, with or without braces and quotes, where a bare name stands
// for alertname=NAME: high_error_rate,severity=~"crit.*".
func ParseMatchers(text string) ([]*labels.Matcher, error) {
	s := strings.TrimSpace(text)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return nil, errors.New("no matchers: give an alert name or NAME=VALUE matchers")
	}
	if !strings.ContainsAny(s, "=!~,\"") {
		m, err := labels.NewMatcher(labels.MatchEqual, AlertNameLabel, s)
		return []*labels.Matcher{m}, err
	}
	var out []*labels.Matcher
	for _, part := range splitMatchers(s) {
		if name := strings.TrimSpace(part); name != "" && !strings.ContainsAny(name, "=!~\"") {
			// A bare name among matchers is the alert's name.
			m, err := labels.NewMatcher(labels.MatchEqual, AlertNameLabel, name)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
			continue
		}
		sub := matcherRe.FindStringSubmatch(part)
		if sub == nil {
			return nil, fmt.Errorf("matcher %q: want NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX", strings.TrimSpace(part))
		}
		val := sub[3]
		if strings.HasPrefix(val, `"`) {
			v, err := strconv.Unquote(val)
			if err != nil {
				return nil, fmt.Errorf("matcher %q: bad quoted value: %w", strings.TrimSpace(part), err)
			}
			val = v
		}
		typ := map[string]labels.MatchType{"=": labels.MatchEqual, "!=": labels.MatchNotEqual, "=~": labels.MatchRegexp, "!~": labels.MatchNotRegexp}[sub[2]]
		m, err := labels.NewMatcher(typ, sub[1], val)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: %w", strings.TrimSpace(part), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// splitMatchers splits at commas outside double quotes.
func splitMatchers(s string) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if rest := s[start:]; strings.TrimSpace(rest) != "" || len(parts) == 0 {
		parts = append(parts, rest)
	}
	return parts
}

func matchersText(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ", ")
}

func (s *silence) matches(l map[string]string) bool {
	for _, m := range s.matchers {
		if !m.Matches(l[m.Name]) {
			return false
		}
	}
	return true
}

func (s *silence) active(now time.Time) bool { return now.Before(s.EndsAt) }

// silencedBy returns the first active silence matching l, or nil. Lock held.
func (n *Notifier) silencedBy(l map[string]string, now time.Time) *silence {
	for _, id := range sortedKeys(n.silences) {
		if s := n.silences[id]; s.active(now) && s.matches(l) {
			return s
		}
	}
	return nil
}

// AddSilence mutes the alerts matchers match (see ParseMatchers) from now for
// d. Firing alerts it matches stop notifying at once.
func (n *Notifier) AddSilence(matchers string, d time.Duration, by, comment string, now time.Time) (Silence, error) {
	ms, err := ParseMatchers(matchers)
	if err != nil {
		return Silence{}, err
	}
	if d <= 0 {
		return Silence{}, fmt.Errorf("silence duration %s: must be more than 0", d)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return Silence{}, err
	}
	s := &silence{Silence: Silence{
		ID: hex.EncodeToString(id), Matchers: matchersText(ms), StartsAt: now, EndsAt: now.Add(d),
		CreatedBy: by, Comment: comment,
	}, matchers: ms}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.silences[s.ID] = s
	n.log.Info("silence added", "id", s.ID, "matchers", s.Matchers, "until", s.EndsAt, "by", by)
	n.silencesChanged(now)
	return s.view(now), nil
}

// ExpireSilence ends a silence now; the alerts it muted notify again.
func (n *Notifier) ExpireSilence(id string, now time.Time) (Silence, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.silences[id]
	if s == nil {
		return Silence{}, fmt.Errorf("no silence %q: %w", id, ErrNotFound)
	}
	if s.active(now) {
		s.EndsAt, s.ended = now, true
		n.log.Info("silence expired", "id", id, "matchers", s.Matchers)
		n.silencesChanged(now)
	}
	return s.view(now), nil
}

// Silences lists the active silences and those expired in the last day,
// newest first.
func (n *Notifier) Silences(now time.Time) []Silence {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.silenceViews(now)
}

func (n *Notifier) silenceViews(now time.Time) []Silence {
	out := []Silence{}
	for _, s := range n.silences {
		out = append(out, s.view(now))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.After(out[j].StartsAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (s *silence) view(now time.Time) Silence {
	v := s.Silence
	v.State = "expired"
	if s.active(now) {
		v.State = "active"
	}
	return v
}

// silencesChanged applies the silences to every group and saves them. Lock
// held.
func (n *Notifier) silencesChanged(now time.Time) {
	for name, g := range n.groups {
		n.reconcile(g, now)
		if len(g.alerts) == 0 && g.inc == nil {
			delete(n.groups, name)
		}
	}
	if err := n.saveSilences(); err != nil {
		n.log.Error("save silences", "err", err)
	}
	n.kickLocked()
}

// expireSilences applies the silences that ended by now, and forgets those
// expired long ago. Lock held.
func (n *Notifier) expireSilences(now time.Time) {
	ended := false
	for id, s := range n.silences {
		if !s.active(now) && !s.ended {
			ended, s.ended = true, true
		}
		if now.Sub(s.EndsAt) > expiredRetention {
			delete(n.silences, id)
		}
	}
	if ended {
		n.silencesChanged(now)
	}
}

// silencesFile is where silences are kept across restarts.
const silencesFile = "silences.json"

func (n *Notifier) loadSilences() error {
	if n.cfg.Dir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(n.cfg.Dir, silencesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("alerting: load silences: %w", err)
	}
	var saved []Silence
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("alerting: load silences from %s: %w", filepath.Join(n.cfg.Dir, silencesFile), err)
	}
	for _, s := range saved {
		ms, err := ParseMatchers(s.Matchers)
		if err != nil {
			n.log.Warn("saved silence dropped", "id", s.ID, "err", err)
			continue
		}
		s.State = ""
		sil := &silence{Silence: s, matchers: ms}
		sil.ended = !sil.active(time.Now())
		n.silences[s.ID] = sil
	}
	return nil
}

// saveSilences writes the silences to a temporary file renamed over the old
// one, so that a crash leaves either version whole. Lock held.
func (n *Notifier) saveSilences() error {
	if n.cfg.Dir == "" {
		return nil
	}
	list := make([]Silence, 0, len(n.silences))
	for _, id := range sortedKeys(n.silences) {
		s := n.silences[id].Silence
		s.State = ""
		list = append(list, s)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.cfg.Dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(n.cfg.Dir, silencesFile+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(n.cfg.Dir, silencesFile))
}
