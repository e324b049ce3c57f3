package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// ChartSeries is one colour of bars: a value per category, optionally with
// a min–max whisker. NaN values are not drawn.
type ChartSeries struct {
	Name   string
	Color  string
	Values []float64
	Lo, Hi []float64
}

// BarChart is a grouped bar chart rendered as plain SVG (no scripts, no
// external fonts), so it displays on GitHub and in any browser.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Series        []ChartSeries
	// Log selects a logarithmic y axis (latencies).
	Log bool
	// Format formats value labels and ticks (default CompactNumber).
	Format        func(float64) string
	Width, Height int
	// Note is a line of small text under the chart.
	Note string
	// Refs are labelled horizontal reference lines (targets).
	Refs []RefLine
}

// RefLine is a dashed horizontal line at Value with a label.
type RefLine struct {
	Value float64
	Label string
}

// Palette is the default series colours (colour-blind safe, Okabe–Ito).
var Palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"}

// CompactNumber formats 1234 as 1.23k, 12345678 as 12.3M, 0.5 as 0.5.
func CompactNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trimFloat(v/1e6, 3) + "M"
	case a >= 1e3:
		return trimFloat(v/1e3, 3) + "k"
	}
	return trimFloat(v, 3)
}

// trimFloat formats v with sig significant digits and no trailing zeros.
func trimFloat(v float64, sig int) string {
	if v == 0 {
		return "0"
	}
	d := max(sig-1-int(math.Floor(math.Log10(math.Abs(v)))), 0)
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// SVG renders the chart.
func (c *BarChart) SVG() []byte {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 880
	}
	if h == 0 {
		h = 400
	}
	format := c.Format
	if format == nil {
		format = CompactNumber
	}
	const left, right, top, bottom = 72, 16, 44, 78
	pw, ph := float64(w-left-right), float64(h-top-bottom)

	// Value range.
	hi, lo := 0.0, math.Inf(1)
	for _, r := range c.Refs {
		hi, lo = max(hi, r.Value), min(lo, r.Value)
	}
	for _, s := range c.Series {
		for i, v := range s.Values {
			for _, x := range []float64{v, at(s.Hi, i), at(s.Lo, i)} {
				if !math.IsNaN(x) && x > 0 {
					hi, lo = max(hi, x), min(lo, x)
				}
			}
		}
	}
	if hi == 0 {
		hi, lo = 1, 1
	}
	var ticks []float64
	var yOf func(float64) float64
	if c.Log {
		lmin := math.Floor(math.Log10(lo))
		lmax := math.Ceil(math.Log10(hi))
		if lmax == lmin {
			lmax++
		}
		for e := lmin; e <= lmax; e++ {
			ticks = append(ticks, math.Pow(10, e))
			if lmax-lmin <= 2 && e < lmax { // few decades: 2× and 5× ticks too
				ticks = append(ticks, 2*math.Pow(10, e), 5*math.Pow(10, e))
			}
		}
		yOf = func(v float64) float64 {
			if v <= 0 {
				return float64(top) + ph
			}
			f := (math.Log10(v) - lmin) / (lmax - lmin)
			return float64(top) + ph*(1-min(max(f, 0), 1))
		}
	} else {
		step := niceStep(hi / 5)
		ymax := math.Ceil(hi/step) * step
		for i := 0.0; i*step <= ymax+step/2; i++ {
			ticks = append(ticks, i*step)
		}
		yOf = func(v float64) float64 { return float64(top) + ph*(1-min(max(v/ymax, 0), 1)) }
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica,Arial,sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(c.Title))
	// Grid and y ticks.
	for _, t := range ticks {
		y := yOf(t)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, w-right, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", left-6, y+4, esc(format(t)))
	}
	fmt.Fprintf(&b, `<text transform="translate(16,%.0f) rotate(-90)" text-anchor="middle" fill="#444">%s</text>`+"\n",
		float64(top)+ph/2, esc(c.YLabel))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#888"/>`+"\n", left, w-right, float64(top)+ph, float64(top)+ph)

	// Bars.
	nc, ns := len(c.Categories), len(c.Series)
	if nc > 0 && ns > 0 {
		gw := pw / float64(nc)
		bw := gw * 0.8 / float64(ns)
		for ci, cat := range c.Categories {
			gx := float64(left) + gw*float64(ci)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx+gw/2, float64(top)+ph+18, esc(cat))
			for si, s := range c.Series {
				v := at(s.Values, ci)
				if math.IsNaN(v) {
					continue
				}
				x := gx + gw*0.1 + bw*float64(si)
				y := yOf(v)
				base := float64(top) + ph
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
					x, y, max(bw-1, 1), max(base-y, 0), s.Color, esc(cat), esc(s.Name), esc(format(v)))
				lo, hi := at(s.Lo, ci), at(s.Hi, ci)
				if !math.IsNaN(lo) && !math.IsNaN(hi) && hi > lo {
					cx := x + bw/2
					fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" fill="none"/>`+"\n",
						cx, yOf(lo), yOf(hi), cx-3, yOf(lo), cx+3, cx-3, yOf(hi), cx+3)
				}
				if bw >= 22 {
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#222">%s</text>`+"\n",
						x+bw/2, min(y, yOf(hi))-4, esc(format(v)))
				}
			}
		}
	}
	for _, r := range c.Refs {
		y := yOf(r.Value)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#D55E00" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", left, w-right, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11" fill="#D55E00">%s</text>`+"\n", w-right-4, y-5, esc(r.Label))
	}
	// Legend.
	lx := float64(left)
	ly := float64(h) - 34
	for _, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`, lx, ly-10, s.Color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+16, ly, esc(s.Name))
		lx += 28 + 7*float64(len(s.Name))
	}
	if c.Note != "" {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#666">%s</text>`+"\n", left, h-10, esc(c.Note))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func at(s []float64, i int) float64 {
	if i < len(s) {
		return s[i]
	}
	return math.NaN()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string { return html.EscapeString(s) }
