//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// kernel is one kernel image to boot.
type kernel struct {
	label string
	image string
}

func imageKernel(path string) (kernel, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return kernel{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return kernel{}, err
	}
	return kernel{label: filepath.Base(abs), image: abs}, nil
}

// debianSources are where Debian serves its cloud kernels for bookworm: 6.1
// in bookworm and bookworm-security, 6.12 in bookworm-backports.
const debianSources = `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
`

// apt runs apt-get or apt-cache on a configuration of its own under
// cache/apt: its sources, lists and archives, none of the machine's. It
// installs nothing.
type apt struct{ dir string }

func newApt(cache string) (*apt, error) {
	a := &apt{dir: filepath.Join(cache, "apt")}
	for _, d := range []string{"lists/partial", "archives/partial", "sources.list.d"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return a, os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(debianSources), 0o644)
}

func (a *apt) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(a.dir, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + a.dir,
		"-o", "Dir::State::status=/dev/null",
		"-o", "Debug::NoLocking=1",
	}
	if os.Geteuid() == 0 {
		// The cache belongs to root; apt's _apt user could not write it.
		opts = append(opts, "-o", "APT::Sandbox::User=root")
	}
	c := exec.CommandContext(ctx, name, append(opts, args...)...)
	c.Stderr = os.Stderr
	return c
}

// debianKernel fetches (once) and unpacks Debian's newest cloud kernel of a
// series such as "6.1" or "6.12".
func debianKernel(ctx context.Context, cache, series string, logf func(string, ...any)) (kernel, error) {
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+$`).MatchString(series) {
		return kernel{}, fmt.Errorf("series %q: want MAJOR.MINOR", series)
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return kernel{}, fmt.Errorf("%s not found: Debian kernels need apt; pass kernel images with -kernel or KERNELS instead", tool)
		}
	}
	a, err := newApt(cache)
	if err != nil {
		return kernel{}, err
	}
	if err := a.updateOnce(ctx, logf); err != nil {
		return kernel{}, err
	}
	pkg, err := a.newestCloudImage(ctx, series)
	if err != nil {
		return kernel{}, err
	}
	debs := filepath.Join(cache, "deb")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return kernel{}, err
	}
	matches, _ := filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	if len(matches) == 0 {
		logf("apt-get download %s", pkg)
		c := a.cmd(ctx, "apt-get", "download", pkg)
		c.Dir, c.Stdout = debs, os.Stderr
		if err := c.Run(); err != nil {
			return kernel{}, fmt.Errorf("apt-get download %s: %w", pkg, err)
		}
		matches, _ = filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	}
	if len(matches) != 1 {
		return kernel{}, fmt.Errorf("want one %s .deb in %s, found %d", pkg, debs, len(matches))
	}
	dir := filepath.Join(cache, "unpacked", pkg)
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(images) == 0 {
		tmp := dir + ".tmp"
		_ = os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return kernel{}, err
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", matches[0], tmp).CombinedOutput(); err != nil {
			return kernel{}, fmt.Errorf("dpkg-deb -x %s: %w\n%s", matches[0], err, out)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return kernel{}, err
		}
		images, _ = filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	}
	if len(images) != 1 {
		return kernel{}, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", dir, len(images))
	}
	return kernel{label: strings.TrimPrefix(pkg, "linux-image-"), image: images[0]}, nil
}

var updated bool

func (a *apt) updateOnce(ctx context.Context, logf func(string, ...any)) error {
	if updated {
		return nil
	}
	logf("apt-get update (private lists in %s)", a.dir)
	c := a.cmd(ctx, "apt-get", "-q", "update")
	c.Stdout = nil
	if err := c.Run(); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	updated = true
	return nil
}

// newestCloudImage names the newest signed cloud image package of series:
// linux-image-6.1.0-N-cloud-amd64 or linux-image-6.12.N+debV-cloud-amd64.
func (a *apt) newestCloudImage(ctx context.Context, series string) (string, error) {
	re := `^linux-image-` + regexp.QuoteMeta(series) + `\.[0-9]+[-+][^ ]*-cloud-amd64$`
	out, err := a.cmd(ctx, "apt-cache", "search", "--names-only", re).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache search: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, _, ok := strings.Cut(line, " - "); ok && regexp.MustCompile(re).MatchString(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", errors.New("no Debian cloud kernel package for this series")
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	return names[len(names)-1], nil
}

var numRun = regexp.MustCompile(`[0-9]+|[^0-9]+`)

// naturalLess compares strings with their runs of digits as numbers.
func naturalLess(a, b string) bool {
	x, y := numRun.FindAllString(a, -1), numRun.FindAllString(b, -1)
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] == y[i] {
			continue
		}
		n, errN := strconv.Atoi(x[i])
		m, errM := strconv.Atoi(y[i])
		if errN == nil && errM == nil {
			return n < m
		}
		return x[i] < y[i]
	}
	return len(x) < len(y)
}
