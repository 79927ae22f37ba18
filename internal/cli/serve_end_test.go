package cli

import (
	"context"
	"errors"
	"testing"
)

// TestAwaitEnd covers each order in which a signal and the listeners'
// return can arrive: a signal is a shutdown even when the listeners'
// return (which the signal caused) is what the select sees first.
func TestAwaitEnd(t *testing.T) {
	t.Parallel()
	failed := errors.New("listen: address in use")
	tests := []struct {
		name          string
		signal        bool
		ret           error // what the listeners return; sent before awaitEnd runs
		wantSignalled bool
		wantErr       error
	}{
		{"signal, then the listeners end", true, nil, true, nil},
		{"the listeners fail without a signal", false, failed, false, failed},
		{"signal, and the listeners fail on the way out", true, failed, true, failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Run many times: with both ready, select picks at random.
			for range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				errc <- tc.ret
				if tc.signal {
					cancel()
				}
				signalled, err := awaitEnd(ctx, errc)
				cancel()
				if signalled != tc.wantSignalled || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("awaitEnd = (%v, %v), want (%v, %v)", signalled, err, tc.wantSignalled, tc.wantErr)
				}
			}
		})
	}
}
