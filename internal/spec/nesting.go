package spec

import "github.com/goccy/go-yaml/token"

// checkNesting refuses tokens nested deeper than maxDepth before they are
// parsed: flow collections ([ and {) count one level each, and so does each
// more indented block mapping key or sequence entry ("- - -" is three).
// The converter checks the depth again, exactly, on the parsed tree; this
// only keeps the parser from hostile depths, so it may count a little more
// than the converter but never less.
func checkNesting(file string, tokens token.Tokens) error {
	flow := 0
	var block []int // columns of the open block levels, increasing
	for i, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
			continue
		case token.SequenceEntryType, token.MappingValueType:
			if flow > 0 || tk.Position == nil {
				continue
			}
			col := tk.Position.Column
			if tk.Type == token.MappingValueType && i > 0 && tokens[i-1].Position != nil {
				col = tokens[i-1].Position.Column // the key's column
			}
			for len(block) > 0 && block[len(block)-1] > col {
				block = block[:len(block)-1]
			}
			if len(block) == 0 || block[len(block)-1] < col {
				block = append(block, col)
			}
		default:
			continue
		}
		if flow+len(block) > maxDepth {
			return fatalf(tokenPos(file, tk), "nested more than %d levels deep", maxDepth)
		}
	}
	return nil
}
