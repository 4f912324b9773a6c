package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// This file speaks two parts of the JetStream API that nats.go's jetstream
// package does not wrap: batched direct gets (many messages of a subject in
// one request) and atomic batch publishes (several messages stored all or
// none). Both are plain request/reply with headers, documented in ADR-31
// and ADR-50 of nats-architecture-and-design.

// JetStream header names this package sets or reads.
const (
	hdrMsgID          = "Nats-Msg-Id"
	hdrExpLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrBatchID        = "Nats-Batch-Id"
	hdrBatchSeq       = "Nats-Batch-Sequence"
	hdrBatchCommit    = "Nats-Batch-Commit"
	hdrSequence       = "Nats-Sequence"
	hdrSubject        = "Nats-Subject"
	hdrTimeStamp      = "Nats-Time-Stamp"
	hdrStatus         = "Status"
)

// JetStream API error codes this package branches on.
const (
	errCodeWrongLastSeq   = 10071 // expected last subject sequence mismatch
	errCodeBatchDuplicate = 10201 // an atomic batch holds a stored message id
)

// publishTimeout bounds a request to JetStream whose caller set no
// deadline.
const publishTimeout = 10 * time.Second

// rawMsg is a stored message as a direct get returns it.
type rawMsg struct {
	subject string
	seq     uint64
	time    time.Time
	header  nats.Header
	data    []byte
}

// directGet is one batched direct get request.
type directGet struct {
	Seq      uint64   `json:"seq,omitempty"`
	NextFor  string   `json:"next_by_subj,omitempty"`
	Batch    int      `json:"batch,omitempty"`
	MultiFor []string `json:"multi_last,omitempty"`
	UpToSeq  uint64   `json:"up_to_seq,omitempty"`
	MaxBytes int      `json:"max_bytes,omitempty"`
	// StartTime starts at the first message stored at or after it.
	StartTime *time.Time `json:"start_time,omitempty"`
}

// getBatch runs a batched direct get on stream and returns the messages in
// the order the server sends them (ascending sequence). No message is not
// an error.
func getBatch(ctx context.Context, nc *nats.Conn, stream string, req directGet) ([]rawMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("direct get on %s: %w", stream, err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is ours alone
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, fmt.Errorf("direct get on %s: %w", stream, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	var out []rawMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("direct get on %s: %w", stream, err)
		}
		switch st := m.Header.Get(hdrStatus); st {
		case "":
		case "204": // end of batch
			return out, nil
		case "404": // nothing matches
			return out, nil
		default:
			return nil, fmt.Errorf("direct get on %s: status %s %s", stream, st, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("direct get on %s: bad %s header %q", stream, hdrSequence, m.Header.Get(hdrSequence))
		}
		ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get(hdrTimeStamp))
		out = append(out, rawMsg{subject: m.Header.Get(hdrSubject), seq: seq, time: ts, header: m.Header, data: m.Data})
		if req.Batch == 0 && len(req.MultiFor) == 0 {
			return out, nil // a single get has no end-of-batch marker
		}
	}
}

// apiError is a JetStream API error in a publish acknowledgement.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (jetstream error %d)", e.Description, e.ErrCode)
}

// pubAck is the acknowledgement of a publish or of an atomic batch.
type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	BatchID   string    `json:"batch,omitempty"`
	Count     uint64    `json:"count,omitempty"`
	Error     *apiError `json:"error,omitempty"`
}

// publishBatch stores msgs all or none. One message is an ordinary publish;
// more are an atomic batch: the first ones go without a reply, the last
// carries the commit and gets the acknowledgement of the whole batch, whose
// Seq is the last message's. JetStream checks headers such as the expected
// last subject sequence on the first message of a batch only.
func publishBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (*pubAck, error) {
	if len(msgs) > 1 {
		id := uuid.NewString()
		for i, m := range msgs {
			if m.Header == nil {
				m.Header = nats.Header{}
			}
			m.Header.Set(hdrBatchID, id)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		last := msgs[len(msgs)-1]
		last.Header.Set(hdrBatchCommit, "1")
		for _, m := range msgs[:len(msgs)-1] {
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		// An append's request may wait as long as its client does; the
		// broker gets as long as a direct get, so that Stop's wait for
		// the appends under way ends.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	resp, err := nc.RequestMsgWithContext(ctx, msgs[len(msgs)-1])
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, errors.New("no JetStream stream takes this subject")
		}
		return nil, err
	}
	return decodeAck(resp.Data)
}

// decodeAck decodes a publish acknowledgement. The common ones, a message
// stored or a duplicate, are read by hand: the server writes them in one
// fixed form, and encoding/json's reflection was the largest part of the
// store's own CPU time per append. Anything else (an error, a batch's
// acknowledgement, a JetStream domain) goes through encoding/json.
func decodeAck(data []byte) (*pubAck, error) {
	if ack, ok := parsePlainAck(data); ok {
		return ack, nil
	}
	var ack pubAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, fmt.Errorf("undecodable acknowledgement %q: %w", data, err)
	}
	if ack.Error != nil {
		return &ack, ack.Error
	}
	return &ack, nil
}

// parsePlainAck reads `{"stream":"NAME","seq":N}` and
// `{"stream":"NAME","seq":N,"duplicate": true}`, the forms nats-server's
// processJetStreamMsg writes; ok is false for anything else.
func parsePlainAck(b []byte) (ack *pubAck, ok bool) {
	const pre, seqKey, dup = `{"stream":"`, `","seq":`, `,"duplicate": true}`
	if !bytes.HasPrefix(b, []byte(pre)) {
		return nil, false
	}
	b = b[len(pre):]
	end := bytes.IndexByte(b, '"')
	if end <= 0 || bytes.IndexByte(b[:end], '\\') >= 0 || !bytes.HasPrefix(b[end:], []byte(seqKey)) {
		return nil, false
	}
	stream := string(b[:end])
	b = b[end+len(seqKey):]
	n := 0
	for n < len(b) && n < 20 && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseUint(string(b[:n]), 10, 64)
	if n == 0 || err != nil {
		return nil, false
	}
	switch rest := string(b[n:]); rest {
	case "}":
		return &pubAck{Stream: stream, Seq: seq}, true
	case dup:
		return &pubAck{Stream: stream, Seq: seq, Duplicate: true}, true
	}
	return nil, false
}
