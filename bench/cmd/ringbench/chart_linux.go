//go:build linux

package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart layout: a grid of cells, one per row (scenario); in each cell, one
// group of horizontal bars per metric, one bar per mode, with its value.
const (
	chartCols  = 3
	cellW      = 330
	barMaxW    = 200
	lineH      = 14
	chartPad   = 12
	legendH    = 40
	metricGapH = 6
)

var modePalette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
}

type chartMetric struct {
	name string
	get  func(*aggRow) float64
	fmt  func(float64) string // nil: siNum
}

var (
	tcpMetrics = []chartMetric{
		{"msgs/s (higher is better)", func(a *aggRow) float64 { return a.PerSec }, nil},
		{"p99 latency (lower is better)", func(a *aggRow) float64 { return float64(a.Lat.quantile(0.99).Nanoseconds()) / 1e3 }, usDur},
		{"server CPU us/msg (lower is better)", func(a *aggRow) float64 { return a.SrvUsPer }, nil},
	}
	relayMetrics = []chartMetric{
		{"forwarded pkt/s (higher is better)", func(a *aggRow) float64 { return a.PerSec }, nil},
		{"loss % (lower is better)", func(a *aggRow) float64 { return a.LossPct }, nil},
		{"relay CPU us/pkt (lower is better)", func(a *aggRow) float64 { return a.SrvUsPer }, nil},
	}
)

// writeChart draws rows as a PNG bar chart at path.
func writeChart(path string, cfg *benchConfig, rows []*aggRow) error {
	// group rows by row name, keeping order; collect the modes in order
	var names []string
	byName := map[string][]*aggRow{}
	var modes []string
	seenMode := map[string]bool{}
	for _, r := range rows {
		if _, ok := byName[r.Row]; !ok {
			names = append(names, r.Row)
		}
		byName[r.Row] = append(byName[r.Row], r)
		if !seenMode[r.Mode] {
			seenMode[r.Mode] = true
			modes = append(modes, r.Mode)
		}
	}
	modeColor := map[string]color.RGBA{}
	for i, m := range modes {
		modeColor[m] = modePalette[i%len(modePalette)]
	}
	maxModes := 1
	for _, n := range names {
		maxModes = max(maxModes, len(byName[n]))
	}
	cellH := lineH + 4 + len(tcpMetrics)*(lineH+maxModes*lineH+metricGapH) + chartPad
	gridRows := (len(names) + chartCols - 1) / chartCols
	w := chartPad*2 + chartCols*cellW
	h := legendH + max(1, gridRows)*cellH + chartPad
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	black := color.RGBA{0, 0, 0, 0xff}
	gray := color.RGBA{0x55, 0x55, 0x55, 0xff}
	title := fmt.Sprintf("ringbench %s: %d round(s) x %v per cell; servers %s, loadgen %s",
		orDefault(cfg.Preset, "custom"), cfg.Rounds, cfg.Duration, cpusOr(cfg.ServerCPUs), cpusOr(cfg.ClientCPUs))
	text(img, chartPad, 16, title, black)
	x := chartPad
	for _, m := range modes {
		fill(img, x, 24, 12, 10, modeColor[m])
		text(img, x+16, 33, m, black)
		x += 16 + 7*len(m) + 18
	}
	if len(names) == 0 {
		text(img, chartPad, legendH+20, "no rows", gray)
	}
	for i, name := range names {
		cx := chartPad + (i%chartCols)*cellW
		cy := legendH + (i/chartCols)*cellH
		set := byName[name]
		metrics := tcpMetrics
		if set[0].Relay {
			metrics = relayMetrics
		}
		text(img, cx, cy+lineH, name, black)
		y := cy + lineH + 4
		for _, m := range metrics {
			text(img, cx+4, y+lineH-3, m.name, gray)
			y += lineH
			top := 0.0
			for _, r := range set {
				top = max(top, m.get(r))
			}
			for _, r := range set {
				v := m.get(r)
				bw := 0
				if top > 0 && v > 0 {
					bw = max(1, int(float64(barMaxW)*v/top))
				}
				fill(img, cx+4, y+2, bw, lineH-4, modeColor[r.Mode])
				label := siNum(v)
				if m.fmt != nil {
					label = m.fmt(v)
				}
				if len(r.Errs) > 0 {
					label += " ERR"
				}
				text(img, cx+4+bw+4, y+lineH-3, label, black)
				y += lineH
			}
			y += metricGapH
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func cpusOr(c []int) string {
	if len(c) == 0 {
		return "unpinned"
	}
	return "CPU " + joinInts(c)
}

func fill(img *image.RGBA, x, y, w, h int, c color.Color) {
	if w <= 0 || h <= 0 {
		return
	}
	draw.Draw(img, image.Rect(x, y, x+w, y+h), image.NewUniform(c), image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// siNum formats v compactly: 1.23M, 45.6k, 12.3, 0.456.
func siNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fnum(v)
}

// usDur formats microseconds as us or ms.
func usDur(us float64) string {
	if us >= 1000 {
		return fnum(us/1000) + "ms"
	}
	return fnum(us) + "us"
}
