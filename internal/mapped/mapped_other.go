//go:build !linux

package mapped

import (
	"errors"
	"fmt"
)

func release(uintptr, int64) error { return nil }

func resident(string) (int64, error) {
	return 0, fmt.Errorf("resident pages of a mapping: %w", errors.ErrUnsupported)
}
