package promtext

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A scrape as the controller serves it, with the cases the format allows: HELP and TYPE
// comments, a sample without labels, labels in any order, a label value holding a space, a
// brace and an escaped quote, a timestamp, and a value that is not a number.
const scrape = `# HELP rest_client_requests_total Number of HTTP requests, partitioned by status code, method, and host.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"} 12
rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"} 3
rest_client_requests_total{method="PUT",code="200",host="127.0.0.1:6443"} 4
rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PUT"} 1

workqueue_depth{name="foos"} 0
workqueue_depth{name="other"} 7
go_memstats_heap_alloc_bytes 1.2345e+07
odd_total{path="/a b}",msg="say \"hi\""} 2 1700000000000
broken_total{code="200"} not-a-number
`

func TestParse(t *testing.T) {
	s := Parse(scrape)
	want := Samples{
		`rest_client_requests_total{code="200",host="127.0.0.1:6443",method="GET"}`:  12,
		`rest_client_requests_total{code="201",host="127.0.0.1:6443",method="POST"}`: 3,
		`rest_client_requests_total{method="PUT",code="200",host="127.0.0.1:6443"}`:  4,
		`rest_client_requests_total{code="409",host="127.0.0.1:6443",method="PUT"}`:  1,
		`workqueue_depth{name="foos"}`:             0,
		`workqueue_depth{name="other"}`:            7,
		`go_memstats_heap_alloc_bytes`:             12345000,
		`odd_total{path="/a b}",msg="say \"hi\""}`: 2,
	}
	if !maps.Equal(s, want) {
		t.Errorf("Parse =\n%v\nwant\n%v", s, want)
	}
}

func TestSum(t *testing.T) {
	s := Parse(scrape)
	for _, tc := range []struct {
		series string
		want   float64
		ok     bool
	}{
		{`rest_client_requests_total`, 20, true},
		{`rest_client_requests_total{method="PUT"}`, 5, true},
		{`rest_client_requests_total{code="200",method="PUT"}`, 4, true}, // labels in another order than the sample's
		{`rest_client_requests_total{code="500"}`, 0, false},
		{`workqueue_depth{name="foos"}`, 0, true}, // present with the value 0 is not absent
		{`workqueue_depth{name="oth"}`, 0, false}, // a label matches whole, not as a prefix
		{`workqueue`, 0, false},                   // a name matches whole, not as a prefix
		{`go_memstats_heap_alloc_bytes`, 12345000, true},
		{`odd_total{msg="say \"hi\""}`, 2, true},
	} {
		got, ok := s.Sum(tc.series)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Sum(%s) = %v, %v; want %v, %v", tc.series, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDeltaBy(t *testing.T) {
	before := Parse(`rest_client_requests_total{code="200",method="GET"} 10
rest_client_requests_total{code="201",method="POST"} 3
samplecontroller_reconcile_total{result="success"} 5
`)
	after := Parse(`rest_client_requests_total{code="200",method="GET"} 10
rest_client_requests_total{code="201",method="POST"} 5
rest_client_requests_total{code="200",method="PUT"} 2
rest_client_requests_total{code="409",method="PUT"} 1
samplecontroller_reconcile_total{result="success"} 9
`)
	got := DeltaBy(before, after, "rest_client_requests_total", "method")
	if want := map[string]float64{"POST": 2, "PUT": 3}; !maps.Equal(got, want) {
		t.Errorf("DeltaBy(method) = %v, want %v (GET did not change and is left out)", got, want)
	}
	got = DeltaBy(before, after, "samplecontroller_reconcile_total", "result")
	if want := map[string]float64{"success": 4}; !maps.Equal(got, want) {
		t.Errorf("DeltaBy(result) = %v, want %v", got, want)
	}
	if got := DeltaBy(after, after, "rest_client_requests_total", "method"); len(got) != 0 {
		t.Errorf("DeltaBy of a scrape against itself = %v, want nothing", got)
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, scrape)
	}))
	defer srv.Close()
	s, err := Scrape(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Sum(`workqueue_depth{name="other"}`); !ok || v != 7 {
		t.Errorf("scraped workqueue_depth{name=other} = %v, %v; want 7", v, ok)
	}
	if _, err := Scrape(srv.URL + "/nothing"); err == nil {
		t.Error("Scrape of a 404 succeeded, want an error")
	}
}
