package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFakeTimeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faketime")
	if err := os.WriteFile(path, []byte("@2020-02-03 04:05:06\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := NewFakeTimeFile(path, func() time.Time { return sys })
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	if got := f.Now(); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	sys = sys.Add(90 * time.Second) // the clock runs on from the file's time
	if got := f.Now(); !got.Equal(want.Add(90 * time.Second)) {
		t.Fatalf("after 90s Now = %v", got)
	}
	// A new time in the file restarts the clock from it.
	if err := os.WriteFile(path, []byte("@2021-01-01 00:00:00"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	sys = sys.Add(time.Second)
	if got := f.Now(); !got.Equal(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after the file changed Now = %v", got)
	}
}

func TestParseRejectsOtherForms(t *testing.T) {
	for _, s := range []string{"", "+2d", "2020-02-03", "@2020-02-03T04:05:06Z"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if _, err := NewFakeTimeFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing file was accepted")
	}
}

// TestFakeTimeFileSeesEveryChange: the clock follows the file at once,
// with no system time passing in between, including rewrites that keep
// its size and modification time, and a file replaced by another.
func TestFakeTimeFileSeesEveryChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faketime")
	// One modification time for every write, recent enough (here: ahead)
	// that only the contents tell the writes apart.
	stamp := time.Now().Add(time.Hour)
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	write("@2020-02-03 04:05:06\n")
	sys := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // never moves
	f, err := NewFakeTimeFile(path, func() time.Time { return sys })
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		change func()
		want   time.Time
	}{
		{"same size and time", func() { write("@2020-02-03 04:05:09\n") }, time.Date(2020, 2, 3, 4, 5, 9, 0, time.UTC)},
		{"other size, same time", func() { write("2020-02-03 04:06:00") }, time.Date(2020, 2, 3, 4, 6, 0, 0, time.UTC)},
		{"replaced by rename", func() {
			tmp := filepath.Join(dir, "next")
			if err := os.WriteFile(tmp, []byte("@2020-02-03 04:07:00"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, stamp, stamp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}, time.Date(2020, 2, 3, 4, 7, 0, 0, time.UTC)},
		{"half written: the last good time holds", func() { write("@2020-02") }, time.Date(2020, 2, 3, 4, 7, 0, 0, time.UTC)},
		{"written in full", func() { write("@2020-02-03 04:08:00") }, time.Date(2020, 2, 3, 4, 8, 0, 0, time.UTC)},
	}
	for _, s := range steps {
		s.change()
		if got := f.Now(); !got.Equal(s.want) {
			t.Fatalf("%s: Now = %v, want %v", s.name, got, s.want)
		}
	}
}
