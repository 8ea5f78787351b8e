// Package promtext reads the Prometheus text exposition format that the controller serves on
// /metrics: what the end-to-end tests check, what the benchmark counts and what the soak samples.
package promtext

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Samples is one scrape: the value of each sample, by its series as the text writes it,
// `name` or `name{label="value",...}`.
type Samples map[string]float64

// Parse reads a scrape. Comments, blank lines and samples whose value is not a number are
// left out; a timestamp after the value is ignored.
func Parse(text string) Samples {
	out := Samples{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, rest := splitSeries(line)
		fields := strings.Fields(rest)
		if series == "" || len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			out[series] = v
		}
	}
	return out
}

// scrapeClient bounds a scrape: a controller that stops answering is an error, not a hang.
var scrapeClient = &http.Client{Timeout: 10 * time.Second}

// Scrape GETs url (a /metrics endpoint served without authentication) and parses the answer.
func Scrape(url string) (Samples, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(string(b)), nil
}

// splitSeries splits a sample line into its series and what follows (the value, perhaps a
// timestamp). A label value may hold spaces, braces and escaped quotes.
func splitSeries(line string) (series, rest string) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return "", ""
	}
	if line[i] != '{' {
		return line[:i], line[i:]
	}
	quoted, escaped := false, false
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == '}' && !quoted:
			return line[:j+1], line[j+1:]
		}
	}
	return "", ""
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// nameAndLabels splits a series into its metric name and its labels.
func nameAndLabels(series string) (string, map[string]string) {
	name, labels, _ := strings.Cut(series, "{")
	out := map[string]string{}
	for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
		out[m[1]] = m[2]
	}
	return name, out
}

// Sum adds up the samples of series, a metric name with optional labels
// (`name{a="x",b="y"}`): a sample counts when it has that name and every label given, whatever
// other labels it has. ok is false when no sample counts.
func (s Samples) Sum(series string) (sum float64, ok bool) {
	wantName, want := nameAndLabels(series)
	for sample, v := range s {
		name, labels := nameAndLabels(sample)
		if name != wantName || !hasAll(labels, want) {
			continue
		}
		sum += v
		ok = true
	}
	return sum, ok
}

func hasAll(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// DeltaBy is how much each series of metric changed from the scrape before to the scrape
// after, summed by the value of one label ("" for series without it). Series that did not
// change are left out, so an empty result means that nothing changed.
func DeltaBy(before, after Samples, metric, label string) map[string]float64 {
	out := map[string]float64{}
	for series, v := range after {
		name, labels := nameAndLabels(series)
		if name != metric {
			continue
		}
		if d := v - before[series]; d != 0 {
			out[labels[label]] += d
		}
	}
	return out
}
