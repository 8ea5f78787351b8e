// Package auditlog reads the API server's audit log (JSON lines, one audit.k8s.io/v1 Event
// each): what the API server saw the controller do, for the end-to-end tests and the benchmark.
//
// A reader marks the log's end (Mark) before the part it cares about, then reads what came
// after the mark.
package auditlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// ControllerUserAgent begins the user agent of every request the controller makes: client-go's
// default, the binary's name, then its version and platform.
const ControllerUserAgent = "sample-controller/"

// Event is the part of an audit.k8s.io/v1 Event that is read here.
type Event struct {
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// String is "verb resource[/subresource] namespace/name -> code".
func (e Event) String() string {
	s := e.Verb
	if e.ObjectRef != nil {
		s += " " + e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			s += "/" + e.ObjectRef.Subresource
		}
		s += " " + e.ObjectRef.Namespace + "/" + e.ObjectRef.Name
	}
	if e.ResponseStatus != nil {
		s += fmt.Sprintf(" -> %d", e.ResponseStatus.Code)
	}
	return s
}

// Mark is the log's current end: a position to read from later.
func Mark(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("the API server's audit log: %w", err)
	}
	return st.Size(), nil
}

// EachLineSince calls fn with each line the log gained after mark. The last line may be one
// the API server is still writing.
func EachLineSince(path string, mark int64, fn func(line []byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the API server's audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	return sc.Err()
}

// ControllerRequestsSince returns the completed requests that the controller (known by its
// user agent) made in namespace ns after mark, in the log's order.
func ControllerRequestsSince(path string, mark int64, ns string) ([]Event, error) {
	var out []Event
	err := EachLineSince(path, mark, func(line []byte) {
		if !bytes.Contains(line, []byte(`"`+ControllerUserAgent)) {
			return // most lines: not worth decoding
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return // a line still being written
		}
		if e.Stage != "ResponseComplete" || !strings.HasPrefix(e.UserAgent, ControllerUserAgent) ||
			e.ObjectRef == nil || e.ObjectRef.Namespace != ns {
			return
		}
		out = append(out, e)
	})
	return out, err
}
