package hugepage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestHeapRegions(t *testing.T) {
	const maps = `00400000-013fb000 r-xp 00000000 fe:00 10002957 /usr/bin/sovdns
013fb000-03440000 rw-p 00000000 00:00 0
3c000000-40000000 ---p 00000000 00:00 0
40000000-40400000 rw-p 00000000 00:00 0
40400000-40c00000 rw-p 00000000 00:00 0
40c00000-44000000 ---p 00000000 00:00 0
44000000-44200000 rw-p 00000000 00:00 0
44400000-44600000 rw-p 00000000 00:00 0
b4193000-b419b000 r--s 00000000 fe:00 10002965 /var/lib/sovdns/resolver-cache.db
b419b000-b421b000 rw-p 00000000 00:00 0
fe9c0000-fe9e1000 rw-p 00000000 00:00 0                          [stack]
`
	for _, tc := range []struct {
		name string
		at   uintptr
		want []region
		err  bool
	}{
		// The run from 3c000000 to 44200000 (a gap follows).
		{"heap", 0x40500000, []region{{0x40000000, 0x40400000}, {0x40400000, 0x40c00000}, {0x44000000, 0x44200000}}, false},
		{"alone", 0xb419c000, []region{{0xb419b000, 0xb421b000}}, false},
		{"file", 0xb4194000, nil, true},
		{"named", 0xfe9c1000, nil, true},
		{"unmapped", 0x1000, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := heapRegions([]byte(maps), tc.at)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want an error: %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("regions %x, want %x", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("regions %x, want %x", got, tc.want)
				}
			}
		})
	}
	if _, err := heapRegions([]byte("zz-yy rw-p 0 0 0\n"), 0); err == nil {
		t.Error("a line without addresses: no error")
	}
}

// TestHeap: the kernel's flags for the mapping that holds a heap object
// say what Heap asked, both ways.
func TestHeap(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	obj := make([]byte, 64<<10+len(t.Name()))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(obj)))
	for _, on := range []bool{true, false, true} {
		n, err := Heap(on)
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("the kernel refuses the advice: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		flag, other := "hg", "nh"
		if !on {
			flag, other = other, flag
		}
		flags := vmFlags(t, at)
		if n == 0 || !flags[flag] || flags[other] {
			t.Fatalf("Heap(%v) advised %d bytes; the heap's mapping has flags %v, want %s and not %s", on, n, flags, flag, other)
		}
	}
	runtime.KeepAlive(obj)
}

// vmFlags returns the VmFlags of the mapping that holds at, from
// /proc/self/smaps.
func vmFlags(t *testing.T, at uintptr) map[string]bool {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			start, _ := strconv.ParseUint(lo, 16, 64)
			end, _ := strconv.ParseUint(hi, 16, 64)
			in = uintptr(start) <= at && at < uintptr(end)
			continue
		}
		if in && fields[0] == "VmFlags:" {
			flags := map[string]bool{}
			for _, f := range fields[1:] {
				flags[f] = true
			}
			return flags
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", at)
	return nil
}

// TestPrepare: at a program's start, the runtime maps the bytes asked
// for, and they are not made resident. It runs in a process of its own
// (this test binary again): in this one, other tests have left the heap
// free memory that a later allocation would reuse, and zero first.
func TestPrepare(t *testing.T) {
	const n = 256 << 20
	if raceDetector {
		t.Skip("built with the race detector, which Prepare leaves alone")
	}
	if os.Getenv("HUGEPAGE_PREPARE_CHILD") == "1" {
		mappedBefore, rssBefore := runtimeMapped(), vmRSS(t)
		Prepare(n)
		fmt.Printf("prepared mapped=%d rss=%d\n", runtimeMapped()-mappedBefore, vmRSS(t)-rssBefore)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPrepare$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HUGEPAGE_PREPARE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var mapped, rss int64
	i := bytes.Index(out, []byte("prepared "))
	if i < 0 {
		t.Fatalf("child printed no result:\n%s", out)
	}
	if _, err := fmt.Sscanf(string(out[i:]), "prepared mapped=%d rss=%d", &mapped, &rss); err != nil {
		t.Fatalf("child's output: %v\n%s", err, out)
	}
	if mapped < n {
		t.Errorf("the runtime mapped %d MiB more, want at least %d", mapped>>20, n>>20)
	}
	if rss > 16<<20 {
		t.Errorf("resident memory grew by %d MiB: the prepared heap was touched", rss>>20)
	}
}

// runtimeMapped returns the memory the runtime has mapped.
func runtimeMapped() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// vmRSS returns the process's resident memory, from /proc/self/status.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
