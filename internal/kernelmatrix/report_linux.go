//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// bootResult is what one guest reported.
type bootResult struct {
	kernel, mode string
	env          string // the guest's @@ENV line
	na           string // the mode does not apply to this kernel: why
	err          string // the guest did not finish: why
	console      string // the console's last lines
	elapsed      time.Duration
	pkgs         []*pkgResult
}

// pkgResult is one test binary's run.
type pkgResult struct {
	name, dir, importPath string
	started, ended        bool
	rc                    int
	secs                  float64
	pass, fail, skip      int // top-level tests
	failures              []failure
	skips                 map[string]int // why tests (and subtests) skipped
	raw                   []byte
}

type failure struct {
	test, text string
}

func (r *bootResult) failed() bool {
	if r.err != "" {
		return true
	}
	for _, p := range r.pkgs {
		if p.fail > 0 || len(p.failures) > 0 || !p.ended {
			return true
		}
	}
	return false
}

func (r *bootResult) summary() string {
	if r.na != "" {
		return "n/a: " + r.na
	}
	var pass, fail, skip int
	for _, p := range r.pkgs {
		pass, fail, skip = pass+p.pass, fail+p.fail, skip+p.skip
	}
	s := fmt.Sprintf("%d pass, %d fail, %d skip", pass, fail, skip)
	if r.err != "" {
		s += "; " + r.err
	}
	return s
}

// parseResults splits the results port's text into packages and converts
// each with go tool test2json.
func parseResults(r *bootResult, raw []byte, tests []testBinary) {
	byName := map[string]*pkgResult{}
	for _, tb := range tests {
		p := &pkgResult{name: tb.Name, dir: tb.Dir, importPath: tb.ImportPath}
		byName[tb.Name] = p
		r.pkgs = append(r.pkgs, p)
	}
	var cur *pkgResult
	done := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, markEnv):
			r.env = strings.TrimPrefix(line, markEnv)
		case strings.HasPrefix(line, markMode):
			st, detail, _ := strings.Cut(strings.TrimPrefix(line, markMode), " ")
			switch st {
			case "n/a":
				r.na = detail
			case "ok":
			default:
				r.err = "guest setup " + st + " " + detail
			}
		case strings.HasPrefix(line, markBegin):
			cur = byName[strings.TrimPrefix(line, markBegin)]
			if cur != nil {
				cur.started = true
			}
		case strings.HasPrefix(line, markEnd):
			f := strings.Fields(strings.TrimPrefix(line, markEnd))
			if p := byName[f[0]]; p != nil {
				p.ended = true
				for _, kv := range f[1:] {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "rc":
						p.rc, _ = strconv.Atoi(v)
					case "secs":
						p.secs, _ = strconv.ParseFloat(v, 64)
					}
				}
			}
			cur = nil
		case line == markDone:
			done = true
		case cur != nil:
			cur.raw = append(cur.raw, line...)
			cur.raw = append(cur.raw, '\n')
		}
	}
	if r.na != "" {
		r.pkgs = nil
		return
	}
	if !done && r.err == "" {
		r.err = "the guest stopped before it finished"
	}
	for _, p := range r.pkgs {
		if p.started {
			p.analyze()
		}
	}
}

type testEvent struct {
	Action  string
	Test    string
	Output  string
	Elapsed float64
}

// analyze counts the top-level tests by outcome and keeps every failed
// test's output.
func (p *pkgResult) analyze() {
	cmd := exec.Command("go", "tool", "test2json", "-p", p.importPath)
	cmd.Stdin = bytes.NewReader(p.raw)
	out, err := cmd.Output()
	if err != nil {
		p.failures = append(p.failures, failure{"(test2json)", err.Error()})
		return
	}
	outputs := map[string][]string{}
	final := map[string]string{}
	var order []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var e testEvent
		if dec.Decode(&e) != nil {
			break
		}
		switch e.Action {
		case "output":
			if _, ok := outputs[e.Test]; !ok {
				order = append(order, e.Test)
			}
			outputs[e.Test] = append(outputs[e.Test], e.Output)
		case "pass", "fail", "skip":
			if e.Test != "" {
				final[e.Test] = e.Action
			}
		}
	}
	hasFailedChild := map[string]bool{}
	for t, a := range final {
		if a == "fail" {
			if i := strings.IndexByte(t, '/'); i >= 0 {
				hasFailedChild[t[:i]] = true
			}
		}
	}
	names := make([]string, 0, len(final))
	for t := range final {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		a := final[t]
		if !strings.Contains(t, "/") {
			switch a {
			case "pass":
				p.pass++
			case "fail":
				p.fail++
			case "skip":
				p.skip++
			}
		}
		if a == "skip" {
			if p.skips == nil {
				p.skips = map[string]int{}
			}
			p.skips[skipReason(outputs[t])]++
		}
		if a == "fail" {
			text := testText(outputs[t])
			if hasFailedChild[t] && !strings.Contains(text, "\n") {
				continue // its subtests carry the story
			}
			p.failures = append(p.failures, failure{t, text})
		}
	}
	switch {
	case !p.ended:
		p.failures = append(p.failures, failure{"(package)", "the guest stopped during this package:\n" + testText(outputs[""])})
	case p.rc == -2:
		p.failures = append(p.failures, failure{"(package)", "killed after the test timeout:\n" + testText(outputs[""])})
	case p.rc != 0 && p.fail == 0:
		p.failures = append(p.failures, failure{"(package)", fmt.Sprintf("exit status %d:\n%s", p.rc, testText(outputs[""]))})
	}
}

var fileLine = regexp.MustCompile(`^\s*\S+\.go:\d+: `)

// skipReason is the last line a skipped test logged before it skipped, without
// its file:line prefix.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return strings.TrimSpace(fileLine.ReplaceAllString(lines[i], ""))
	}
	return "(no reason given)"
}

// testText is a test's output without test2json's framing lines, its last
// 60 lines at most.
func testText(lines []string) string {
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") {
			continue
		}
		keep = append(keep, strings.TrimRight(l, "\n"))
	}
	if len(keep) > 60 {
		keep = append([]string{fmt.Sprintf("[%d lines cut]", len(keep)-60)}, keep[len(keep)-60:]...)
	}
	return strings.Join(keep, "\n")
}

// report prints the table, then every failure's text.
func report(results []*bootResult, accelName string, o *options) string {
	var b strings.Builder
	strict := "unset"
	if o.strict {
		strict = "1"
	}
	fmt.Fprintf(&b, "\nringwire kernel matrix: %s, QEMU %s, %d CPUs, %d MiB per guest, RINGWIRE_STRICT %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), accelName, o.cpus, o.memMiB, strict)
	fmt.Fprintf(&b, "%-30s %-8s %-30s %5s %5s %5s %8s\n", "kernel", "mode", "package", "pass", "fail", "skip", "time")
	for _, r := range results {
		if r.na != "" {
			fmt.Fprintf(&b, "%-30s %-8s %-30s n/a: %s\n", r.kernel, r.mode, "(all)", r.na)
			continue
		}
		for _, p := range r.pkgs {
			if !p.started {
				fmt.Fprintf(&b, "%-30s %-8s %-30s not run\n", r.kernel, r.mode, p.dir)
				continue
			}
			mark := ""
			if len(p.failures) > 0 && p.fail == 0 {
				mark = " !"
			}
			fmt.Fprintf(&b, "%-30s %-8s %-30s %5d %5d %5d %7.1fs%s\n", r.kernel, r.mode, p.dir, p.pass, p.fail, p.skip, p.secs, mark)
		}
		fmt.Fprintf(&b, "%-30s %-8s guest: %s; %v", r.kernel, r.mode, r.env, r.elapsed.Round(time.Second))
		if r.err != "" {
			fmt.Fprintf(&b, "; %s", r.err)
		}
		b.WriteString("\n")
	}
	first := true
	for _, r := range results {
		if r.err != "" {
			if first {
				b.WriteString("\nFailures\n")
				first = false
			}
			fmt.Fprintf(&b, "\n--- %s / %s: %s\nconsole:\n%s\n", r.kernel, r.mode, r.err, indent(r.console))
		}
		for _, p := range r.pkgs {
			for _, f := range p.failures {
				if first {
					b.WriteString("\nFailures\n")
					first = false
				}
				fmt.Fprintf(&b, "\n--- %s / %s / %s / %s\n%s\n", r.kernel, r.mode, p.dir, f.test, indent(f.text))
			}
		}
	}
	if first {
		b.WriteString("\nNo failures.\n")
	}
	b.WriteString("\nSkips (tests and subtests, by reason)\n")
	for _, r := range results {
		reasons := map[string]int{}
		for _, p := range r.pkgs {
			for why, n := range p.skips {
				reasons[p.dir+": "+why] += n
			}
		}
		if len(reasons) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s / %s\n", r.kernel, r.mode)
		keys := make([]string, 0, len(reasons))
		for k := range reasons {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %3d  %s\n", reasons[k], k)
		}
	}
	return b.String()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
