//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
)

// writeCompact prints what a reader looks at first, one block per row: per
// mode msgs/s, p99, server CPU and syscalls per message, RSS, and the ratios
// to the baselines (package net and gnet); then a one-line verdict. files
// lists the files the full table and the chart went to ("what: path").
func writeCompact(w io.Writer, cfg *benchConfig, rows []*aggRow, files []string) {
	preset := cfg.Preset
	if preset == "" {
		preset = "custom"
	}
	pin := "not pinned"
	if len(cfg.ServerCPUs) > 0 {
		pin = "servers on CPU " + joinInts(cfg.ServerCPUs)
		if len(cfg.ClientCPUs) > 0 {
			pin += ", load generator on CPU " + joinInts(cfg.ClientCPUs)
		}
	}
	fmt.Fprintf(w, "ringbench %s: %d round(s) × %v per cell, modes interleaved, %s\n", preset, cfg.Rounds, cfg.Duration, pin)
	var tcp, udp []*aggRow
	for _, r := range rows {
		if r.Relay {
			udp = append(udp, r)
		} else {
			tcp = append(tcp, r)
		}
	}
	if len(tcp) > 0 {
		bases := presentBaselines(cfg.Baselines, tcp)
		hdr := []string{"TCP echo", "msgs/s", "p99 µs", "srv µs/msg", "srv sys/msg", "RSS MiB"}
		for _, b := range bases {
			hdr = append(hdr, "msgs/s ×"+b)
		}
		for _, b := range bases {
			hdr = append(hdr, "µs/msg ×"+b)
		}
		writeBlocks(w, hdr, tcp, func(r *aggRow, row []*aggRow) []string {
			cells := []string{"  " + r.Mode, fnum(r.PerSec), fus(r.P99), fnum(r.SrvUsPer), fnum(r.SysPer), fnum(r.RSSMiB)}
			for _, b := range bases {
				cells = append(cells, ratioTo(r, findMode(row, b), func(a *aggRow) float64 { return a.PerSec }))
			}
			for _, b := range bases {
				cells = append(cells, ratioTo(r, findMode(row, b), func(a *aggRow) float64 { return a.SrvUsPer }))
			}
			return cells
		}, func(row []*aggRow) string { return verdict(row, bases, "server", "msg", "msgs/s") })
	}
	if len(udp) > 0 {
		bases := presentBaselines([]string{"gorelay", "udpconn"}, udp)
		if len(bases) > 1 {
			bases = bases[:1]
		}
		hdr := []string{"RTP relay", "fwd pkt/s", "loss %", "relay µs/pkt", "relay sys/pkt", "RSS MiB"}
		for _, b := range bases {
			hdr = append(hdr, "µs/pkt ×"+b)
		}
		writeBlocks(w, hdr, udp, func(r *aggRow, row []*aggRow) []string {
			cells := []string{"  " + r.Mode, fnum(r.PerSec), fmt.Sprintf("%.2f", r.LossPct), fnum(r.SrvUsPer), fnum(r.SysPer), fnum(r.RSSMiB)}
			for _, b := range bases {
				cells = append(cells, ratioTo(r, findMode(row, b), func(a *aggRow) float64 { return a.SrvUsPer }))
			}
			return cells
		}, func(row []*aggRow) string { return verdict(row, bases, "relay", "pkt", "pkt/s") })
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "srv µs/msg: the server process's CPU time per message; srv sys/msg: its syscalls per message (perf); ×M: ratio to mode M in the same row.")
	for _, f := range files {
		fmt.Fprintln(w, f)
	}
}

// writeBlocks prints hdr and, for each row (rows grouped by Row in order),
// the row's name, one aligned line per mode and the row's verdict.
func writeBlocks(w io.Writer, hdr []string, rows []*aggRow, line func(r *aggRow, row []*aggRow) []string, verdictOf func(row []*aggRow) string) {
	groups := groupRows(rows)
	table := [][]string{hdr}
	for _, g := range groups {
		for _, r := range g {
			table = append(table, line(r, g))
		}
	}
	widths := make([]int, len(hdr))
	for _, cells := range table {
		for i, c := range cells {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	format := func(cells []string) string {
		var b strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, format(hdr))
	k := 1
	for _, g := range groups {
		fmt.Fprintln(w, g[0].Row)
		for range g {
			fmt.Fprintln(w, format(table[k]))
			k++
		}
		fmt.Fprintln(w, "  → "+verdictOf(g))
	}
}

// groupRows splits rows into runs of the same Row, in order.
func groupRows(rows []*aggRow) [][]*aggRow {
	var out [][]*aggRow
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1][0].Row == r.Row {
			out[n-1] = append(out[n-1], r)
			continue
		}
		out = append(out, []*aggRow{r})
	}
	return out
}

// presentBaselines returns the modes of want that appear in rows, in order.
func presentBaselines(want []string, rows []*aggRow) []string {
	var out []string
	for _, b := range want {
		for _, r := range rows {
			if r.Mode == b {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

func findMode(row []*aggRow, mode string) *aggRow {
	for _, r := range row {
		if r.Mode == mode {
			return r
		}
	}
	return nil
}

func ratioTo(r, base *aggRow, f func(*aggRow) float64) string {
	if base == nil {
		return "n/a"
	}
	return ratio(f(r), f(base))
}

// verdict is one line on a row: which mode cost the server (who) the least
// CPU per unit, against the baselines; which moved the most; and what
// limited the row (when the load generator saturated, msgs/s measures it more
// than the server). Relay rows name any mode that lost packets.
func verdict(row []*aggRow, bases []string, who, unit, rate string) string {
	var cheapest, fastest *aggRow
	for _, r := range row {
		if r.Rounds == 0 {
			continue
		}
		if r.SrvUsPer > 0 && (cheapest == nil || r.SrvUsPer < cheapest.SrvUsPer) {
			cheapest = r
		}
		if fastest == nil || r.PerSec > fastest.PerSec {
			fastest = r
		}
	}
	if cheapest == nil {
		return "no mode completed a round"
	}
	var parts []string
	var vs []string
	for _, b := range bases {
		if br := findMode(row, b); br != nil && br != cheapest {
			vs = append(vs, ratio(cheapest.SrvUsPer, br.SrvUsPer)+"× "+b)
		}
	}
	least := fmt.Sprintf("least %s CPU per %s: %s (%s µs", who, unit, cheapest.Mode, fnum(cheapest.SrvUsPer))
	if len(vs) > 0 {
		least += ", " + strings.Join(vs, ", ")
	}
	parts = append(parts, least+")")
	parts = append(parts, "most "+rate+": "+fastest.Mode)
	var lossy []string
	for _, r := range row {
		if r.Relay && r.LossPct >= 0.01 {
			lossy = append(lossy, fmt.Sprintf("%s %.2f%%", r.Mode, r.LossPct))
		}
	}
	if len(lossy) > 0 {
		parts = append(parts, "loss: "+strings.Join(lossy, ", "))
	}
	sat, errs := false, 0
	for _, r := range row {
		sat = sat || r.Saturated
		errs += len(r.Errs)
	}
	if sat {
		parts = append(parts, "load generator saturated: read CPU per "+unit+", not "+rate)
	} else {
		parts = append(parts, "limit: "+fastest.Bottleneck)
	}
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%d failed cell(s), see the full table", errs))
	}
	return strings.Join(parts, "; ")
}
