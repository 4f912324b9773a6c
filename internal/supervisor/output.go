package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxLineLength bounds one output line. A longer line is passed on in pieces
// of at most this many bytes, so a process that never writes a newline
// cannot make the supervisor hold unbounded memory.
const MaxLineLength = 64 << 10

// Output stream names passed to LineSink.Line.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// LineSink receives every line a replica writes, without its line ending.
// line is only valid during the call: a sink that keeps it must copy it.
// Lines of one stream arrive in order; Line is called from several
// goroutines at once (one per replica and stream) and must be safe for that.
type LineSink interface {
	Line(service string, replica int, stream string, line []byte)
}

// LineFunc adapts a function to a LineSink.
type LineFunc func(service string, replica int, stream string, line []byte)

// Line calls f.
func (f LineFunc) Line(service string, replica int, stream string, line []byte) {
	f(service, replica, stream, line)
}

type discardLines struct{}

func (discardLines) Line(string, int, string, []byte) {}

// pumpLines reads r until EOF or an error and passes each line to emit.
// A line longer than MaxLineLength is split; a final line without a newline
// is still passed on.
func pumpLines(r io.Reader, emit func(line []byte)) {
	br := bufio.NewReaderSize(r, MaxLineLength)
	split := false // the previous piece was cut at MaxLineLength
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			// A split line's piece is not followed by a newline: keep a
			// trailing \r there, it is data.
			if err == nil {
				line = bytes.TrimSuffix(line, []byte("\r"))
			}
			// The newline that ends a line of exactly MaxLineLength bytes
			// is not a line of its own.
			if len(line) > 0 || !split {
				emit(line)
			}
		}
		split = errors.Is(err, bufio.ErrBufferFull)
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		default:
			return
		}
	}
}
