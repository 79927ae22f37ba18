//go:build !linux

package hugepage

import (
	"context"
	"log/slog"
)

// Prefaulter does nothing where the system cannot populate memory ahead.
type Prefaulter struct{}

// Step populates nothing.
func (*Prefaulter) Step() (int64, error) { return 0, nil }

// Run returns at once.
func (*Prefaulter) Run(context.Context, *slog.Logger) {}
