// Command deb builds the sovdns Debian package with nfpm, used as a
// library: nothing is fetched at build time but Go modules. It is a module
// of its own so that nfpm's dependencies stay out of the server's.
//
//	go run . -src REPO -build DIR -goarch GOARCH -out DIR
//
// REPO is the sovdns tree (configs/VERSION, configs/sovdns.yaml,
// configs/sovdns.service); DIR (-build) holds the binary sovdns built for
// GOARCH and what packaging/gen wrote (man1/, completions/). The package,
// named sovdns_VERSION_ARCH.deb, goes to -out, and its path is printed.
// `make deb` runs the whole build.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Where the package installs what.
const (
	binPath    = "/usr/bin/sovdns"
	unitPath   = "/lib/systemd/system/sovdns.service"
	configDir  = "/etc/sovdns"
	configPath = "/etc/sovdns/sovdns.yaml"
	dataDir    = "/var/lib/sovdns"
	manDir     = "/usr/share/man/man1"
	bashPath   = "/usr/share/bash-completion/completions/sovdns"
	zshPath    = "/usr/share/zsh/vendor-completions/_sovdns"
	fishPath   = "/usr/share/fish/vendor_completions.d/sovdns.fish"
)

func main() {
	src := flag.String("src", "", "the sovdns source tree")
	build := flag.String("build", "", "directory holding the built sovdns binary, man1/ and completions/")
	goarch := flag.String("goarch", "", "GOARCH the binary was built for")
	goarm := flag.String("goarm", os.Getenv("GOARM"), "GOARM, for -goarch arm")
	out := flag.String("out", "", "directory to write the package into")
	maintainer := flag.String("maintainer", "sovdns developers <sovdns@localhost>", "the package's Maintainer field")
	flag.Parse()
	if *src == "" || *build == "" || *goarch == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: deb -src REPO -build DIR -goarch GOARCH -out DIR [-maintainer M]")
		os.Exit(2)
	}
	path, err := buildDeb(*src, *build, *goarch, *goarm, *out, *maintainer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

// buildDeb writes the package and returns its path.
func buildDeb(src, build, goarch, goarm, out, maintainer string) (string, error) {
	arch, err := debianArch(goarch, goarm)
	if err != nil {
		return "", err
	}
	v, err := os.ReadFile(filepath.Join(src, "configs", "VERSION"))
	if err != nil {
		return "", err
	}
	version := strings.TrimSpace(string(v))

	// What is made here (the packaged configuration, gzipped man pages)
	// is staged beside the build's other outputs.
	stage := filepath.Join(build, "deb")
	if err := os.RemoveAll(stage); err != nil {
		return "", err
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", err
	}
	conf, err := packagedConfig(filepath.Join(src, "configs", "sovdns.yaml"))
	if err != nil {
		return "", err
	}
	confFile := filepath.Join(stage, "sovdns.yaml")
	if err := os.WriteFile(confFile, conf, 0o640); err != nil {
		return "", err
	}

	contents := files.Contents{
		file(filepath.Join(build, "sovdns"), binPath, 0o755),
		file(filepath.Join(src, "configs", "sovdns.service"), unitPath, 0o644),
		{Destination: configDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: confFile, Destination: configPath, Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o640}},
		// Owned by sovdns from postinst on: the user does not exist
		// when the files are unpacked.
		{Destination: dataDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
		file(filepath.Join(build, "completions", "bash", "sovdns"), bashPath, 0o644),
		file(filepath.Join(build, "completions", "zsh", "_sovdns"), zshPath, 0o644),
		file(filepath.Join(build, "completions", "fish", "sovdns.fish"), fishPath, 0o644),
	}
	pages, err := filepath.Glob(filepath.Join(build, "man1", "*.1"))
	if err != nil {
		return "", err
	}
	if len(pages) == 0 {
		return "", fmt.Errorf("no man pages in %s: run packaging/gen first", filepath.Join(build, "man1"))
	}
	sort.Strings(pages)
	for _, p := range pages {
		gz, err := gzipTo(p, filepath.Join(stage, "man1"))
		if err != nil {
			return "", err
		}
		contents = append(contents, file(gz, manDir+"/"+filepath.Base(gz), 0o644))
	}
	for _, c := range contents {
		if c.Source == "" {
			continue
		}
		if _, err := os.Stat(c.Source); err != nil {
			return "", fmt.Errorf("%s: %w", c.Destination, err)
		}
	}

	scripts := filepath.Join(src, "packaging", "deb")
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "sovdns",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Description: "authoritative DNS server and recursive resolver\n" +
			"sovdns serves zones from a local zone database (with DNSSEC signing,\n" +
			"zone transfers, NOTIFY and dynamic UPDATE) and resolves recursively for\n" +
			"allowed clients, answering from what it holds when cut off from the\n" +
			"outside. It runs as the hardened systemd service sovdns.service.",
		Overridables: nfpm.Overridables{
			Depends:  []string{"adduser"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, fmt.Sprintf("sovdns_%s_%s.deb", version, arch))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	err = deb.Default.Package(info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return path, nil
}

// file is a regular file of the package.
func file(src, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
}

// debianArch names GOARCH (and GOARM) as Debian does.
func debianArch(goarch, goarm string) (string, error) {
	switch goarch {
	case "amd64", "arm64", "riscv64", "s390x", "loong64":
		return goarch, nil
	case "386":
		return "i386", nil
	case "ppc64le":
		return "ppc64el", nil
	case "arm":
		if goarm == "5" {
			return "armel", nil
		}
		return "armhf", nil
	}
	return "", fmt.Errorf("GOARCH %q has no Debian architecture here", goarch)
}

// packagedConfig is the documented configuration as the package installs
// it: the zone database in /var/lib/sovdns (StateDirectory of the unit)
// and no demo zone.
func packagedConfig(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, r := range []struct{ from, to string }{
		{"\ndata_dir: sovdns-data\n", "\ndata_dir: " + dataDir + "\n"},
		{"\ndemo_zone: true\n", "\ndemo_zone: false\n"},
	} {
		if n := bytes.Count(b, []byte(r.from)); n != 1 {
			return nil, fmt.Errorf("%s: %q found %d times, not once: update packaging/deb", path, strings.TrimSpace(r.from), n)
		}
		b = bytes.Replace(b, []byte(r.from), []byte(r.to), 1)
	}
	return b, nil
}

// gzipTo compresses the file at path into dir, as Debian ships man pages
// (gzip -9n: no name, no time, so that builds are reproducible).
func gzipTo(path, dir string) (string, error) {
	in, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(in); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	gz := filepath.Join(dir, filepath.Base(path)+".gz")
	return gz, os.WriteFile(gz, b.Bytes(), 0o644)
}
