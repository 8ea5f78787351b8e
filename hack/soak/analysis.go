package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The phases of a soak, as each sample records them.
const (
	phaseConverge = "converge" // the first Foos created, until every one has converged
	phaseChurn    = "churn"    // the steady churn
	phaseSettle   = "settle"   // churn stopped: until every Foo has converged again
)

// Sample is one reading, taken every --interval from the controller being ready to its stop.
type Sample struct {
	Time             time.Time `json:"time"`
	Elapsed          float64   `json:"elapsedSeconds"` // since the controller was ready
	Phase            string    `json:"phase"`
	RSSMiB           float64   `json:"rssMiB"`       // /proc/PID/status VmRSS
	HeapInuseMiB     float64   `json:"heapInuseMiB"` // go_memstats_heap_inuse_bytes
	HeapLiveMiB      float64   `json:"heapLiveMiB"`  // go_gc_heap_live_bytes: marked live by the last GC
	Goroutines       float64   `json:"goroutines"`   // go_goroutines
	QueueDepth       float64   `json:"queueDepth"`   // workqueue_depth{name="foos"}
	Foos             int       `json:"foos"`
	NotConverged     int       `json:"notConverged"`
	StrayDeployments int       `json:"strayDeployments"`      // no live Foo controls them (yet or any more)
	Ops              int64     `json:"churnOps"`              // churn operations sent so far
	ScrapeError      string    `json:"scrapeError,omitempty"` // /metrics could not be read: heap, goroutines and depth are missing
	RSSError         string    `json:"rssError,omitempty"`    // /proc/PID/status could not be read: RSS is missing
}

// Bounds are what the soak fails on. Each slope is a least-squares line over the churn phase
// after its warm-up, in units per hour; see defaultBounds for the values and why.
//
// A series fails when its slope over the window exceeds its bound AND the slope over the
// window's second half still exceeds half the bound. A leak grows at the same rate all along;
// a cache filling up to its size (client-go's event caches: below) grows and then levels off,
// and a heap still settling has its growth at the start. Both can lift the window's slope over
// a bound for one run, and neither is a leak: their second half is flat.
type Bounds struct {
	RSSMiBPerHour       float64       `json:"rssMiBPerHour"`
	HeapMiBPerHour      float64       `json:"heapInuseMiBPerHour"`
	LiveHeapMiBPerHour  float64       `json:"heapLiveMiBPerHour"`
	GoroutinesPerHour   float64       `json:"goroutinesPerHour"`
	NotConvergedPerHour float64       `json:"notConvergedPerHour"`
	EndQueueDepth       float64       `json:"endQueueDepth"`
	SettleTimeout       time.Duration `json:"settleTimeout"`
	// MinWindow: a slope over a shorter window is reported but not checked. A line fitted to
	// noise of amplitude σ over a window T has a slope of the order of σ/T: over the 2 minutes
	// of a short development run, a heap that breathes by ±3 MiB between collections already
	// makes ±100 MiB/hour, which says nothing about leaks.
	MinWindow time.Duration `json:"minWindow"`
}

// defaultBounds are the bounds of `make soak`, chosen for what a leak looks like at the default
// churn (4 operations a second: 14,400 an hour) against what a healthy controller over 1,000
// Foos showed in development runs (docs/reliability.md, "Soak", has the full run):
//
//   - Go heap live after the last GC (go_gc_heap_live_bytes), 12 MiB/hour: about 870 bytes
//     kept per operation; one Deployment (~4 KiB) kept per operation is 56 MiB/hour. It is the
//     quiet series (±0.5 MiB between samples: noise alone fits slopes under 1 MiB/hour over 25
//     minutes), but not a flat one: client-go's event recording (tools/record: its aggregator,
//     spam-filter and logger caches, 4,096 entries each, keyed by the Foo's UID, the reason and
//     the message) fills as the churn makes new Foos and new messages. Heap-profile diffs over
//     the churn show it as the main grower (1.3 to 2.6 MiB over 3,800 operations on 500 Foos),
//     bounded by the caches' size; in the full run the live heap rose by 3.4 MiB over the 30
//     minutes, its slope +6.4 MiB/hour over the window and +3.9 over the second half. The
//     bound sits above that rate, and the second-half rule above its tail. A slower leak (one
//     Foo object, ~2 KiB, kept per Foo deleted is 4 MiB/hour) needs a longer run, once the
//     caches are full: SOAK_DURATION=3h SOAK_FLAGS=--max-live-heap-slope=3.
//   - Go heap in use (go_memstats_heap_inuse_bytes), 24 MiB/hour: the same leaks through the
//     garbage collector's sawtooth. With GOGC=100 the heap in use swings between the live heap
//     and up to twice it (22 to 34 MiB at 1,000 Foos: noise alone fits slopes of ±2-3 MiB/hour
//     over 25 minutes, ±7 over a half), and the headroom grows with the live heap: twice the
//     live heap's bound. The full run: +12.2 MiB/hour, +6.5 over the second half.
//   - RSS (VmRSS), 32 MiB/hour. RSS follows the heap's peaks and returns memory to the OS only
//     lazily, so it climbs by steps whenever the heap sets a new peak and settles later. The
//     full run: +19.8 MiB/hour, +11.7 over the second half.
//   - goroutines, 60/hour. A healthy count moves only with in-flight requests (44-54 at 4
//     operations a second, no trend); a goroutine leaked by one operation in 240 (a watch, a
//     timer or a request per Deployment deleted) exceeds it.
//   - Foos not converged, 120/hour. During the churn 0-70 Foos are being worked on at any
//     moment (rollouts of the fake pods included); a Foo given up on (dropped after 15 retries
//     and left for the next resync, or waiting on an expectation that never ends) stays: 120/hour
//     is two such Foos a minute.
//   - after the churn, every Foo converged (status current and Ready, its Deployment controlled
//     by it and as it asks: replicas, image, labels) and no stray Deployment within 5 minutes
//     (a resync period, so a Foo dropped from the queue comes back once), and the workqueue back
//     at 5 keys or fewer within a minute after that (a resync fills it for a moment).
//   - the controller never exits on its own, and exits 0 on SIGTERM at the end.
func defaultBounds() Bounds {
	return Bounds{
		RSSMiBPerHour:       32,
		HeapMiBPerHour:      24,
		LiveHeapMiBPerHour:  12,
		GoroutinesPerHour:   60,
		NotConvergedPerHour: 120,
		EndQueueDepth:       5,
		SettleTimeout:       5 * time.Minute,
		MinWindow:           10 * time.Minute,
	}
}

// seriesDef is one series of the summary: how to read it from a sample, and its slope's bound
// (0: reported only).
type seriesDef struct {
	name, unit string
	value      func(Sample) float64
	missing    func(Sample) bool
	bound      float64
}

func seriesDefs(b Bounds) []seriesDef {
	return []seriesDef{
		{"RSS", "MiB", func(s Sample) float64 { return s.RSSMiB }, noRSS, b.RSSMiBPerHour},
		{"Go heap in use", "MiB", func(s Sample) float64 { return s.HeapInuseMiB }, noScrape, b.HeapMiBPerHour},
		{"Go heap live after GC", "MiB", func(s Sample) float64 { return s.HeapLiveMiB }, noLiveHeap, b.LiveHeapMiBPerHour},
		{"goroutines", "", func(s Sample) float64 { return s.Goroutines }, noScrape, b.GoroutinesPerHour},
		{"workqueue depth", "keys", func(s Sample) float64 { return s.QueueDepth }, noScrape, 0},
		{"Foos not converged", "", func(s Sample) float64 { return float64(s.NotConverged) }, never, b.NotConvergedPerHour},
	}
}

func noRSS(s Sample) bool    { return s.RSSError != "" }
func noScrape(s Sample) bool { return s.ScrapeError != "" }

// noLiveHeap: go_gc_heap_live_bytes comes from runtime/metrics (Go 1.21 and later, which
// component-base's registry exports); a scrape without it leaves the series out, not the sample.
func noLiveHeap(s Sample) bool { return s.ScrapeError != "" || s.HeapLiveMiB == 0 }
func never(Sample) bool        { return false }

// SeriesSummary is one series over the whole run, and its slope over the churn window.
type SeriesSummary struct {
	Name          string  `json:"name"`
	Unit          string  `json:"unit"`
	First         float64 `json:"first"`
	Last          float64 `json:"last"`
	Min           float64 `json:"min"`
	Max           float64 `json:"max"`
	SlopePerHour  float64 `json:"slopePerHour"`
	LatePerHour   float64 `json:"secondHalfSlopePerHour"` // over the window's second half
	WindowSamples int     `json:"windowSamples"`
	Bound         float64 `json:"boundPerHour,omitempty"` // 0: none
	Checked       bool    `json:"checked"`                // has a bound, and the window is long enough
	OK            bool    `json:"ok"`
}

// Check is one pass/fail verdict.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Ending is how the run ended, as the program saw it.
type Ending struct {
	ControllerExited string  // non-empty when the controller exited by itself: how and when
	ConvergedAfter   float64 // seconds from the churn's end until every Foo converged; < 0 if never
	NotConverged     int     // Foos not converged when the settle phase ended
	Stray            int     // stray Deployments then
	EndQueueDepth    float64 // the workqueue's depth after convergence; < 0 if unknown
	StopError        string  // how the controller's stop went (SIGTERM, exit 0 expected)
	Aborted          string  // a phase that could not be run at all, and why
}

// Report is the verdict of a soak.
type Report struct {
	WindowStart   float64         `json:"windowStartSeconds"` // the churn's start plus the warm-up, since the controller was ready
	WindowEnd     float64         `json:"windowEndSeconds"`
	WarmupSeconds float64         `json:"warmupSeconds"`
	Series        []SeriesSummary `json:"series"`
	Checks        []Check         `json:"checks"`
	OK            bool            `json:"ok"`
}

// slope is the slope of the least-squares line through (x, y), and false when there are fewer
// than 3 points or all x are equal.
func slope(x, y []float64) (float64, bool) {
	n := len(x)
	if n < 3 || n != len(y) {
		return 0, false
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// secondHalfSlope is the slope over the points whose x is in the second half of x's range.
func secondHalfSlope(x, y []float64) (float64, bool) {
	if len(x) == 0 {
		return 0, false
	}
	mid := (x[0] + x[len(x)-1]) / 2
	i := sort.SearchFloat64s(x, mid)
	return slope(x[i:], y[i:])
}

// effectiveWarmup is the warm-up skipped at the churn's start: warmup, but at most a third of
// the churn, so that a short run still has a window.
func effectiveWarmup(warmup time.Duration, churnSeconds float64) float64 {
	return math.Min(warmup.Seconds(), churnSeconds/3)
}

// analyze summarizes the samples and checks them and the ending against the bounds. The
// churn ran from churnStart to churnEnd (seconds since the controller was ready); the slopes are
// fitted to the churn's samples after the warm-up.
func analyze(samples []Sample, churnStart, churnEnd float64, warmup time.Duration, b Bounds, end Ending) Report {
	w := effectiveWarmup(warmup, churnEnd-churnStart)
	r := Report{WindowStart: churnStart + w, WindowEnd: churnEnd, WarmupSeconds: w, OK: true}
	window := time.Duration((r.WindowEnd - r.WindowStart) * float64(time.Second))
	for _, def := range seriesDefs(b) {
		s := SeriesSummary{Name: def.name, Unit: def.unit, Bound: def.bound, OK: true}
		var xs, ys []float64
		seen := false
		for _, smp := range samples {
			if def.missing(smp) {
				continue
			}
			v := def.value(smp)
			if !seen {
				s.First, s.Min, s.Max, seen = v, v, v, true
			}
			s.Last, s.Min, s.Max = v, math.Min(s.Min, v), math.Max(s.Max, v)
			if smp.Phase == phaseChurn && smp.Elapsed >= r.WindowStart && smp.Elapsed <= r.WindowEnd {
				xs = append(xs, smp.Elapsed/3600)
				ys = append(ys, v)
			}
		}
		s.WindowSamples = len(xs)
		perHour, ok := slope(xs, ys)
		late, lateOK := secondHalfSlope(xs, ys)
		s.SlopePerHour, s.LatePerHour = perHour, late
		if def.bound > 0 && window >= b.MinWindow {
			s.Checked, s.OK = true, false
			var detail string
			switch {
			case !ok || !lateOK:
				detail = fmt.Sprintf("too few samples in the window (%d) to fit a slope", len(xs))
			case perHour <= def.bound:
				s.OK = true
				detail = fmt.Sprintf("slope %+.1f%s/hour over %d samples (%s), bound %s", perHour, unitSuffix(def.unit), len(xs), window.Round(time.Second), num(def.bound))
			case late <= def.bound/2:
				s.OK = true
				detail = fmt.Sprintf("slope %+.1f%s/hour over %d samples (%s) is above the bound %s, but the second half's is %+.1f (at most half the bound): growth that levels off, not a leak",
					perHour, unitSuffix(def.unit), len(xs), window.Round(time.Second), num(def.bound), late)
			default:
				detail = fmt.Sprintf("slope %+.1f%s/hour over %d samples (%s), bound %s, and still %+.1f/hour over the second half",
					perHour, unitSuffix(def.unit), len(xs), window.Round(time.Second), num(def.bound), late)
			}
			r.Checks = append(r.Checks, Check{Name: def.name + " does not grow", OK: s.OK, Detail: detail})
		}
		r.Series = append(r.Series, s)
	}
	if window < b.MinWindow {
		r.Checks = append(r.Checks, Check{Name: "slopes", OK: true,
			Detail: fmt.Sprintf("not checked: the window after the warm-up is %s, shorter than %s", window.Round(time.Second), b.MinWindow)})
	}
	if end.Aborted != "" {
		r.Checks = append(r.Checks, Check{Name: "the soak ran to its end", OK: false, Detail: end.Aborted})
	}
	if end.ControllerExited != "" {
		r.Checks = append(r.Checks, Check{Name: "the controller never exited", OK: false, Detail: end.ControllerExited})
	} else {
		r.Checks = append(r.Checks, Check{Name: "the controller never exited", OK: true, Detail: "it ran until stopped"})
	}
	cutShort := end.ControllerExited != "" || end.Aborted != ""
	switch {
	case end.ConvergedAfter < 0 && cutShort:
		r.Checks = append(r.Checks, Check{Name: "every Foo converged after the churn", OK: false, Detail: "not reached: the run was cut short"})
	case end.ConvergedAfter >= 0:
		r.Checks = append(r.Checks, Check{Name: "every Foo converged after the churn", OK: true,
			Detail: fmt.Sprintf("after %.0fs (deadline %s)", end.ConvergedAfter, b.SettleTimeout)})
	default:
		r.Checks = append(r.Checks, Check{Name: "every Foo converged after the churn", OK: false,
			Detail: fmt.Sprintf("%d Foos not converged and %d stray Deployments %s after the churn", end.NotConverged, end.Stray, b.SettleTimeout)})
	}
	switch {
	case end.EndQueueDepth < 0:
		detail := "not measured: the Foos never all converged"
		if cutShort {
			detail = "not reached: the run was cut short"
		}
		r.Checks = append(r.Checks, Check{Name: "workqueue back near 0", OK: false, Detail: detail})
	default:
		r.Checks = append(r.Checks, Check{Name: "workqueue back near 0", OK: end.EndQueueDepth <= b.EndQueueDepth,
			Detail: fmt.Sprintf("depth %.0f at the end, bound %.0f", end.EndQueueDepth, b.EndQueueDepth)})
	}
	if end.StopError != "" {
		r.Checks = append(r.Checks, Check{Name: "the controller stopped cleanly on SIGTERM", OK: false, Detail: end.StopError})
	}
	for _, c := range r.Checks {
		r.OK = r.OK && c.OK
	}
	return r
}

func unitSuffix(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}

// printSummary writes the summary table and the checks.
func printSummary(w io.Writer, r Report) {
	fmt.Fprintf(w, "Series over the whole run; slope: least-squares line over the churn from %.0fs to %.0fs after the controller was ready (%.0fs of warm-up skipped)\n",
		r.WindowStart, r.WindowEnd, r.WarmupSeconds)
	names := []string{"series"}
	for _, s := range r.Series {
		name := s.Name
		if s.Unit != "" {
			name += " (" + s.Unit + ")"
		}
		names = append(names, name)
	}
	names = padRight(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tfirst\tlast\tmin\tmax\tslope/hour\t2nd half/hour\tbound/hour\tresult\t\n", names[0])
	for i, s := range r.Series {
		name := names[i+1]
		bound, result := "-", "reported"
		if s.Bound > 0 {
			bound = fmt.Sprintf("%.0f", s.Bound)
			result = "not checked"
			if s.Checked {
				result = map[bool]string{true: "ok", false: "FAIL"}[s.OK]
			}
		}
		slope, late := "-", "-" // too few samples to fit a line
		if s.WindowSamples >= 3 {
			slope = fmt.Sprintf("%+.1f", s.SlopePerHour)
		}
		if s.WindowSamples >= 6 {
			late = fmt.Sprintf("%+.1f", s.LatePerHour)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, num(s.First), num(s.Last), num(s.Min), num(s.Max), slope, late, bound, result)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Detail)
	}
	if r.OK {
		fmt.Fprintln(w, "soak: PASS")
	} else {
		fmt.Fprintln(w, "soak: FAIL")
	}
}

// num prints a value with one decimal, or none when it is a whole number (counts).
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e12 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
}

// padRight pads strings with spaces to the same length, so that a right-aligned column of them
// reads left-aligned.
func padRight(ss []string) []string {
	width := 0
	for _, s := range ss {
		width = max(width, len(s))
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s + strings.Repeat(" ", width-len(s))
	}
	return out
}
