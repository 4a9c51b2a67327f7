package loadtest

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// Chart geometry: two panels side by side.
const (
	chartW, chartH = 960, 450
	panelW, panelH = 380, 290
	panelTop       = 60
)

var panelLeft = [2]float64{70, 560}

// series is one line of a panel.
type series struct {
	label string
	color string
	dash  string
	y     map[int]float64 // by fleet size
	// col and row place the legend entry: a column per backend.
	col, row int
}

// chart draws the latency percentiles (left, log scale) and the report
// rates (right) against the fleet size, with the goals.
func chart(res *Results) []byte {
	var sizes []int
	for _, r := range res.Scheduled {
		if !slices.Contains(sizes, r.Nodes) {
			sizes = append(sizes, r.Nodes)
		}
	}
	slices.Sort(sizes)
	dash := map[string]string{}
	var lat, rate []series
	for _, r := range res.Scheduled {
		if _, ok := dash[r.Backend]; !ok {
			dash[r.Backend] = []string{"", "7 4", "2 3"}[len(dash)%3]
		}
	}
	for col, b := range backendsOf(res) {
		for _, p := range []struct {
			name, color string
			get         func(scheduledResult) float64
		}{
			{"p50", "#2a9d8f", func(r scheduledResult) float64 { return r.P50 }},
			{"p90", "#e9a03b", func(r scheduledResult) float64 { return r.P90 }},
			{"p99", "#d1495b", func(r scheduledResult) float64 { return r.P99 }},
		} {
			s := series{label: b + " " + p.name, color: p.color, dash: dash[b], y: map[int]float64{}, col: col, row: len(lat) % 3}
			for _, r := range res.Scheduled {
				if r.Backend == b {
					s.y[r.Nodes] = p.get(r)
				}
			}
			lat = append(lat, s)
		}
		achieved := series{label: b + " at the manager's rate", color: "#3d5a80", dash: dash[b], y: map[int]float64{}, col: col}
		for _, r := range res.Scheduled {
			if r.Backend == b {
				achieved.y[r.Nodes] = r.Achieved
			}
		}
		best := series{label: b + " highest sustained", color: "#7b2cbf", dash: dash[b], y: map[int]float64{}, col: col, row: 1}
		for _, m := range res.Max {
			if m.Backend == b {
				best.y[m.Nodes] = m.Throughput
			}
		}
		projected := series{label: b + " 2-core projection", color: "#9d4edd", dash: "1 3", y: map[int]float64{}, col: col, row: 2}
		for _, m := range res.Max {
			if m.Backend == b && m.Projected > 0 {
				projected.y[m.Nodes] = m.Projected
			}
		}
		rate = append(rate, achieved, best, projected)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" text-anchor="middle">tc-loadtest: verifier report path against fleet size (interval %s)</text>`+"\n", chartW/2, html.EscapeString(res.Interval))
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="#555" text-anchor="middle">%s</text>`+"\n", chartW/2, html.EscapeString(res.Machine))
	panel(&b, 0, "report latency, ms (log scale)", sizes, lat, true, 250, "goal p99 < 250 ms")
	panel(&b, 1, "reports per second", sizes, rate, false, 1000, "goal ≥ 1,000/s")
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func backendsOf(res *Results) []string {
	var out []string
	for _, r := range res.Scheduled {
		if !slices.Contains(out, r.Backend) {
			out = append(out, r.Backend)
		}
	}
	return out
}

// panel draws one panel with categorical fleet sizes on x.
func panel(b *bytes.Buffer, i int, title string, sizes []int, ss []series, logY bool, goal float64, goalLabel string) {
	left, top := panelLeft[i], float64(panelTop)
	lo, hi := math.Inf(1), goal
	for _, s := range ss {
		for _, v := range s.y {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo = 1
	}
	if logY {
		lo = math.Pow(10, math.Floor(math.Log10(math.Min(lo, goal))))
		hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	} else {
		lo, hi = 0, niceCeil(hi*1.1)
	}
	y := func(v float64) float64 {
		if logY {
			v = math.Max(v, lo)
			return top + panelH - (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*panelH
		}
		return top + panelH - (v-lo)/(hi-lo)*panelH
	}
	x := func(k int) float64 {
		if len(sizes) == 1 {
			return left + panelW/2
		}
		return left + 20 + float64(k)*(panelW-40)/float64(len(sizes)-1)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", left+panelW/2, top-6, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, top, panelW, panelH)
	for _, t := range ticks(lo, hi, logY) {
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
			left, left+panelW, y(t), y(t), left-4, y(t)+4, num(t))
	}
	for k, n := range sizes {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", x(k), top+panelH+16, num(float64(n)))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">nodes</text>`+"\n", left+panelW/2, top+panelH+32)
	fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="1 3"/><text x="%.0f" y="%.1f" fill="#777" text-anchor="end">%s</text>`+"\n",
		left, left+panelW, y(goal), y(goal), left+panelW-4, y(goal)-4, html.EscapeString(goalLabel))
	for _, s := range ss {
		var pts []string
		for k, n := range sizes {
			if v, ok := s.y[n]; ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(k), y(v)))
				fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(k), y(v), s.color)
			}
		}
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", s.color, s.dash, joinPts(pts))
		}
		ly := top + panelH + 50 + float64(s.row)*16
		lx := left + float64(s.col)*panelW/2
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%.0f" y="%.0f" font-size="11">%s</text>`+"\n",
			lx, lx+24, ly-4, ly-4, s.color, s.dash, lx+28, ly, html.EscapeString(s.label))
	}
}

func joinPts(pts []string) string {
	var b bytes.Buffer
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

// ticks are the y axis marks: the decades on a log scale, five steps else.
func ticks(lo, hi float64, logY bool) []float64 {
	var out []float64
	if logY {
		for v := lo; v <= hi*1.0001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	for k := range 6 {
		out = append(out, lo+(hi-lo)*float64(k)/5)
	}
	return out
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
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

// num formats an axis value: 1,000 and 0.5.
func num(v float64) string {
	if v < 10 && v != math.Trunc(v) {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
