//go:build tools

// Package natscli only records the NATS CLI as this module's dependency.
package natscli

import _ "github.com/nats-io/natscli/nats"
