package resolver

import (
	"context"
	"errors"
	"testing"
	"time"
)

type qctxKey struct{}

// A question's context ends as context.WithTimeout's would: at its
// deadline, with its parent, or by its function, whichever comes first;
// Done and the children made on it (WithCancel, AfterFunc) follow, and
// its values are its parent's.
func TestQuestionCtxEnds(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		// end ends the question some way, after the context was or
		// was not asked for its channel (early).
		end  func(cancelParent, end func())
		want error
	}{
		{"deadline", 20 * time.Millisecond, func(_, _ func()) {}, context.DeadlineExceeded},
		{"parent", time.Hour, func(cancelParent, _ func()) { cancelParent() }, context.Canceled},
		{"its function", time.Hour, func(_, end func()) { end() }, context.Canceled},
	}
	for _, tc := range tests {
		for _, early := range []bool{false, true} {
			name := tc.name
			if early {
				name += ", Done asked first"
			}
			t.Run(name, func(t *testing.T) {
				parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), qctxKey{}, "v"))
				defer cancelParent()
				q := newQuestionCtx(parent, tc.timeout)
				defer q.end()
				var ctx context.Context = q
				if err := ctx.Err(); err != nil {
					t.Fatalf("Err before its end: %v", err)
				}
				if v := ctx.Value(qctxKey{}); v != "v" {
					t.Fatalf("Value = %v, want the parent's", v)
				}
				if d, ok := ctx.Deadline(); !ok || time.Until(d) > tc.timeout {
					t.Fatalf("Deadline = %v, %v", d, ok)
				}
				var done <-chan struct{}
				if early {
					done = ctx.Done()
				}
				child, cancelChild := context.WithCancel(ctx)
				defer cancelChild()
				ran := make(chan struct{})
				context.AfterFunc(ctx, func() { close(ran) })

				tc.end(cancelParent, q.end)
				if !early {
					done = ctx.Done()
				}
				for _, c := range []<-chan struct{}{done, child.Done(), ran} {
					select {
					case <-c:
					case <-time.After(10 * time.Second):
						t.Fatal("the question's end did not reach its channel, child or callback")
					}
				}
				if err := ctx.Err(); !errors.Is(err, tc.want) {
					t.Fatalf("Err = %v, want %v", err, tc.want)
				}
				if err := child.Err(); !errors.Is(err, tc.want) {
					t.Fatalf("the child's Err = %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// A parent's earlier deadline is the question's.
func TestQuestionCtxParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pd, _ := parent.Deadline()
	var ctx context.Context = newQuestionCtx(parent, time.Hour)
	if d, ok := ctx.Deadline(); !ok || !d.Equal(pd) {
		t.Fatalf("Deadline = %v, want the parent's %v", d, pd)
	}
	ctx = newQuestionCtx(parent, time.Second)
	if d, _ := ctx.Deadline(); !d.Before(pd) {
		t.Fatalf("Deadline = %v, want its own, before the parent's %v", d, pd)
	}
}

// A question's context whose channel nothing asks for is one object: no
// timer, no channel, no entry in its parent.
func TestQuestionCtxAllocations(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testing.AllocsPerRun(1000, func() {
		q := newQuestionCtx(parent, time.Second)
		var ctx context.Context = q
		_ = ctx.Err()
		_, _ = ctx.Deadline()
		q.end()
	})
	if n > 1 {
		t.Fatalf("%v allocations per question, want 1", n)
	}
}

// A wait with its own timer watches a question's parent and deadline,
// and any other context's own end.
func TestWaitOn(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	q := newQuestionCtx(parent, time.Minute)
	defer q.end()
	var ctx context.Context = q
	done, deadline, ok := waitOn(ctx)
	if qd, _ := ctx.Deadline(); !ok || !deadline.Equal(qd) {
		t.Fatalf("deadline %v, %v, want the question's %v", deadline, ok, qd)
	}
	if q.full != nil {
		t.Fatal("waitOn made the question's channel")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the parent's end did not reach the wait")
	}

	other, cancelOther := context.WithCancel(context.Background())
	done, _, ok = waitOn(other)
	if ok {
		t.Fatal("a deadline for a context without one")
	}
	cancelOther()
	<-done
}
