package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Pos is a place in a spec file: the file as the user named it, line and column
// counted from 1.
type Pos struct {
	File string
	Line int
	Col  int
}

// String renders the position as FILE:LINE:COL, the form editors and terminals link.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// nodeKind is the shape of a YAML node once anchors, aliases and tags are resolved.
type nodeKind int

const (
	kindNull nodeKind = iota
	kindScalar
	kindMap
	kindSeq
)

func (k nodeKind) String() string {
	switch k {
	case kindScalar:
		return "a scalar"
	case kindMap:
		return "a mapping"
	case kindSeq:
		return "a list"
	}
	return "null"
}

// scalarType is what YAML says a plain scalar is; quoted scalars are always strings.
type scalarType int

const (
	scalarString scalarType = iota
	scalarInt
	scalarFloat
	scalarBool
)

// node is nubo's own small YAML tree. goccy/go-yaml parses with positions, but
// its decoder stops at the first error; nubo reports every error at once, merges
// included files (each node keeping its own file name) and records the position
// of every field path, so it decodes from this tree instead.
type node struct {
	kind   nodeKind
	pos    Pos
	text   string     // scalar text as written (unquoted)
	stype  scalarType // for kindScalar
	keys   []*node    // for kindMap: key nodes (scalars), in file order
	values []*node    // for kindMap: values; for kindSeq: items
}

// lookup returns the value of key in a mapping node, or nil.
func (n *node) lookup(key string) *node {
	if i := n.index(key); i >= 0 {
		return n.values[i]
	}
	return nil
}

// index returns the position of key in a mapping node, or -1.
func (n *node) index(key string) int {
	if n == nil || n.kind != kindMap {
		return -1
	}
	for i, k := range n.keys {
		if k.text == key {
			return i
		}
	}
	return -1
}

// maxFileSize bounds a spec file: a nubo.yaml is hand-written, and an unbounded
// read would let a mistaken path (a log, a disk image) take the machine's memory.
const maxFileSize = 8 << 20

// parseYAML parses one file into a tree. Errors carry the file position.
func parseYAML(file string, data []byte) (*node, error) {
	if len(data) > maxFileSize {
		return nil, fatalf(Pos{File: file}, "file is %d bytes, more than the %d a spec may have", len(data), maxFileSize)
	}
	// Tokenizing is linear; goccy's parser is not in the nesting depth
	// (200 KB of "[" takes minutes), so the depth is checked on the
	// tokens before the parser sees them.
	tokens := lexer.Tokenize(string(data))
	if err := checkNesting(file, tokens); err != nil {
		return nil, err
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		return nil, yamlError(file, err)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return &node{kind: kindNull, pos: Pos{File: file, Line: 1, Col: 1}}, nil
	}
	if len(f.Docs) > 1 {
		p := tokenPos(file, f.Docs[1].GetToken())
		return nil, fatalf(p, "a spec file holds one YAML document; this is a second one")
	}
	c := converter{file: file, anchors: map[string]ast.Node{}, budget: maxNodes}
	return c.convert(f.Docs[0].Body, 0)
}

// yamlError turns a goccy error into FILE:LINE:COL: message.
func yamlError(file string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return fatalf(tokenPos(file, ye.GetToken()), "%s", ye.GetMessage())
	}
	return fatalf(Pos{File: file}, "%v", err)
}

func tokenPos(file string, t *token.Token) Pos {
	if t == nil || t.Position == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: t.Position.Line, Col: t.Position.Column}
}

type converter struct {
	file    string
	anchors map[string]ast.Node
	// budget is how many more nodes the file may produce, aliases
	// expanded.
	budget int
}

// maxDepth bounds nesting (and alias expansion) so hostile input cannot blow the stack.
const maxDepth = 64

// maxNodes bounds the nodes one file produces once its aliases are
// expanded. Depth alone does not bound an alias bomb (nine aliases of nine
// aliases, nine levels deep, is 9^9 nodes from 373 bytes) nor a merge-key
// bomb; counting what is produced bounds both, whatever their shape. A
// hand-written spec has a few thousand nodes; an 8 MiB file of short
// lines could approach a million.
const maxNodes = 1 << 20

func (c *converter) pos(n ast.Node) Pos { return tokenPos(c.file, n.GetToken()) }

func (c *converter) convert(n ast.Node, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, fatalf(c.pos(n), "nested more than %d levels deep", maxDepth)
	}
	if c.budget--; c.budget < 0 {
		return nil, fatalf(c.pos(n), "the file expands to more than %d YAML nodes (aliases expanded): an alias or merge-key bomb?", maxNodes)
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return &node{kind: kindNull, pos: c.pos(v)}, nil
	case *ast.StringNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Value, stype: scalarString}, nil
	case *ast.LiteralNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Value.Value, stype: scalarString}, nil
	case *ast.IntegerNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Token.Value, stype: scalarInt}, nil
	case *ast.FloatNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Token.Value, stype: scalarFloat}, nil
	case *ast.InfinityNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Token.Value, stype: scalarFloat}, nil
	case *ast.NanNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: v.Token.Value, stype: scalarFloat}, nil
	case *ast.BoolNode:
		return &node{kind: kindScalar, pos: c.pos(v), text: strconv.FormatBool(v.Value), stype: scalarBool}, nil
	case *ast.TagNode:
		out, err := c.convert(v.Value, depth+1)
		if err != nil {
			return nil, err
		}
		// An explicit !!str makes any scalar a string, as YAML says.
		if out.kind == kindScalar && strings.TrimPrefix(v.Start.Value, "!!") == "str" {
			out.stype = scalarString
		}
		return out, nil
	case *ast.AnchorNode:
		c.anchors[v.Name.String()] = v.Value
		return c.convert(v.Value, depth+1)
	case *ast.AliasNode:
		name := v.Value.String()
		target, ok := c.anchors[name]
		if !ok {
			return nil, fatalf(c.pos(v), "alias *%s names no anchor defined before it", name)
		}
		return c.convert(target, depth+1)
	case *ast.MappingValueNode:
		// A one-key mapping may come as a bare MappingValueNode.
		return c.mapping(c.pos(v.Key), []*ast.MappingValueNode{v}, depth)
	case *ast.MappingNode:
		// A block mapping starts at its first key; goccy's token is its first ':'.
		p := c.pos(v)
		if !v.IsFlowStyle && len(v.Values) > 0 {
			p = c.pos(v.Values[0].Key)
		}
		return c.mapping(p, v.Values, depth)
	case *ast.SequenceNode:
		out := &node{kind: kindSeq, pos: c.pos(v)}
		for _, item := range v.Values {
			cn, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			out.values = append(out.values, cn)
		}
		return out, nil
	case nil:
		return &node{kind: kindNull, pos: Pos{File: c.file}}, nil
	}
	return nil, fatalf(c.pos(n), "unsupported YAML construct %T", n)
}

func (c *converter) mapping(p Pos, kvs []*ast.MappingValueNode, depth int) (*node, error) {
	out := &node{kind: kindMap, pos: p}
	seen := map[string]Pos{}
	add := func(k, v *node) error {
		if first, dup := seen[k.text]; dup {
			return fatalf(k.pos, "key %q appears twice in one mapping (first at %s)", k.text, first)
		}
		seen[k.text] = k.pos
		out.keys = append(out.keys, k)
		out.values = append(out.values, v)
		return nil
	}
	var merges []*node
	for _, kv := range kvs {
		val, err := c.convert(kv.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if _, ok := kv.Key.(*ast.MergeKeyNode); ok {
			merges = append(merges, val)
			continue
		}
		key, err := c.convert(kv.Key, depth+1)
		if err != nil {
			return nil, err
		}
		if key.kind != kindScalar {
			return nil, fatalf(key.pos, "a mapping key must be a scalar, not %s", key.kind)
		}
		if err := add(key, val); err != nil {
			return nil, err
		}
	}
	// `<<: *base` fills in keys the mapping does not set itself.
	for _, m := range merges {
		srcs := []*node{m}
		if m.kind == kindSeq {
			srcs = m.values
		}
		for _, src := range srcs {
			if src.kind != kindMap {
				return nil, fatalf(src.pos, "a merge key (<<) takes a mapping or a list of mappings")
			}
			for i, k := range src.keys {
				if _, set := seen[k.text]; !set {
					_ = add(k, src.values[i])
				}
			}
		}
	}
	return out, nil
}
