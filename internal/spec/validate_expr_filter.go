package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/antlr/antlr4/runtime/Go/antlr"
	"github.com/cloudevents/sdk-go/sql/v2/gen"
	cesql "github.com/cloudevents/sdk-go/sql/v2/parser"
)

// ceAttributeRe is the CloudEvents rule for attribute names: lower-case ASCII
// letters and digits (spec v1.0.2, "Attribute Naming Convention").
var ceAttributeRe = regexp.MustCompile(`^[a-z0-9]+$`)

// filter checks a subscription filter and the filters nested in it: each sets
// a dialect, names attributes as CloudEvents does, and its sql and jq compile.
func (c *exprChecker) filter(path string, f *Filter) {
	if f == nil {
		return
	}
	if len(f.Exact) == 0 && len(f.Prefix) == 0 && len(f.Suffix) == 0 && f.All == nil && f.Any == nil &&
		f.Not == nil && f.SQL == "" && f.JQ == "" {
		c.r.errorf(path, "empty filter: set exact, prefix, suffix, all, any, not, sql or jq")
		return
	}
	for _, d := range []struct {
		name  string
		attrs map[string]string
	}{{"exact", f.Exact}, {"prefix", f.Prefix}, {"suffix", f.Suffix}} {
		for _, k := range sortedKeys(d.attrs) {
			c.attribute(joinPath(path+"."+d.name, k), k)
		}
	}
	for _, d := range []struct {
		name    string
		filters []*Filter
	}{{"all", f.All}, {"any", f.Any}} {
		if d.filters != nil && len(d.filters) == 0 {
			c.r.errorf(path+"."+d.name, "%s needs at least one filter", d.name)
		}
		for i, sub := range d.filters {
			c.filter(indexPath(path+"."+d.name, i), sub)
		}
	}
	c.filter(path+".not", f.Not)
	if f.SQL != "" {
		if msg := cesqlProblem(f.SQL); msg != "" {
			c.r.errorf(path+".sql", "%s", msg)
		}
	}
	c.jq(path+".jq", f.JQ)
}

// attribute checks a key of exact, prefix or suffix. Unknown names are fine:
// they are extension attributes.
func (c *exprChecker) attribute(path, name string) {
	switch {
	case name == "data":
		c.r.keyErrorf(path, "data is the event's payload, not an attribute: match it with jq")
	case !ceAttributeRe.MatchString(name):
		c.r.keyErrorf(path, "%q is not a CloudEvents attribute name: those are lower-case letters and digits (type, source, subject, ...)", name)
	}
}

// cesqlProblem returns what is wrong with a CESQL expression, or "".
//
// The syntax is checked first with nubo's own error listener on the generated
// ANTLR parser: the sdk's Parse keeps none of ANTLR's messages, prints lexer
// errors to stderr, and panics on some incomplete input ("type = ",
// "(source = 'a'"). Only syntactically clean input reaches Parse, for the
// checks its visitor makes (LIKE patterns, integer ranges), and a panic there
// is still turned into an error.
func cesqlProblem(expr string) (msg string) {
	if line, col, m, ok := cesqlSyntaxError(expr); ok {
		where := fmt.Sprintf("column %d", col)
		if strings.Contains(expr, "\n") {
			where = fmt.Sprintf("line %d, column %d", line, col)
		}
		return fmt.Sprintf("invalid CESQL expression %q: at %s: %s", expr, where, m)
	}
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprintf("invalid CESQL expression %q: the CESQL parser failed (%v)", expr, p)
		}
	}()
	if _, err := cesql.Parse(expr); err != nil {
		return fmt.Sprintf("invalid CESQL expression %q: %s", expr, cleanCESQLError(err.Error()))
	}
	return ""
}

// cesqlSyntaxError runs the CESQL lexer and parser and returns the first
// syntax error, with its line and column counted from 1.
func cesqlSyntaxError(expr string) (line, col int, msg string, found bool) {
	l := &cesqlErrors{}
	defer func() {
		// Should ANTLR itself fail, the input is still wrong: say so.
		if p := recover(); p != nil {
			line, col, msg, found = 1, 1, fmt.Sprintf("the CESQL parser failed (%v)", p), true
			if l.found {
				line, col, msg = l.line, l.col, l.msg
			}
		}
	}()
	lexer := gen.NewCESQLParserLexer(cesql.NewCaseChangingStream(antlr.NewInputStream(expr), true))
	lexer.RemoveErrorListeners()
	lexer.AddErrorListener(l)
	p := gen.NewCESQLParserParser(antlr.NewCommonTokenStream(lexer, antlr.TokenDefaultChannel))
	p.RemoveErrorListeners()
	p.AddErrorListener(l)
	p.Cesql()
	return l.line, l.col, l.msg, l.found
}

// cesqlErrors keeps the first syntax error ANTLR reports; later ones follow
// from it.
type cesqlErrors struct {
	antlr.DefaultErrorListener
	found     bool
	line, col int
	msg       string
}

// SyntaxError implements antlr.ErrorListener.
func (l *cesqlErrors) SyntaxError(_ antlr.Recognizer, _ any, line, column int, msg string, _ antlr.RecognitionException) {
	if l.found {
		return
	}
	l.found, l.line, l.col, l.msg = true, line, column+1, cleanANTLRMessage(msg)
}

var (
	antlrSetRe      = regexp.MustCompile(`\{[^{}]*\}`)
	antlrRecognized = regexp.MustCompile(`^token recognition error at: '(.*)'$`)
)

// cleanANTLRMessage rewrites ANTLR's messages with the grammar's token names
// into words: "mismatched input '<EOF>' expecting {'(', ..., IDENTIFIER}"
// becomes "unexpected end of input, expecting an expression".
func cleanANTLRMessage(msg string) string {
	if m := antlrRecognized.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unexpected character %q", strings.TrimSpace(m[1]))
	}
	msg = antlrSetRe.ReplaceAllStringFunc(msg, describeTokenSet)
	msg = strings.ReplaceAll(msg, "'<EOF>'", "end of input")
	msg = strings.ReplaceAll(msg, "<EOF>", "end of input")
	for _, prefix := range []string{"mismatched input ", "extraneous input "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			msg = "unexpected " + strings.Replace(rest, " expecting ", ", expecting ", 1)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "no viable alternative at input "); ok {
		msg = "cannot make sense of " + rest
	}
	return describeTokens(msg)
}

// describeTokenSet turns a set of expected tokens into words.
func describeTokenSet(set string) string {
	items := strings.Split(strings.Trim(set, "{}"), ", ")
	var words []string
	seen := map[string]bool{}
	for _, it := range items {
		if it == "INTEGER_LITERAL" {
			return "an expression"
		}
		w := describeTokens(it)
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return strings.Join(words, " or ")
}

// describeTokens replaces the grammar's token names in msg.
func describeTokens(msg string) string {
	return strings.NewReplacer(
		"IDENTIFIER_WITH_NUMBER", "an attribute name",
		"FUNCTION_IDENTIFIER_WITH_UNDERSCORE", "a function name",
		"IDENTIFIER", "an attribute name",
		"DQUOTED_STRING_LITERAL", "a string",
		"SQUOTED_STRING_LITERAL", "a string",
		"INTEGER_LITERAL", "a number",
	).Replace(msg)
}

// cleanCESQLError strips the sdk's "parse error: syntax error: |" framing,
// which carries no information of its own.
func cleanCESQLError(msg string) string {
	msg = strings.TrimPrefix(msg, "parse error: ")
	var parts []string
	for _, p := range strings.Split(msg, "|") {
		p = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(p), "syntax error:"))
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "the CESQL parser gave no reason"
	}
	return strings.Join(parts, "; ")
}
