package gateway

import (
	"fmt"
	"slices"
	"strings"
)

// node is one segment position of the route trie. Routes whose templates
// differ only in their parameters' names share nodes (/users/{id} and
// /users/{userId}): the values are collected by position and each route
// names them.
type node struct {
	static map[string]*node
	param  *node // {name}: one whole, non-empty segment
	greedy *node // {name+}: the rest of the path, one segment or more

	// methods answered here; any is a route without methods (or ANY).
	methods map[string]*route
	any     *route
	// allow is the Allow header of a 405 here: the methods answered,
	// sorted.
	allow string
	// routes are the distinct routes ending here, for CORS preflights.
	routes []*route
}

func (n *node) terminal() bool { return n.any != nil || len(n.methods) > 0 }

// insert adds rt under its template, refusing a method another route
// already answers on the same path.
func (n *node) insert(rt *route) error {
	cur := n
	for _, seg := range templateSegments(rt.path) {
		switch {
		case isGreedy(seg):
			if cur.greedy == nil {
				cur.greedy = &node{}
			}
			cur = cur.greedy
		case isParam(seg):
			if cur.param == nil {
				cur.param = &node{}
			}
			cur = cur.param
		default:
			if cur.static == nil {
				cur.static = map[string]*node{}
			}
			next := cur.static[seg]
			if next == nil {
				next = &node{}
				cur.static[seg] = next
			}
			cur = next
		}
	}
	clash := func(other *route) error {
		return fmt.Errorf("route %s %s: the same path is already routed by %s", rt.methodList(), rt.path, other.name())
	}
	if rt.anyMethod {
		if cur.any != nil {
			return clash(cur.any)
		}
		for _, other := range cur.methods {
			return clash(other)
		}
		cur.any = rt
	} else {
		if cur.any != nil {
			return clash(cur.any)
		}
		if cur.methods == nil {
			cur.methods = map[string]*route{}
		}
		for _, m := range rt.methods {
			if other := cur.methods[m]; other != nil {
				return clash(other)
			}
			cur.methods[m] = rt
		}
		var allow []string
		for m := range cur.methods {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		cur.allow = strings.Join(allow, ", ")
	}
	cur.routes = append(cur.routes, rt)
	return nil
}

// match finds the node of path (which starts with "/"), appending the
// parameters' values to vals in template order. Literal segments win
// over {param}, which wins over {proxy+}; a dead end backtracks.
func (n *node) match(path string, vals []string) (*node, []string) {
	path = strings.TrimPrefix(path, "/")
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1] // /users/ is /users
	}
	return n.walk(path, vals)
}

func (n *node) walk(rest string, vals []string) (*node, []string) {
	if rest == "" {
		if n.terminal() {
			return n, vals
		}
		return nil, vals
	}
	seg, tail, more := strings.Cut(rest, "/")
	if next := n.static[seg]; next != nil {
		if found, v := next.walkTail(tail, more, vals); found != nil {
			return found, v
		}
	}
	if n.param != nil && seg != "" {
		if found, v := n.param.walkTail(tail, more, append(vals, seg)); found != nil {
			return found, v
		}
	}
	if n.greedy != nil && n.greedy.terminal() && strings.Trim(rest, "/") != "" {
		return n.greedy, append(vals, rest)
	}
	return nil, vals
}

// walkTail goes on after a segment: to the end of the path when it had no
// more segments, else into tail. "/users/" was trimmed by match, so an
// empty tail after a slash is an empty segment ("//"), which only literal
// "" could match: none does.
func (n *node) walkTail(tail string, more bool, vals []string) (*node, []string) {
	if !more {
		if n.terminal() {
			return n, vals
		}
		return nil, vals
	}
	if tail == "" {
		return nil, vals
	}
	return n.walk(tail, vals)
}

// lookup returns the route of method at n, or nil.
func (n *node) lookup(method string) *route {
	if rt := n.methods[method]; rt != nil {
		return rt
	}
	return n.any
}

// templateSegments splits a route template into its segments; "/" has
// none.
func templateSegments(tmpl string) []string {
	t := strings.Trim(tmpl, "/")
	if t == "" {
		return nil
	}
	return strings.Split(t, "/")
}

func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

func isGreedy(seg string) bool {
	return isParam(seg) && seg[len(seg)-2] == '+'
}

// paramName is the name of a {name} or {name+} segment.
func paramName(seg string) string {
	return strings.TrimSuffix(seg[1:len(seg)-1], "+")
}

// checkTemplate checks a route template as the spec's validator does,
// since New may be given a spec that did not go through spec.Load.
func checkTemplate(tmpl string) ([]string, error) {
	if !strings.HasPrefix(tmpl, "/") {
		return nil, fmt.Errorf("path %q must start with /", tmpl)
	}
	segs := templateSegments(tmpl)
	var params []string
	for i, seg := range segs {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		if !isParam(seg) || strings.ContainsAny(paramName(seg), "{}+/") || paramName(seg) == "" {
			return nil, fmt.Errorf("path %s: segment %q: a parameter is a whole segment, {name} or {name+}", tmpl, seg)
		}
		if isGreedy(seg) && i != len(segs)-1 {
			return nil, fmt.Errorf("path %s: %s takes the rest of the path, so it must be the last segment", tmpl, seg)
		}
		name := paramName(seg)
		if slices.Contains(params, name) {
			return nil, fmt.Errorf("path %s: parameter %q appears twice", tmpl, name)
		}
		params = append(params, name)
	}
	return params, nil
}
