package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/sovdns/sovdns/zone"
	"github.com/sovdns/sovdns/zonestore"
)

// isDir reports whether path names a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// zoneFiles returns the files the arguments name: each file, and the
// regular files of each directory (not those whose names start with a
// dot), in name order.
func zoneFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if !isDir(a) {
			out = append(out, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			out = append(out, filepath.Join(a, e.Name()))
		}
	}
	return out, nil
}

// parsed is one file of an import of many: its zone, or why not.
type parsed struct {
	file string
	z    *zone.Zone
	err  error
}

// parseMany parses and builds every file on all CPUs; the origin of a
// file that names none is its file name less a .zone suffix.
func parseMany(files []string) []parsed {
	out := make([]parsed, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = parseOne(files[i])
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func parseOne(file string) parsed {
	p, err := zonestore.ParseFile(file, "")
	if err == nil && p.Origin == "." {
		name := strings.TrimSuffix(filepath.Base(file), ".zone")
		p, err = zonestore.ParseFile(file, zone.Fqdn(name))
	}
	if err != nil {
		return parsed{file: file, err: err}
	}
	z, err := p.Build()
	return parsed{file: file, z: z, err: err}
}

// importChunk is the number of zone files read and then imported at a
// time.
const importChunk = 2000

// zoneOrigin is the origin of a parsed zone, empty when it failed.
func zoneOrigin(p parsed) string {
	if p.z == nil {
		return ""
	}
	return p.z.Origin
}

// importMany imports every zone the arguments name (see zone import).
func (g *globals) importMany(cmd *cobra.Command, args []string, replace bool) error {
	files, err := zoneFiles(args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return &exitError{code: 2, err: fmt.Errorf("no zone files in %s", strings.Join(args, " "))}
	}
	db, c, err := g.openDB(cmd, false)
	if err != nil {
		return err
	}
	defer db.Close()

	// Counted as the zones are written (or fail), a batch at a time.
	bar := g.progress(c).Start("zone import", int64(len(files)), "files")
	defer bar.Finish()
	type failure struct {
		File  string `json:"file"`
		Zone  string `json:"zone,omitempty"`
		Error string `json:"error"`
	}
	var failed []failure
	// The files are read a chunk at a time, the next chunk while the one
	// before is written: the work overlaps, and only two chunks of zones
	// are in memory at once.
	chunks := make(chan []parsed)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for start := 0; start < len(files); start += importChunk {
			ps := parseMany(files[start:min(start+importChunk, len(files))])
			select {
			case chunks <- ps:
			case <-stop:
				return
			}
		}
	}()
	forget, _ := db.(interface{ Forget(...string) })
	first := map[string]string{} // origin -> the file it was first read from
	created, replaced := 0, 0
	for ps := range chunks {
		var zs []*zone.Zone
		var zfiles []string
		for _, p := range ps {
			switch f, dup := first[zoneOrigin(p)]; {
			case p.err != nil:
				failed = append(failed, failure{File: p.file, Error: p.err.Error()})
			case dup:
				failed = append(failed, failure{File: p.file, Zone: p.z.Origin,
					Error: fmt.Sprintf("zone %s: %v (also in %s)", p.z.Origin, zonestore.ErrDuplicateZone, f)})
			default:
				first[p.z.Origin] = p.file
				zs = append(zs, p.z)
				zfiles = append(zfiles, p.file)
			}
		}
		bar.Add(int64(len(ps) - len(zs))) // failed or given twice: done
		written := 0
		outcomes, err := db.ImportMany(cmdContext(cmd), zs, replace, func(n int) {
			bar.Add(int64(n - written))
			written = n
		})
		if err != nil {
			return err
		}
		var origins []string
		for i, o := range outcomes {
			switch {
			case o.Error != "":
				failed = append(failed, failure{File: zfiles[i], Zone: o.Zone, Error: o.Error})
			case o.Result.Created:
				created++
			default:
				replaced++
			}
			origins = append(origins, o.Zone)
		}
		if forget != nil {
			forget.Forget(origins...) // this process serves nothing
		}
	}
	bar.Finish() // before the summary
	slices.SortFunc(failed, func(a, b failure) int { return strings.Compare(a.File, b.File) })
	if g.json {
		if failed == nil {
			failed = []failure{}
		}
		if err := g.printJSON(map[string]any{"files": len(files), "created": created, "replaced": replaced, "failed": failed}); err != nil {
			return err
		}
	} else {
		for _, f := range failed {
			fmt.Fprintf(g.stderr, "sovdns: %s: %s\n", f.File, f.Error)
		}
		fmt.Fprintf(g.stdout, "imported %d of %d zone files: %d created, %d replaced, %d failed\n",
			created+replaced, len(files), created, replaced, len(failed))
	}
	if len(failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d zone files failed", len(failed), len(files))}
	}
	return nil
}
