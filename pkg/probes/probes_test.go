package probes

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func check(name string, err error) Check {
	return CheckFunc{CheckName: name, Func: func(*http.Request) error { return err }}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(
		[]Check{check("ping", nil)},
		[]Check{check("ping", nil), check("informers-synced", errors.New("the caches are not synced yet"))}))
	defer srv.Close()
	for _, tc := range []struct {
		path     string
		wantCode int
		want     []string
		dontWant []string
	}{
		{"/healthz", http.StatusOK, []string{"ok"}, []string{"[+]"}},
		{"/healthz?verbose", http.StatusOK, []string{"[+] ping ok", "ok"}, nil},
		// A failing probe names every check and which failed, but not why: anyone who reaches
		// the (unauthenticated) probe port reads it. The reason goes to the log.
		{"/readyz", http.StatusServiceUnavailable, []string{"[+] ping ok", "[-] informers-synced failed"}, []string{"caches"}},
		{"/other", http.StatusNotFound, nil, nil},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantCode {
			t.Errorf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.wantCode)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s = %q, want it to contain %q", tc.path, body, w)
			}
		}
		for _, w := range tc.dontWant {
			if strings.Contains(string(body), w) {
				t.Errorf("GET %s = %q, want no %q", tc.path, body, w)
			}
		}
	}
}
