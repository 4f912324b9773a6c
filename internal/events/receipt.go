package events

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadReceipt is returned for a delivery ID that is malformed or belongs
// to another queue.
var ErrBadReceipt = errors.New("invalid delivery id")

// A receipt is a delivery's ID: the JetStream ack subject of the delivery
// and the NATS subject of the event, base64url-encoded. It needs no state
// in nubo, so it stays valid across a restart of nubo for as long as
// JetStream keeps the delivery pending, as an SQS receipt handle does.
type receipt struct {
	reply     string // $JS.ACK....
	subject   string // the event's NATS subject (fifo release)
	stream    string
	consumer  string
	delivered int
	seq       uint64
	stored    time.Time
}

func encodeReceipt(reply, subject string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(reply + " " + subject))
}

// decodeReceipt parses an ID and checks that its ack subject has the form
// JetStream gives, so that acknowledging it publishes nowhere else:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>
//	$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>[.<token>]
func decodeReceipt(id string) (receipt, error) {
	var r receipt
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return r, fmt.Errorf("%w %q: not base64url", ErrBadReceipt, id)
	}
	reply, subject, ok := strings.Cut(string(raw), " ")
	if !ok || reply == "" || subject == "" {
		return r, fmt.Errorf("%w %q", ErrBadReceipt, id)
	}
	tok := strings.Split(reply, ".")
	if len(tok) < 9 || tok[0] != "$JS" || tok[1] != "ACK" {
		return r, fmt.Errorf("%w %q", ErrBadReceipt, id)
	}
	for _, t := range append(tok, strings.Split(subject, ".")...) {
		if t == "" || strings.ContainsAny(t, "*> \t\r\n") {
			return r, fmt.Errorf("%w %q", ErrBadReceipt, id)
		}
	}
	var rest []string
	switch {
	case len(tok) == 9:
		r.stream, r.consumer, rest = tok[2], tok[3], tok[4:]
	case len(tok) >= 11:
		r.stream, r.consumer, rest = tok[4], tok[5], tok[6:]
	default:
		return r, fmt.Errorf("%w %q", ErrBadReceipt, id)
	}
	delivered, err1 := strconv.Atoi(rest[0])
	seq, err2 := strconv.ParseUint(rest[1], 10, 64)
	ns, err3 := strconv.ParseInt(rest[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return r, fmt.Errorf("%w %q", ErrBadReceipt, id)
	}
	r.reply, r.subject, r.delivered, r.seq, r.stored = reply, subject, delivered, seq, time.Unix(0, ns)
	return r, nil
}
