package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses an alert or panel expression as written.
func (c *exprChecker) promql(path, expr string) {
	if msg := c.promqlProblem(&rewrite{in: expr, out: expr}); msg != "" {
		c.r.errorf(path, "%s", msg)
	}
}

// promqlProblem parses the rewritten expression and returns the parser's first
// error, placed in what the user wrote, or "".
func (c *exprChecker) promqlProblem(rw *rewrite) string {
	_, err := c.prom.ParseExpr(rw.out)
	if err == nil {
		return ""
	}
	return promqlMessage(rw, err)
}

func promqlMessage(rw *rewrite, err error) string {
	off, ok := promqlErrorOffset(err)
	if !ok {
		return "invalid PromQL: " + strings.TrimPrefix(err.Error(), "parse error: ")
	}
	var pes parser.ParseErrors
	var pe *parser.ParseErr
	msg := "the parser gave no reason"
	switch {
	case errors.As(err, &pes) && pes[0].Err != nil:
		msg = pes[0].Err.Error()
	case errors.As(err, &pe) && pe.Err != nil:
		msg = pe.Err.Error()
	}
	return fmt.Sprintf("invalid PromQL at %s: %s", position(rw.in, rw.origin(off)), msg)
}

// promqlErrorOffset returns where in the parsed text the first error is.
func promqlErrorOffset(err error) (int, bool) {
	var pes parser.ParseErrors
	if errors.As(err, &pes) && len(pes) > 0 {
		return int(pes[0].PositionRange.Start), true
	}
	var pe *parser.ParseErr
	if errors.As(err, &pe) {
		return int(pe.PositionRange.Start), true
	}
	return 0, false
}

// sloTemplateRe matches the {{...}} templates of SLO indicators.
var sloTemplateRe = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)

// sloExpr parses an SLO indicator's PromQL with {{.window}} replaced by a
// window, as the SLO rules are generated.
func (c *exprChecker) sloExpr(path, expr string) {
	if expr == "" {
		return
	}
	rw := &rewrite{in: expr}
	last := 0
	for _, m := range sloTemplateRe.FindAllStringSubmatchIndex(expr, -1) {
		if inner := expr[m[2]:m[3]]; inner != ".window" {
			c.r.errorf(path, "unknown template %s: only {{.window}} is replaced in SLO indicators", expr[m[0]:m[1]])
			return
		}
		rw.keep(expr[last:m[0]])
		rw.replace(m[0], m[1], "5m")
		last = m[1]
	}
	rw.keep(expr[last:])
	if msg := c.promqlProblem(rw); msg != "" {
		c.r.errorf(path, "%s", msg)
	}
}

// dashboard checks the PromQL of a dashboard's panels and the label_values
// queries of its variables.
func (c *exprChecker) dashboard(path string, d *Dashboard) {
	for i, v := range d.Variables {
		c.dashboardVariable(indexPath(path+".variables", i)+".query", v.Query)
	}
	for i, p := range d.Panels {
		for j, t := range p.Targets {
			tpath := indexPath(indexPath(path+".panels", i)+".targets", j) + ".expr"
			if msg := c.grafanaProblem(t.Expr); msg != "" {
				c.r.errorf(tpath, "%s", msg)
			}
		}
	}
}

// grafanaProblem parses PromQL holding Grafana variables. A variable outside
// a string or a range could stand for a name (sum by ($label)) or a number
// (topk($k, ...)): it is a name first, and a number if the parser's error
// falls on it; what still fails is reported as the first attempt's error.
func (c *exprChecker) grafanaProblem(expr string) string {
	asNumber := map[int]bool{}
	var first string
	for {
		rw, ambiguous := substituteGrafana(expr, asNumber)
		_, err := c.prom.ParseExpr(rw.out)
		if err == nil {
			return ""
		}
		if first == "" {
			first = promqlMessage(rw, err)
		}
		flipped := false
		if off, ok := promqlErrorOffset(err); ok {
			for _, i := range ambiguous {
				if s := rw.spans[i]; !asNumber[i] && s.outStart <= off && off < s.outEnd {
					asNumber[i], flipped = true, true
				}
			}
		}
		if !flipped {
			return first
		}
	}
}

var labelValuesRe = regexp.MustCompile(`(?s)^\s*label_values\s*\((.*)\)\s*$`)

// dashboardVariable checks a query variable of the form
// label_values(SELECTOR, LABEL) or label_values(LABEL); Grafana's other query
// functions are passed on as they are.
func (c *exprChecker) dashboardVariable(path, query string) {
	m := labelValuesRe.FindStringSubmatchIndex(query)
	if m == nil {
		return
	}
	argStart, args := m[2], query[m[2]:m[3]]
	selector, label := "", strings.TrimSpace(args)
	if comma := lastTopLevelComma(args); comma >= 0 {
		selector, label = args[:comma], strings.TrimSpace(args[comma+1:])
		if strings.TrimSpace(selector) == "" {
			c.r.errorf(path, "label_values: the series selector before %q is empty", label)
			return
		}
	} else if !isLabelOrVariable(label) {
		// label_values(x{a="b"}) alone: a selector missing its label, or
		// one so broken that its comma went unseen.
		selector, label = args, ""
	}
	if label != "" && !isLabelOrVariable(label) {
		c.r.errorf(path, "label_values: %q is not a label name", label)
		return
	}
	if selector == "" {
		return
	}
	// Spaces in place of "label_values(" keep the parser's positions those
	// of the whole query.
	sel, _ := substituteGrafana(selector, nil)
	rw := &rewrite{in: query, out: strings.Repeat(" ", argStart) + sel.out}
	for _, s := range sel.spans {
		rw.spans = append(rw.spans, span{s.outStart + argStart, s.outEnd + argStart, s.inStart + argStart, s.inEnd + argStart})
	}
	e, err := c.prom.ParseExpr(rw.out)
	if err != nil {
		c.r.errorf(path, "label_values: %s", promqlMessage(rw, err))
		return
	}
	if _, ok := e.(*parser.VectorSelector); !ok {
		c.r.errorf(path, "label_values takes a series selector such as http_requests_total{job=\"api\"}, not %q", strings.TrimSpace(selector))
		return
	}
	if label == "" {
		c.r.errorf(path, "label_values needs the label whose values to list: label_values(%s, LABEL)", strings.TrimSpace(selector))
	}
}

func isLabelOrVariable(s string) bool {
	return labelNameRe.MatchString(s) || grafanaVarRe.FindString(s) == s
}

// lastTopLevelComma returns the index of the last comma outside strings,
// braces and parentheses, or -1.
func lastTopLevelComma(s string) int {
	at, depth := -1, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' && quote != '`' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'' || ch == '`':
			quote = ch
		case ch == '{' || ch == '(' || ch == '[':
			depth++
		case ch == '}' || ch == ')' || ch == ']':
			depth--
		case ch == ',' && depth == 0:
			at = i
		}
	}
	return at
}

// grafanaVarRe matches Grafana's variable syntaxes: ${name}, ${name:format},
// [[name]] and $name.
var grafanaVarRe = regexp.MustCompile(`\$\{(\w+)(?:[:.][^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// Grafana's built-in variables with a known kind of value.
var (
	grafanaDurationVars = map[string]bool{"__interval": true, "__rate_interval": true, "__range": true}
	grafanaNumberVars   = map[string]bool{
		"__interval_ms": true, "__rate_interval_ms": true, "__range_ms": true, "__range_s": true,
		"__from": true, "__to": true,
	}
)

// substituteGrafana replaces Grafana variables with text that parses where
// they stand: the name itself inside a string ({service=~"$service"}), a
// duration inside brackets (rate(x[$__rate_interval])) and after offset, a
// number after @, and elsewhere a name, or a number when asNumber holds the
// index of its span. ambiguous lists the spans of those last variables.
func substituteGrafana(expr string, asNumber map[int]bool) (rw *rewrite, ambiguous []int) {
	rw = &rewrite{in: expr}
	last, depth := 0, 0
	var quote byte
	// scan updates the string and bracket state over expr[from:to].
	scan := func(from, to int) {
		for i := from; i < to; i++ {
			ch := expr[i]
			switch {
			case quote != 0:
				if ch == '\\' && quote != '`' {
					i++
				} else if ch == quote {
					quote = 0
				}
			case ch == '"' || ch == '\'' || ch == '`':
				quote = ch
			case ch == '[':
				depth++
			case ch == ']':
				depth = max(depth-1, 0)
			}
		}
	}
	for _, m := range grafanaVarRe.FindAllStringSubmatchIndex(expr, -1) {
		scan(last, m[0])
		name := ""
		for g := 1; g <= 3; g++ {
			if m[2*g] >= 0 {
				name = expr[m[2*g]:m[2*g+1]]
			}
		}
		var repl string
		before := strings.TrimRight(expr[:m[0]], " \t\n")
		switch {
		case quote != 0:
			repl = name
		case grafanaNumberVars[name]:
			repl = "60"
		case depth > 0 && m[1] < len(expr) && isLetter(expr[m[1]]):
			repl = "5" // [${n}m]: the unit follows
		case depth > 0, grafanaDurationVars[name], endsWithWord(before, "offset"):
			repl = "5m"
		case strings.HasSuffix(before, "@"):
			repl = "60"
		case asNumber[len(rw.spans)]:
			repl, ambiguous = "60", append(ambiguous, len(rw.spans))
		default:
			repl, ambiguous = "v_"+name, append(ambiguous, len(rw.spans))
		}
		rw.keep(expr[last:m[0]])
		rw.replace(m[0], m[1], repl)
		last = m[1]
	}
	rw.keep(expr[last:])
	return rw, ambiguous
}

func isLetter(ch byte) bool { return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' }

// endsWithWord reports whether s ends with the keyword w (any case) standing alone.
func endsWithWord(s, w string) bool {
	if len(s) < len(w) || !strings.EqualFold(s[len(s)-len(w):], w) {
		return false
	}
	if i := len(s) - len(w) - 1; i >= 0 {
		ch := s[i]
		return !(isLetter(ch) || ch >= '0' && ch <= '9' || ch == '_')
	}
	return true
}

// rewrite is an expression with parts replaced (templates, variables) and a
// record of where, so that a parser's position in the result points back
// into what the user wrote.
type rewrite struct {
	in    string // as written
	out   string // as parsed
	spans []span // replaced parts, in order
}

// span is one replaced part: out[outStart:outEnd] stands for in[inStart:inEnd].
type span struct{ outStart, outEnd, inStart, inEnd int }

// keep appends text copied from the input unchanged.
func (rw *rewrite) keep(text string) { rw.out += text }

// replace appends repl in place of in[start:end].
func (rw *rewrite) replace(start, end int, repl string) {
	rw.spans = append(rw.spans, span{len(rw.out), len(rw.out) + len(repl), start, end})
	rw.out += repl
}

// origin maps an offset in out to the offset in in it came from; inside a
// replaced part, the start of what it replaced.
func (rw *rewrite) origin(off int) int {
	delta := 0
	for _, s := range rw.spans {
		if off < s.outStart {
			break
		}
		if off < s.outEnd {
			return s.inStart
		}
		delta = s.inEnd - s.outEnd
	}
	return off + delta
}
