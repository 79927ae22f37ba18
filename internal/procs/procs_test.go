package procs

import (
	"runtime"
	"testing"
)

// fake is a count the test reads, with the calls made to it.
type fake struct {
	n        int
	sets     int
	defaults int
	def      int // what Default sets
}

func (f *fake) Get() int  { return f.n }
func (f *fake) Set(n int) { f.n = n; f.sets++ }
func (f *fake) Default()  { f.n = f.def; f.defaults++ }

// TestOwner runs steps against a fake count: each step a call, then the
// count it leaves.
func TestOwner(t *testing.T) {
	type step struct {
		do   string // "lend", "back" (the oldest lend not given back), "back-again" (the last one given back), "raise N"
		n    int    // raise's argument
		want int    // the count after the step
	}
	cases := []struct {
		name  string
		start int
		env   string
		steps []step
		// sets and defaults: the calls to the count in all.
		sets, defaults int
	}{
		{"one processor: lent, then given back to the runtime", 1, "", []step{
			{do: "lend", want: 2}, {do: "back", want: 1}}, 1, 1},
		{"lends overlapping: one processor for all", 1, "", []step{
			{do: "lend", want: 2}, {do: "lend", want: 2}, {do: "back", want: 2}, {do: "back", want: 1}}, 1, 1},
		{"giving back twice is once", 1, "", []step{
			{do: "lend", want: 2}, {do: "lend", want: 2}, {do: "back", want: 2}, {do: "back-again", want: 2}, {do: "back", want: 1}}, 1, 1},
		{"two processors: nothing lent", 2, "", []step{
			{do: "lend", want: 2}, {do: "back", want: 2}}, 0, 0},
		{"the operator's count is kept", 1, "1", []step{
			{do: "lend", want: 1}, {do: "raise", n: 4, want: 1}, {do: "back", want: 1}}, 0, 0},
		{"raised: nothing lent", 1, "", []step{
			{do: "raise", n: 4, want: 4}, {do: "lend", want: 4}, {do: "back", want: 4}}, 1, 0},
		{"raised during a lend: the floor stays", 1, "", []step{
			{do: "lend", want: 2}, {do: "raise", n: 4, want: 4}, {do: "back", want: 4}}, 2, 0},
		{"raised once", 1, "", []step{
			{do: "raise", n: 4, want: 4}, {do: "raise", n: 4, want: 4}, {do: "raise", n: 3, want: 4}}, 1, 0},
		{"a floor of one: given back to it", 1, "", []step{
			{do: "raise", n: 1, want: 1}, {do: "lend", want: 2}, {do: "back", want: 1}}, 2, 0},
		{"many CPUs: a floor below them changes nothing", 8, "", []step{
			{do: "raise", n: 4, want: 8}, {do: "lend", want: 8}, {do: "back", want: 8}}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{n: tc.start, def: tc.start}
			o := New(f, tc.env)
			var backs []func()
			var last func()
			for i, s := range tc.steps {
				switch s.do {
				case "lend":
					backs = append(backs, o.Lend())
				case "back":
					last, backs = backs[0], backs[1:]
					last()
				case "back-again":
					last()
				case "raise":
					o.Raise(s.n)
				}
				if f.n != s.want {
					t.Fatalf("step %d (%s): count %d, want %d", i, s.do, f.n, s.want)
				}
			}
			if f.sets != tc.sets || f.defaults != tc.defaults {
				t.Errorf("%d sets and %d defaults, want %d and %d", f.sets, f.defaults, tc.sets, tc.defaults)
			}
		})
	}
}

// TestRaiseReports checks Raise's answer: true only when it raised.
func TestRaiseReports(t *testing.T) {
	f := &fake{n: 1}
	o := New(f, "")
	if !o.Raise(4) {
		t.Error("first raise to 4 from 1: not reported")
	}
	if o.Raise(4) {
		t.Error("second raise to 4: reported")
	}
	if New(&fake{n: 1}, "2").Raise(4) {
		t.Error("raise with the operator's count: reported")
	}
	var nilOwner *Owner
	if nilOwner.Raise(4) {
		t.Error("raise on no owner: reported")
	}
	nilOwner.Lend()() // no owner: no panic, nothing to give back
}

// TestGoRuntime lends with the Go runtime's own count: one processor
// becomes two, and the runtime's default comes back.
func TestGoRuntime(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(1)

	o := New(Go{}, "")
	back := o.Lend()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("GOMAXPROCS %d during a lend from 1, want 2", got)
	}
	back()
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("GOMAXPROCS %d after the lend, want the runtime's default %d", got, def)
	}
}
