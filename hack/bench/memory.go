package main

import (
	"fmt"
	"runtime"
	"time"
)

// Memory is what a controller over N Foos and their Deployments holds.
type Memory struct {
	N                 int     `json:"n"`
	DropManagedFields bool    `json:"dropManagedFields"`
	PeakRSSMiB        float64 `json:"peakRSSMiB"`
	HeapMiB           float64 `json:"goHeapMiB"`
}

// memory starts a controller over n converged Foos in namespace ns, lets it sync each once,
// and reads its peak RSS and Go heap.
func (b *bench) memory(ns string, n int, dropManagedFields bool) (Memory, error) {
	m := Memory{N: n, DropManagedFields: dropManagedFields}
	progress("memory: N=%d, informer-drop-managed-fields=%v", n, dropManagedFields)
	p, err := b.startController(ns, fmt.Sprintf("--informer-drop-managed-fields=%v", dropManagedFields))
	if err != nil {
		return m, err
	}
	defer p.stop()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		s, err := p.scrape()
		if err != nil {
			return m, err
		}
		if synced, _ := s.Sum(`samplecontroller_reconcile_total{result="success"}`); synced >= float64(n) {
			runtime.GC()
			time.Sleep(2 * time.Second)
			if s, err = p.scrape(); err != nil {
				return m, err
			}
			heap, _ := s.Sum("go_memstats_heap_alloc_bytes")
			m.HeapMiB = heap / (1 << 20)
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("memory: the controller did not sync %d Foos; log: %s", n, p.LogPath())
		}
		time.Sleep(200 * time.Millisecond)
	}
	peakKiB, err := p.StatusKiB("VmHWM") // the peak resident set
	m.PeakRSSMiB = peakKiB / 1024
	return m, err
}
