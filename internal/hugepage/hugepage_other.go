//go:build !linux

package hugepage

import (
	"errors"
	"fmt"
)

// Heap does nothing where the system has no transparent huge pages.
func Heap(bool) (int64, error) {
	return 0, fmt.Errorf("huge pages: %w", errors.ErrUnsupported)
}

func physical() int64 { return 0 }
