package main

import (
	"time"

	"example.com/sample-controller/internal/promtext"
)

// Steady is what a converged controller costs.
type Steady struct {
	N             int                `json:"n"`
	WindowSeconds float64            `json:"windowSeconds"`
	Requests      map[string]float64 `json:"controllerRequestsByMethod"`
	Writes        float64            `json:"writes"`
	Reconciles    float64            `json:"reconciles"`
}

// steady measures what a converged controller costs over two resync periods.
func (b *bench) steady(p *controller, n int) (*Steady, error) {
	window := 2*b.cfg.resync + 5*time.Second
	progress("steady state: watching the converged controller for %s (two resync periods)", window)
	before, err := p.scrape()
	if err != nil {
		return nil, err
	}
	time.Sleep(window)
	after, err := p.scrape()
	if err != nil {
		return nil, err
	}
	s := &Steady{N: n, WindowSeconds: window.Seconds(), Requests: promtext.DeltaBy(before, after, "rest_client_requests_total", "method")}
	for method, v := range s.Requests {
		if method != "GET" {
			s.Writes += v
		}
	}
	for _, v := range promtext.DeltaBy(before, after, "samplecontroller_reconcile_total", "result") {
		s.Reconciles += v
	}
	return s, nil
}
