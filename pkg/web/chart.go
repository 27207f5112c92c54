package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// chart is a bar chart drawn on the server as inline SVG: no script, no
// library, and it reads the same in every browser and in a screenshot.
type chart struct {
	Title   string
	Summary string // what a screen reader says instead of the bars
	SVG     template.HTML
}

const (
	chartW, chartH = 480, 160
	padL, padB     = 64, 22 // room for the y labels and the x labels
	padT           = 10
)

// newChart draws vals as bars, left (first) to right (last), each with a
// tooltip; tick formats the y axis's top value.
func newChart(title string, vals []float64, tips []string, first, last, summary string, tick func(float64) string) chart {
	top := niceMax(vals)
	plotW, plotH := float64(chartW-padL), float64(chartH-padB-padT)
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartH, esc(title+": "+summary))
	// Grid: the top value and the middle.
	for _, f := range []float64{1, 0.5} {
		y := float64(padT) + plotH*(1-f)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW, y, y)
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, y+4, esc(tick(top*f)))
	}
	base := float64(padT) + plotH
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW, base, base)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">0</text>`, padL-6, base+4)
	if n := len(vals); n > 0 {
		slot := plotW / float64(n)
		w := math.Max(1, slot*0.8)
		for i, v := range vals {
			h := 0.0
			if top > 0 {
				h = plotH * v / top
			}
			if v > 0 {
				h = math.Max(h, 1.5) // a single job must show
			}
			x := float64(padL) + float64(i)*slot + (slot-w)/2
			// The whole slot is the hover target, so empty intervals have a tooltip too.
			fmt.Fprintf(&b, `<g><title>%s</title><rect class="slot" x="%.1f" y="%d" width="%.1f" height="%.1f"/>`,
				esc(tips[i]), float64(padL)+float64(i)*slot, padT, slot, plotH)
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></g>`, x, base-h, w, h)
		}
	}
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">%s</text>`, padL, chartH-4, esc(first))
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d" text-anchor="end">%s</text>`, chartW, chartH-4, esc(last))
	b.WriteString(`</svg>`)
	return chart{Title: title, Summary: summary, SVG: template.HTML(b.String())}
}

// niceMax rounds the largest value up to 1, 2 or 5 times a power of ten.
func niceMax(vals []float64) float64 {
	m := 0.0
	for _, v := range vals {
		m = math.Max(m, v)
	}
	if m <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(m)))
	for _, f := range []float64{1, 2, 5, 10} {
		if m <= f*p {
			return f * p
		}
	}
	return 10 * p
}

func intTick(v float64) string {
	if v != math.Trunc(v) {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// hourTick labels audio hours, in minutes below one hour.
func hourTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		m := v * 60
		if m < 10 {
			return strings.TrimSuffix(fmt.Sprintf("%.1f", m), ".0") + " min"
		}
		return fmt.Sprintf("%.0f min", m)
	case v < 10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " h"
	}
	return fmt.Sprintf("%.0f h", v)
}
