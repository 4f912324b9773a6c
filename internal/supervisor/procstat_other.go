//go:build !linux

package supervisor

import (
	"errors"
	"fmt"
)

func readGroupUsage(string, []int) (map[int]GroupUsage, error) {
	return nil, fmt.Errorf("read process usage: %w", errors.ErrUnsupported)
}
