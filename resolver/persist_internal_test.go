package resolver

import (
	"slices"
	"testing"
)

// TestRankMerge merges lists by each element's place in its list as a
// fraction of the list's length.
func TestRankMerge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		starts []int
		want   []int
	}{
		{"none", []int{0}, nil},
		{"empty lists", []int{0, 0, 0}, nil},
		{"one list", []int{0, 3}, []int{0, 1, 2}},
		// Fractions: list 0 at 1/6, 3/6, 5/6; list 1 at 1/2; list 2 at
		// 1/4, 3/4. The tie at 1/2 goes to the lower list.
		{"three lists", []int{0, 3, 4, 6}, []int{0, 4, 1, 3, 5, 2}},
		{"empty between", []int{0, 2, 2, 4}, []int{0, 2, 1, 3}},
		{"long and short", []int{0, 1, 5}, []int{1, 2, 0, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newRankMerge(tc.starts)
			var got []int
			for {
				list, i, ok := m.next()
				if !ok {
					break
				}
				if i < tc.starts[list] || i >= tc.starts[list+1] {
					t.Fatalf("index %d given as list %d's, which is [%d, %d)", i, list, tc.starts[list], tc.starts[list+1])
				}
				got = append(got, i)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}
