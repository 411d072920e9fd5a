// Command benchtable reads `go test -bench` output of the interop
// benchmarks on stdin and prints a Markdown table of every figure reported
// as net_UNIT, netio_UNIT and ratio_UNIT: one row per benchmark and unit,
// averaged over repeated runs (-count).
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var procsSuffix = regexp.MustCompile(`-\d+$`)

type row struct {
	bench, unit string
	sum         [3]float64 // net, netio, ratio
	n           [3]int
}

func main() {
	var rows []*row
	index := map[string]*row{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		// f[1] is the iteration count; then value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			impl, unit, ok := strings.Cut(f[i+1], "_")
			col := map[string]int{"net": 0, "netio": 1, "ratio": 2}
			c, known := col[impl]
			if !ok || !known {
				continue
			}
			key := name + " " + unit
			r := index[key]
			if r == nil {
				r = &row{bench: name, unit: unit}
				index[key] = r
				rows = append(rows, r)
			}
			r.sum[c] += v
			r.n[c]++
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	fmt.Println("| benchmark | figure | net | netio | netio/net |")
	fmt.Println("| --- | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		cell := func(c int) string {
			if r.n[c] == 0 {
				return "–"
			}
			v := r.sum[c] / float64(r.n[c])
			switch {
			case c == 2:
				return fmt.Sprintf("%.2f", v)
			case v >= 100:
				return fmt.Sprintf("%.0f", v)
			default:
				return fmt.Sprintf("%.3g", v)
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", strings.TrimPrefix(r.bench, "Benchmark"), r.unit, cell(0), cell(1), cell(2))
	}
}
