package mapped

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// release is madvise(MADV_DONTNEED) over size bytes from addr. The address
// comes from bbolt as an integer, so the call is made with it as it is.
func release(addr uintptr, size int64) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		return os.NewSyscallError("madvise", errno)
	}
	return nil
}

// resident sums the Rss lines of the mappings of path in /proc/self/smaps.
func resident(path string) (int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var kib int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's first line
			in = fields[len(fields)-1] == path
			continue
		}
		if in && fields[0] == "Rss:" && len(fields) > 1 {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/smaps: %w", err)
			}
			kib += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("/proc/self/smaps: %w", err)
	}
	return kib << 10, nil
}
