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

// Advisor does nothing where the system has no transparent huge pages.
type Advisor struct{}

// Advise returns an error: there are no huge pages to ask for.
func (*Advisor) Advise(bool) error {
	_, err := Heap(false)
	return err
}

// Forget does nothing.
func (*Advisor) Forget() {}

// Collapse gathers nothing.
func (*Advisor) Collapse() (int64, error) { return 0, nil }
