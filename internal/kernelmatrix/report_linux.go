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

// ranAny reports whether any test binary started in the guest.
func (r *bootResult) ranAny() bool {
	for _, p := range r.pkgs {
		if p.started {
			return true
		}
	}
	return false
}

// pkgResult is one test binary's run.
type pkgResult struct {
	name, dir, importPath string
	started, ended        bool
	rc                    int
	secs                  float64
	pass, fail, skip      int // top-level tests
	flaky                 int // top-level tests that failed, then passed when rerun
	failures              []failure
	flakes                []failure      // the first failures of the flaky tests
	skips                 map[string]int // why tests (and subtests) skipped
	raw, rerunRaw         []byte
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
	var pass, fail, skip, flaky int
	for _, p := range r.pkgs {
		pass, fail, skip, flaky = pass+p.pass, fail+p.fail, skip+p.skip, flaky+p.flaky
	}
	s := fmt.Sprintf("%d pass, %d fail, %d skip, %d flaky", pass, fail, skip, flaky)
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
	rerun := false
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
			name, suffix, _ := strings.Cut(strings.TrimPrefix(line, markBegin), " ")
			cur, rerun = byName[name], suffix == markRerun
			if cur != nil && !rerun {
				cur.started = true
			}
		case strings.HasPrefix(line, markEnd):
			f := strings.Fields(strings.TrimPrefix(line, markEnd))
			if len(f) > 1 && f[1] == markRerun {
				cur = nil
				continue
			}
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
		case cur != nil && rerun:
			cur.rerunRaw = append(cur.rerunRaw, line...)
			cur.rerunRaw = append(cur.rerunRaw, '\n')
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

// testRun is one run of a test binary as test2json sees it.
type testRun struct {
	outputs map[string][]string // by test; "" is the package's own output
	final   map[string]string   // pass, fail or skip, by test
}

func decodeRun(importPath string, raw []byte) (testRun, error) {
	r := testRun{outputs: map[string][]string{}, final: map[string]string{}}
	cmd := exec.Command("go", "tool", "test2json", "-p", importPath)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		return r, fmt.Errorf("go tool test2json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var e testEvent
		if dec.Decode(&e) != nil {
			return r, nil
		}
		switch e.Action {
		case "output":
			r.outputs[e.Test] = append(r.outputs[e.Test], e.Output)
		case "pass", "fail", "skip":
			if e.Test != "" {
				r.final[e.Test] = e.Action
			}
		}
	}
}

// topLevel is the top-level test a test or subtest belongs to.
func topLevel(test string) string {
	top, _, _ := strings.Cut(test, "/")
	return top
}

// analyze counts the top-level tests by outcome, keeps every failed test's
// output and the reasons for skips, and moves a test that failed but passed
// when rerun from the failed to the flaky.
func (p *pkgResult) analyze() {
	run, err := decodeRun(p.importPath, p.raw)
	if err != nil {
		p.failures = append(p.failures, failure{"(test2json)", err.Error()})
		return
	}
	passedAgain := map[string]bool{}
	if len(p.rerunRaw) > 0 {
		if again, err := decodeRun(p.importPath, p.rerunRaw); err == nil {
			for t, a := range again.final {
				if a == "pass" && !strings.Contains(t, "/") {
					passedAgain[t] = true
				}
			}
		}
	}
	hasFailedChild := map[string]bool{}
	for t, a := range run.final {
		if a == "fail" && strings.Contains(t, "/") {
			hasFailedChild[topLevel(t)] = true
		}
	}
	names := make([]string, 0, len(run.final))
	for t := range run.final {
		names = append(names, t)
	}
	sort.Strings(names)
	firstFails := 0
	for _, t := range names {
		a := run.final[t]
		flaky := a == "fail" && passedAgain[topLevel(t)]
		if !strings.Contains(t, "/") {
			switch {
			case a == "pass":
				p.pass++
			case flaky:
				p.flaky++
				firstFails++
			case a == "fail":
				p.fail++
				firstFails++
			case a == "skip":
				p.skip++
			}
		}
		if a == "skip" {
			if p.skips == nil {
				p.skips = map[string]int{}
			}
			p.skips[skipReason(run.outputs[t])]++
		}
		if a == "fail" {
			text := testText(run.outputs[t])
			if hasFailedChild[t] && !strings.Contains(text, "\n") {
				continue // its subtests carry the story
			}
			if flaky {
				p.flakes = append(p.flakes, failure{t, text})
			} else {
				p.failures = append(p.failures, failure{t, text})
			}
		}
	}
	switch {
	case !p.ended:
		p.failures = append(p.failures, failure{"(package)", "the guest stopped during this package:\n" + testText(run.outputs[""])})
	case p.rc == -2:
		p.failures = append(p.failures, failure{"(package)", "killed after the test timeout:\n" + testText(run.outputs[""])})
	case p.rc != 0 && firstFails == 0:
		p.failures = append(p.failures, failure{"(package)", fmt.Sprintf("exit status %d:\n%s", p.rc, testText(run.outputs[""]))})
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
	fmt.Fprintf(&b, "%-30s %-8s %-30s %5s %5s %5s %5s %8s\n", "kernel", "mode", "package", "pass", "fail", "skip", "flaky", "time")
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
			fmt.Fprintf(&b, "%-30s %-8s %-30s %5d %5d %5d %5d %7.1fs%s\n", r.kernel, r.mode, p.dir, p.pass, p.fail, p.skip, p.flaky, p.secs, mark)
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
	first = true
	for _, r := range results {
		for _, p := range r.pkgs {
			for _, f := range p.flakes {
				if first {
					b.WriteString("\nFlaky (failed, then passed when rerun)\n")
					first = false
				}
				fmt.Fprintf(&b, "\n--- %s / %s / %s / %s\n%s\n", r.kernel, r.mode, p.dir, f.test, indent(f.text))
			}
		}
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
