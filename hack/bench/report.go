package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Results is what the JSON file holds.
type Results struct {
	Machine     string             `json:"machine"`
	Date        string             `json:"date"`
	Controller  map[string]any     `json:"controllerFlags"`
	Convergence []Convergence      `json:"convergence"`
	Floor       []Floor            `json:"floor"`
	Steady      *Steady            `json:"steadyState,omitempty"`
	Memory      []Memory           `json:"memory"`
	Latency     *Latency           `json:"latency,omitempty"`
	Growth      []GrowthPoint      `json:"growth"`
	CallsPerFoo map[string]float64 `json:"apiCallsPerFoo,omitempty"`
}

// GrowthPoint is the convergence time per Foo at one N.
type GrowthPoint struct {
	N             int     `json:"n"`
	Seconds       float64 `json:"seconds"`
	MillisPerFoo  float64 `json:"msPerFoo"`
	RelativeToMin float64 `json:"perFooRelativeToSmallestN"`
}

// growth is the time per Foo of the convergence runs with replicas 0, across N.
func growth(runs []Convergence) []GrowthPoint {
	var pts []GrowthPoint
	for _, c := range runs {
		if c.Replicas == 0 {
			pts = append(pts, GrowthPoint{N: c.N, Seconds: c.StatusSecs, MillisPerFoo: c.StatusSecs * 1000 / float64(c.N)})
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].N < pts[j].N })
	for i := range pts {
		pts[i].RelativeToMin = pts[i].MillisPerFoo / pts[0].MillisPerFoo
	}
	return pts
}

func writeJSON(r *Results, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	return os.WriteFile(path, b, 0o644)
}

func printTable(r *Results) {
	w := os.Stdout
	fmt.Fprintf(w, "\nsample-controller benchmark, %s, %s\ncontroller: %v\n\n", r.Date, r.Machine, r.Controller)
	fmt.Fprintln(w, "Convergence (N Foos created at once)")
	fmt.Fprintf(w, "  %6s %8s %10s %14s %14s %12s  %s\n", "N", "replicas", "create s", "deployments s", "all status s", "all Ready s", "controller requests by method, to rest")
	for _, c := range r.Convergence {
		ready := "-"
		if c.ReadySecs > 0 {
			ready = fmt.Sprintf("%.1f", c.ReadySecs)
		}
		fmt.Fprintf(w, "  %6d %8d %10.1f %14.1f %14.1f %12s  %v\n", c.N, c.Replicas, c.CreateSeconds, c.DeploymentsSecs, c.StatusSecs, ready, c.RequestsByMethod)
	}
	fmt.Fprintln(w, "\nFloor (a bare client doing N Deployment creates + N status writes with the controller's QPS and parallelism)")
	for _, f := range r.Floor {
		fmt.Fprintf(w, "  N=%-6d controller / floor %.2f, controller / writes alone %.2f (medians of %d rounds)\n", f.N, f.Ratio, f.PrecreatedRatio, len(f.Rounds))
		for i, rd := range f.Rounds {
			fmt.Fprintf(w, "    round %d: controller %6.1fs   floor, timed like the controller %6.1fs   writes alone, Foos created beforehand %6.1fs\n",
				i+1, rd.ControllerSeconds, rd.Seconds, rd.PrecreatedSeconds)
		}
	}
	if s := r.Steady; s != nil {
		fmt.Fprintf(w, "\nSteady state (N=%d converged, %.0fs = two resync periods): %.0f writes, requests %v, %.0f reconciles\n",
			s.N, s.WindowSeconds, s.Writes, s.Requests, s.Reconciles)
	}
	if len(r.CallsPerFoo) > 0 {
		fmt.Fprintln(w, "\nAPI calls per Foo, creation to rest (API server audit log, replicas 0)")
		keys := make([]string, 0, len(r.CallsPerFoo))
		for k := range r.CallsPerFoo {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %-40s %.3f\n", k, r.CallsPerFoo[k])
		}
	}
	fmt.Fprintln(w, "\nMemory (controller process with N Foos and N Deployments in its caches)")
	for _, m := range r.Memory {
		fmt.Fprintf(w, "  N=%-6d drop managedFields=%-5v peak RSS %6.1f MiB   Go heap %6.1f MiB\n", m.N, m.DropManagedFields, m.PeakRSSMiB, m.HeapMiB)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nLatency, Foo created -> Deployment created, %d Foos at %d/s: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", l.Count, l.Rate, l.P50ms, l.P99ms, l.MaxMs)
	}
	fmt.Fprintln(w, "\nGrowth (replicas 0)")
	for _, g := range r.Growth {
		fmt.Fprintf(w, "  N=%-6d %6.1fs  %6.2f ms/Foo  x%.2f of the smallest N's per-Foo time\n", g.N, g.Seconds, g.MillisPerFoo, g.RelativeToMin)
	}
}
