package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		name   string
		x, y   []float64
		want   float64
		wantOK bool
	}{
		{"a line", []float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2, true},
		{"flat", []float64{0, 1, 2}, []float64{4, 4, 4}, 0, true},
		{"falling", []float64{10, 20, 30}, []float64{3, 2, 1}, -0.1, true},
		// Noise around a flat line fits a nearly flat line: Σ(x-x̄)y / Σ(x-x̄)² = -3 / 17.5.
		{"zigzag", []float64{0, 1, 2, 3, 4, 5}, []float64{1, -1, 1, -1, 1, -1}, -3 / 17.5, true},
		{"two points", []float64{0, 1}, []float64{0, 1}, 0, false},
		{"one x", []float64{2, 2, 2}, []float64{0, 1, 2}, 0, false},
		{"mismatched", []float64{0, 1, 2}, []float64{0, 1}, 0, false},
	} {
		got, ok := slope(tc.x, tc.y)
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: slope = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

// fakeRun is a fake soak: samples every 10 s for 40 minutes, the churn from minute 5 to 35, with
// each series given as a function of the elapsed seconds.
type fakeRun struct {
	rss, heap, live, goroutines, depth func(t float64) float64
	notConverged                       func(t float64) int
}

const (
	churnStart = 300.0
	churnEnd   = 2100.0
)

func (r fakeRun) samples() []Sample {
	var out []Sample
	for t := 0.0; t <= 2400; t += 10 {
		phase := phaseConverge
		switch {
		case t >= churnEnd:
			phase = phaseSettle
		case t >= churnStart:
			phase = phaseChurn
		}
		out = append(out, Sample{Elapsed: t, Phase: phase, RSSMiB: r.rss(t), HeapInuseMiB: r.heap(t), HeapLiveMiB: r.live(t),
			Goroutines: r.goroutines(t), QueueDepth: r.depth(t), NotConverged: r.notConverged(t)})
	}
	return out
}

// eventCaches is the growth of client-go's event caches in a healthy controller: +3 MiB
// approached with a time constant of 15 minutes from the churn's start.
func eventCaches(t float64) float64 { return 3 * (1 - math.Exp(-math.Max(0, t-churnStart)/900)) }

// healthy is a controller that does not leak, with the noise a real one shows: the heap's
// garbage-collection sawtooth (±4 MiB), RSS jitter, a few goroutines coming and going with
// requests, the queue and the Foos being worked on during the churn, a warm-up in which RSS
// still climbs to its plateau, and the event caches filling.
func healthy(seed uint64) fakeRun {
	rng := rand.New(rand.NewPCG(seed, 1))
	noise := func(a float64) float64 { return (rng.Float64()*2 - 1) * a }
	return fakeRun{
		rss: func(t float64) float64 {
			return 80 + 20*math.Min(1, t/(churnStart+120)) + noise(6) // warm-up: +20 MiB until minute 7
		},
		heap:       func(t float64) float64 { return 25 + 2*eventCaches(t) + 4*math.Sin(t/37) + noise(3) },
		live:       func(t float64) float64 { return 14 + eventCaches(t) + noise(0.5) },
		goroutines: func(t float64) float64 { return 120 + math.Round(noise(8)) },
		depth: func(t float64) float64 {
			if t >= churnStart && t < churnEnd {
				return math.Round(rng.Float64() * 6)
			}
			return 0
		},
		notConverged: func(t float64) int {
			if t >= churnStart && t < churnEnd {
				return rng.IntN(30)
			}
			return 0
		},
	}
}

var settled = Ending{ConvergedAfter: 12, EndQueueDepth: 0}

func TestHealthyRunPasses(t *testing.T) {
	b := defaultBounds()
	for seed := range uint64(20) {
		r := analyze(healthy(seed).samples(), churnStart, churnEnd, 5*time.Minute, b, settled)
		if !r.OK {
			var buf bytes.Buffer
			printSummary(&buf, r)
			t.Fatalf("seed %d: a healthy run failed:\n%s", seed, buf.String())
		}
		if r.WarmupSeconds != 300 || r.WindowStart != 600 || r.WindowEnd != 2100 {
			t.Errorf("window = %v..%v, warm-up %v; want 600..2100, 300", r.WindowStart, r.WindowEnd, r.WarmupSeconds)
		}
		for _, s := range r.Series {
			if s.Bound > 0 && !s.Checked {
				t.Errorf("%s has a bound but was not checked", s.Name)
			}
			if s.WindowSamples != 150 { // 600 s to 2090 s: the sample at 2100 s is the settle phase's
				t.Errorf("%s: %d samples in the window, want 150", s.Name, s.WindowSamples)
			}
		}
	}
}

// Each kind of leak, added to a healthy run at twice its bound, fails the check of its series
// and only that one (a leak in the heap shows in the heap in use and in the live heap).
func TestLeaksFail(t *testing.T) {
	b := defaultBounds()
	// growth during the churn only, so much per hour
	during := func(perHour float64) func(float64) float64 {
		return func(t float64) float64 {
			return perHour * (math.Min(math.Max(t, churnStart), churnEnd) - churnStart) / 3600
		}
	}
	for _, tc := range []struct {
		name   string
		series []string
		leak   func(r *fakeRun)
	}{
		{"heap", []string{"Go heap in use does not grow", "Go heap live after GC does not grow"}, func(r *fakeRun) {
			h, l := r.heap, r.live
			r.heap = func(t float64) float64 { return h(t) + during(2*b.HeapMiBPerHour)(t) }
			r.live = func(t float64) float64 { return l(t) + during(2*b.HeapMiBPerHour)(t) }
		}},
		{"live heap only", []string{"Go heap live after GC does not grow"}, func(r *fakeRun) {
			l := r.live
			r.live = func(t float64) float64 { return l(t) + during(2*b.LiveHeapMiBPerHour)(t) }
		}},
		{"RSS", []string{"RSS does not grow"}, func(r *fakeRun) {
			m := r.rss
			r.rss = func(t float64) float64 { return m(t) + during(2*b.RSSMiBPerHour)(t) }
		}},
		{"goroutines", []string{"goroutines does not grow"}, func(r *fakeRun) {
			g := r.goroutines
			r.goroutines = func(t float64) float64 { return g(t) + math.Floor(during(2*b.GoroutinesPerHour)(t)) }
		}},
		{"Foos stuck", []string{"Foos not converged does not grow"}, func(r *fakeRun) {
			n := r.notConverged
			r.notConverged = func(t float64) int { return n(t) + int(during(2*b.NotConvergedPerHour)(t)) }
		}},
	} {
		for seed := range uint64(20) {
			r := healthy(seed)
			tc.leak(&r)
			rep := analyze(r.samples(), churnStart, churnEnd, 5*time.Minute, b, settled)
			if rep.OK {
				t.Errorf("%s, seed %d: passed", tc.name, seed)
			}
			for _, c := range rep.Checks {
				if c.OK == slices.Contains(tc.series, c.Name) {
					t.Errorf("%s, seed %d: check %q ok=%v (%s)", tc.name, seed, c.Name, c.OK, c.Detail)
				}
			}
		}
	}
}

// Growth that levels off (a cache filling up to its size, like client-go's event caches of
// 4,096 entries) passes even when the window's slope is above the bound; a leak does not, even
// one that starts halfway through the window.
func TestGrowthThatLevelsOffIsNoLeak(t *testing.T) {
	b := defaultBounds()
	for seed := range uint64(20) {
		// +40 MiB approached with a time constant of 4 minutes from the churn's start: the
		// window's slope is about 18 MiB/hour, over the bound; its second half's about 2.
		r := healthy(seed)
		l, h := r.live, r.heap
		fill := func(t float64) float64 { return 40 * (1 - math.Exp(-math.Max(0, t-churnStart)/240)) }
		r.live = func(t float64) float64 { return l(t) + fill(t) }
		r.heap = func(t float64) float64 { return h(t) + 2*fill(t) }
		rep := analyze(r.samples(), churnStart, churnEnd, 5*time.Minute, b, settled)
		if !rep.OK {
			var buf bytes.Buffer
			printSummary(&buf, rep)
			t.Fatalf("seed %d: growth that levels off failed:\n%s", seed, buf.String())
		}
		for _, s := range rep.Series {
			if s.Name == "Go heap live after GC" && s.SlopePerHour <= b.LiveHeapMiBPerHour {
				t.Fatalf("seed %d: the live heap's slope %.1f is within the bound: the case tests nothing", seed, s.SlopePerHour)
			}
		}

		// A leak of three times the bound from the window's middle on: the window's slope is
		// half the leak's rate (a hinge at the middle), its second half's the whole rate.
		r = healthy(seed)
		l = r.live
		mid := (churnStart + 300 + churnEnd) / 2
		r.live = func(t float64) float64 {
			return l(t) + 3*b.LiveHeapMiBPerHour*math.Max(0, math.Min(t, churnEnd)-mid)/3600
		}
		if rep := analyze(r.samples(), churnStart, churnEnd, 5*time.Minute, b, settled); rep.OK {
			t.Errorf("seed %d: a leak from the window's middle on passed", seed)
		}
	}
}

func TestEndingChecks(t *testing.T) {
	b := defaultBounds()
	samples := healthy(1).samples()
	for _, tc := range []struct {
		name   string
		end    Ending
		failed string
	}{
		{"controller exited", Ending{ControllerExited: "exited (exit status 2) at 12:00:00", ConvergedAfter: -1, EndQueueDepth: -1}, "the controller never exited"},
		{"not converged", Ending{ConvergedAfter: -1, NotConverged: 3, EndQueueDepth: 0}, "every Foo converged after the churn"},
		{"queue not drained", Ending{ConvergedAfter: 5, EndQueueDepth: 40}, "workqueue back near 0"},
		{"unclean stop", Ending{ConvergedAfter: 5, EndQueueDepth: 0, StopError: "did not exit within 30s of SIGTERM"}, "the controller stopped cleanly on SIGTERM"},
		{"aborted", Ending{ConvergedAfter: -1, EndQueueDepth: -1, Aborted: "the first Foos: after 15m0s: 1000 Foos, 3 not converged"}, "the soak ran to its end"},
	} {
		r := analyze(samples, churnStart, churnEnd, 5*time.Minute, b, tc.end)
		if r.OK {
			t.Errorf("%s: passed", tc.name)
		}
		found := false
		for _, c := range r.Checks {
			if c.Name == tc.failed {
				found = true
				if c.OK {
					t.Errorf("%s: check %q passed", tc.name, c.Name)
				}
			}
		}
		if !found {
			t.Errorf("%s: no check %q in %+v", tc.name, tc.failed, r.Checks)
		}
	}
	// A run cut short says that it did not get to the end checks, rather than that they failed.
	r := analyze(samples, churnStart, churnEnd, 5*time.Minute, b, Ending{ControllerExited: "exited", ConvergedAfter: -1, EndQueueDepth: -1})
	for _, c := range r.Checks {
		if (c.Name == "every Foo converged after the churn" || c.Name == "workqueue back near 0") && c.Detail != "not reached: the run was cut short" {
			t.Errorf("controller exited: %s: %q", c.Name, c.Detail)
		}
	}
}

// A short run's slopes are reported, not checked: over a 2-minute window, noise alone makes
// slopes far beyond any bound.
func TestShortRunSlopesNotChecked(t *testing.T) {
	b := defaultBounds()
	r := healthy(3)
	h := r.heap
	r.heap = func(t float64) float64 { return h(t) + t/10 } // 360 MiB/hour
	var samples []Sample
	for _, s := range r.samples() {
		if s.Elapsed <= 480 {
			if s.Elapsed > 480-10 {
				s.Phase = phaseSettle
			}
			samples = append(samples, s)
		}
	}
	rep := analyze(samples, churnStart, 480, 5*time.Minute, b, settled)
	if !rep.OK {
		t.Errorf("a 3-minute churn failed on its slopes: %+v", rep.Checks)
	}
	if rep.WarmupSeconds != 60 {
		t.Errorf("warm-up = %vs, want a third of the 180 s churn", rep.WarmupSeconds)
	}
	for _, s := range rep.Series {
		if s.Checked {
			t.Errorf("%s was checked", s.Name)
		}
	}
	var out bytes.Buffer
	printSummary(&out, rep)
	if !strings.Contains(out.String(), "not checked: the window after the warm-up is 2m0s, shorter than 10m0s") {
		t.Errorf("the summary does not say the slopes were not checked:\n%s", out.String())
	}
}

// Samples whose scrape failed count for RSS, not for the series read from /metrics.
func TestScrapeErrorsLeftOut(t *testing.T) {
	samples := healthy(4).samples()
	for i := range samples {
		if i%5 == 0 && samples[i].Phase == phaseChurn {
			samples[i].HeapInuseMiB, samples[i].Goroutines, samples[i].QueueDepth = 0, 0, 0
			samples[i].ScrapeError = "connection refused"
		}
	}
	r := analyze(samples, churnStart, churnEnd, 5*time.Minute, defaultBounds(), settled)
	if !r.OK {
		t.Fatalf("failed: %+v", r.Checks)
	}
	for _, s := range r.Series {
		if s.Name == "Go heap in use" && (s.Min < 15 || s.WindowSamples != 120) {
			t.Errorf("heap: min %v over %d samples in the window: the failed scrapes were counted", s.Min, s.WindowSamples)
		}
		if s.Name == "RSS" && s.WindowSamples != 150 {
			t.Errorf("RSS: %d samples in the window, want all 150", s.WindowSamples)
		}
	}
}

func TestPrintSummary(t *testing.T) {
	r := healthy(5)
	g := r.goroutines
	r.goroutines = func(t float64) float64 { return g(t) + math.Max(0, t-churnStart)/10 } // 360/hour
	rep := analyze(r.samples(), churnStart, churnEnd, 5*time.Minute, defaultBounds(), settled)
	var buf bytes.Buffer
	printSummary(&buf, rep)
	out := buf.String()
	for _, want := range []string{
		"slope: least-squares line over the churn from 600s to 2100s after the controller was ready (300s of warm-up skipped)",
		"series", "first", "last", "min", "max", "slope/hour", "2nd half/hour", "bound/hour", "result",
		"RSS (MiB)", "Go heap in use (MiB)", "goroutines", "workqueue depth (keys)", "Foos not converged",
		"FAIL goroutines does not grow: slope +", "ok   every Foo converged after the churn: after 12s (deadline 5m0s)",
		"ok   workqueue back near 0: depth 0 at the end, bound 5",
		"soak: FAIL",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
	// The goroutines row: first, last, the slope near 360/hour, its bound, and FAIL.
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "goroutines" {
			if len(f) != 9 || f[7] != "60" || f[8] != "FAIL" {
				t.Errorf("goroutines row = %q", line)
			}
			if s := f[5]; !strings.HasPrefix(s, "+3") {
				t.Errorf("goroutines slope = %s, want about +360", s)
			}
		}
		if strings.HasPrefix(strings.TrimSpace(line), "workqueue depth") && !strings.Contains(line, "reported") {
			t.Errorf("workqueue depth row has no bound, want 'reported': %q", line)
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{3: "3", 12.34: "12.3", 0.04: "0", -2.5: "-2.5", 99.96: "100"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
