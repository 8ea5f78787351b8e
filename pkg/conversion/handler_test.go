package conversion

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/dump"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	"example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

const (
	apiV1       = "samplecontroller.example.com/v1"
	apiV1alpha1 = "samplecontroller.example.com/v1alpha1"
)

// The same Foo at both versions: v1's image travels in v1alpha1's annotation. Metadata and
// status are full, to show that they come through.
const (
	fooV1alpha1 = `{"apiVersion":"samplecontroller.example.com/v1alpha1","kind":"Foo",
		"metadata":{"name":"a","namespace":"ns","uid":"0b9c6e1c-0000-4000-8000-000000000001","resourceVersion":"7","generation":2,
			"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"app":"a"},
			"annotations":{"samplecontroller.example.com/v1-deployment-image":"nginx:1","other":"kept"},
			"finalizers":["f"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"o-uid"}]},
		"spec":{"deploymentName":"a-deploy","replicas":3},
		"status":{"observedGeneration":2,"availableReplicas":3,"conditions":[{"type":"Ready","status":"True","reason":"DeploymentAvailable","message":"ok","lastTransitionTime":"2024-01-01T00:00:01Z","observedGeneration":2}]}}`
	fooV1 = `{"apiVersion":"samplecontroller.example.com/v1","kind":"Foo",
		"metadata":{"name":"a","namespace":"ns","uid":"0b9c6e1c-0000-4000-8000-000000000001","resourceVersion":"7","generation":2,
			"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"app":"a"},
			"annotations":{"other":"kept"},
			"finalizers":["f"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"o-uid"}]},
		"spec":{"deployment":{"name":"a-deploy","image":"nginx:1"},"replicas":3},
		"status":{"observedGeneration":2,"availableReplicas":3,"conditions":[{"type":"Ready","status":"True","reason":"DeploymentAvailable","message":"ok","lastTransitionTime":"2024-01-01T00:00:01Z","observedGeneration":2}]}}`
	// Another one, without image.
	barV1alpha1 = `{"apiVersion":"samplecontroller.example.com/v1alpha1","kind":"Foo","metadata":{"name":"b","namespace":"ns"},"spec":{"deploymentName":"b"}}`
	barV1       = `{"apiVersion":"samplecontroller.example.com/v1","kind":"Foo","metadata":{"name":"b","namespace":"ns"},"spec":{"deployment":{"name":"b"}}}`
)

// reviewBody is a ConversionReview asking to convert objects (JSON) to desired.
func reviewBody(uid, desired string, objects ...string) string {
	return fmt.Sprintf(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":%q,"desiredAPIVersion":%q,"objects":[%s]}}`,
		uid, desired, strings.Join(objects, ","))
}

// serve sends body to the handler as the API server does and returns the recorded answer.
func serve(t testing.TB, method, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	RegisterMetrics() // without it, recording is a no-op and testutil cannot read the metrics
	_, ctx := ktesting.NewTestContext(t)
	req := httptest.NewRequestWithContext(ctx, method, "/convert", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	NewHandler().ServeHTTP(rec, req)
	return rec
}

// decodeResponse decodes a 200 answer, checking what every one must have.
func decodeResponse(t testing.TB, rec *httptest.ResponseRecorder, uid string) *apiextensionsv1.ConversionResponse {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var review apiextensionsv1.ConversionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("the answer is not JSON: %v\n%s", err, rec.Body)
	}
	if review.APIVersion != "apiextensions.k8s.io/v1" || review.Kind != "ConversionReview" || review.Response == nil || review.Request != nil {
		t.Fatalf("the answer is not a ConversionReview with a response only: %s", rec.Body)
	}
	if string(review.Response.UID) != uid {
		t.Errorf("response.uid = %q, want the request's, %q", review.Response.UID, uid)
	}
	return review.Response
}

// typed decodes a Foo of the given apiVersion into its Go type, and back through JSON, so that
// two objects that encode the same compare equal.
func typed(t testing.TB, apiVersion string, data []byte) any {
	t.Helper()
	var obj any
	switch apiVersion {
	case apiV1:
		obj = new(samplev1.Foo)
	case apiV1alpha1:
		obj = new(v1alpha1.Foo)
	default:
		t.Fatalf("no Go type for %q in the test: add the new version to typed", apiVersion)
	}
	if err := utiljson.Unmarshal(data, obj); err != nil {
		t.Fatalf("decoding a %s Foo: %v\n%s", apiVersion, err, data)
	}
	normalized, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(normalized, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// Every version of Foo the webhook knows has a Go type in typed (and in the fuzz test).
func TestEveryVersionIsTested(t *testing.T) {
	for v := range versions {
		typed(t, "samplecontroller.example.com/"+v, []byte(`{}`))
	}
}

// counter is one series of conversion_total or conversion_review_errors_total.
type counter struct{ from, to, result, code string }

func (c counter) value(t *testing.T) float64 {
	t.Helper()
	m := conversionReviewErrors.WithLabelValues(c.code)
	if c.code == "" {
		m = conversionTotal.WithLabelValues(c.from, c.to, c.result)
	}
	v, err := testutil.GetCounterMetricValue(m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHandler(t *testing.T) {
	const uid = "705ab4f5-6393-11e8-b7cc-42010a800002"
	for _, tc := range []struct {
		name            string
		method          string // POST when empty
		contentType     string // application/json when empty; "-" for none
		body            string
		maxRequestBytes int64 // when not 0
		wantCode        int
		wantBodyHas     string   // the plain-text message of a refusal
		wantFailure     string   // a 200 with result Failure, whose message has this
		wantObjects     []string // a 200 with result Success and these objects (compared typed)
		wantUnchanged   []int    // indexes of objects that must come back byte for byte
		wantCounted     map[counter]float64
		wantDuration    []string // from_version, to_version of the review's duration, when not nil
	}{
		{
			name: "v1alpha1 to v1: the image annotation becomes the field", body: reviewBody(uid, apiV1, fooV1alpha1),
			wantCode: 200, wantObjects: []string{fooV1},
			wantCounted:  map[counter]float64{{from: "v1alpha1", to: "v1", result: "success"}: 1},
			wantDuration: []string{"v1alpha1", "v1"},
		},
		{
			name: "v1 to v1alpha1: the image field becomes the annotation", body: reviewBody(uid, apiV1alpha1, fooV1, barV1),
			wantCode: 200, wantObjects: []string{fooV1alpha1, barV1alpha1},
			wantCounted:  map[counter]float64{{from: "v1", to: "v1alpha1", result: "success"}: 2},
			wantDuration: []string{"v1", "v1alpha1"},
		},
		{
			name: "mixed versions", body: reviewBody(uid, apiV1alpha1, fooV1, barV1alpha1, fooV1alpha1, barV1),
			wantCode: 200, wantObjects: []string{fooV1alpha1, barV1alpha1, fooV1alpha1, barV1alpha1}, wantUnchanged: []int{1, 2},
			wantCounted: map[counter]float64{
				{from: "v1", to: "v1alpha1", result: "success"}:       2,
				{from: "v1alpha1", to: "v1alpha1", result: "success"}: 2,
			},
			wantDuration: []string{"mixed", "v1alpha1"},
		},
		{
			name: "same version: returned unchanged", body: reviewBody(uid, apiV1, fooV1, barV1),
			wantCode: 200, wantObjects: []string{fooV1, barV1}, wantUnchanged: []int{0, 1},
		},
		{
			name: "no objects", body: reviewBody(uid, apiV1), wantCode: 200, wantObjects: []string{},
			wantDuration: []string{"", "v1"},
		},
		{
			name: "objects null", body: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"` + uid + `","desiredAPIVersion":"samplecontroller.example.com/v1","objects":null}}`,
			wantCode: 200, wantObjects: []string{},
		},
		{
			name: "Content-Type with a charset", contentType: "application/json; charset=utf-8",
			body: reviewBody(uid, apiV1, barV1alpha1), wantCode: 200, wantObjects: []string{barV1},
		},
		{
			name: "no Content-Type: taken as JSON", contentType: "-",
			body: reviewBody(uid, apiV1, barV1alpha1), wantCode: 200, wantObjects: []string{barV1},
		},

		// Reviews that cannot be converted: 200, the uid echoed, Failure and why.
		{
			name: "an object of another kind", body: reviewBody(uid, apiV1, barV1alpha1, `{"apiVersion":"samplecontroller.example.com/v1alpha1","kind":"Bar","metadata":{"name":"x"}}`),
			wantCode: 200, wantFailure: `object 1: kind "Bar" is not Foo`,
			wantCounted:  map[counter]float64{{from: "v1alpha1", to: "v1", result: "failure"}: 1, {from: "v1alpha1", to: "v1", result: "success"}: 0},
			wantDuration: []string{"v1alpha1", "v1"},
		},
		{
			name: "an object of another group", body: reviewBody(uid, apiV1, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"}}`),
			wantCode: 200, wantFailure: `object 0: apiVersion "apps/v1" is not of the group samplecontroller.example.com`,
			wantCounted: map[counter]float64{{from: "", to: "v1", result: "failure"}: 1},
		},
		{
			name: "an object of a version the webhook does not know", body: reviewBody(uid, apiV1, `{"apiVersion":"samplecontroller.example.com/v2","kind":"Foo"}`),
			wantCode: 200, wantFailure: `object 0: apiVersion "samplecontroller.example.com/v2" is not a version this webhook converts (it knows v1, v1alpha1)`,
		},
		{
			name: "an object without apiVersion", body: reviewBody(uid, apiV1, `{"kind":"Foo"}`),
			wantCode: 200, wantFailure: `object 0: apiVersion "" is not of the group`,
		},
		{
			name: "an object that is not a JSON object", body: reviewBody(uid, apiV1, `"a string"`),
			wantCode: 200, wantFailure: "object 0: not a JSON object",
		},
		{
			name: "an object null", body: reviewBody(uid, apiV1, `null`),
			wantCode: 200, wantFailure: "object 0: not a JSON object",
		},
		{
			name: "an object whose fields have the wrong types", body: reviewBody(uid, apiV1, barV1alpha1, `{"apiVersion":"samplecontroller.example.com/v1alpha1","kind":"Foo","spec":{"replicas":"three"}}`),
			wantCode: 200, wantFailure: "object 1: not a samplecontroller.example.com/v1alpha1 Foo: ",
		},
		{
			name: "an object that does not decode, in the version asked for", body: reviewBody(uid, apiV1, `{"apiVersion":"samplecontroller.example.com/v1","kind":"Foo","metadata":[]}`),
			wantCode: 200, wantFailure: "object 0: not a samplecontroller.example.com/v1 Foo: ",
		},
		{
			name: "a desiredAPIVersion the webhook does not know", body: reviewBody(uid, "samplecontroller.example.com/v2", barV1),
			wantCode: 200, wantFailure: `desiredAPIVersion: apiVersion "samplecontroller.example.com/v2" is not a version this webhook converts`,
			wantCounted:  map[counter]float64{{from: "", to: "", result: "failure"}: 1},
			wantDuration: []string{"", ""},
		},
		{
			name: "a desiredAPIVersion of another group", body: reviewBody(uid, "apps/v1", barV1),
			wantCode: 200, wantFailure: `desiredAPIVersion: apiVersion "apps/v1" is not of the group samplecontroller.example.com`,
		},
		{
			name: "no desiredAPIVersion", body: reviewBody(uid, "", barV1),
			wantCode: 200, wantFailure: `desiredAPIVersion: apiVersion "" is not of the group`,
		},
		{
			name: "a desiredAPIVersion that is not group/version", body: reviewBody(uid, "a/b/c", barV1),
			wantCode: 200, wantFailure: `desiredAPIVersion: apiVersion "a/b/c" is not group/version`,
		},

		// Requests that are not ConversionReviews: a plain-text refusal.
		{
			name: "a body that is not JSON", body: `{"apiVersion":`, wantCode: 400, wantBodyHas: "not a JSON ConversionReview",
			wantCounted: map[counter]float64{{code: "400"}: 1},
		},
		{
			name: "an empty body", body: ``, wantCode: 400, wantBodyHas: "not a JSON ConversionReview",
		},
		{
			name: "a v1beta1 ConversionReview", body: strings.Replace(reviewBody(uid, apiV1, barV1), "apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1", 1),
			wantCode: 400, wantBodyHas: `not a ConversionReview of apiextensions.k8s.io/v1`,
		},
		{
			name: "another kind of review", body: strings.Replace(reviewBody(uid, apiV1, barV1), `"ConversionReview"`, `"AdmissionReview"`, 1),
			wantCode: 400, wantBodyHas: `the body is a "AdmissionReview"`,
		},
		{
			name: "a review without a request", body: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`,
			wantCode: 400, wantBodyHas: "has no request",
		},
		{
			name: "a review without a uid", body: reviewBody("", apiV1, barV1),
			wantCode: 400, wantBodyHas: "has no uid",
		},
		{
			name: "a request field of the wrong type", body: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"u","objects":{}}}`,
			wantCode: 400, wantBodyHas: "not a JSON ConversionReview",
		},
		{
			name: "GET", method: http.MethodGet, wantCode: 405, wantBodyHas: "must be POSTed",
			wantCounted: map[counter]float64{{code: "405"}: 1},
		},
		{
			name: "a Content-Type that is not JSON", contentType: "application/yaml", body: reviewBody(uid, apiV1, barV1),
			wantCode: 415, wantBodyHas: `Content-Type "application/yaml" is not application/json`,
			wantCounted: map[counter]float64{{code: "415"}: 1},
		},
		{
			name: "a body over the limit", maxRequestBytes: 100, body: reviewBody(uid, apiV1, barV1, barV1),
			wantCode: 413, wantBodyHas: "larger than 100 bytes",
			wantCounted: map[counter]float64{{code: "413"}: 1},
		},
		{
			name: "a body just at the limit", maxRequestBytes: int64(len(reviewBody(uid, apiV1, barV1))), body: reviewBody(uid, apiV1, barV1),
			wantCode: 200, wantObjects: []string{barV1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.maxRequestBytes != 0 {
				old := maxRequestBytes
				maxRequestBytes = tc.maxRequestBytes
				t.Cleanup(func() { maxRequestBytes = old })
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			contentType := tc.contentType
			switch contentType {
			case "":
				contentType = "application/json"
			case "-":
				contentType = ""
			}
			RegisterMetrics()
			before := map[counter]float64{}
			for c := range tc.wantCounted {
				before[c] = c.value(t)
			}
			var durationsBefore uint64
			if tc.wantDuration != nil {
				durationsBefore = durationCount(t, tc.wantDuration)
			}

			rec := serve(t, method, contentType, tc.body)

			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d; body:\n%s", rec.Code, tc.wantCode, rec.Body)
			}
			for c, want := range tc.wantCounted {
				if got := c.value(t) - before[c]; got != want {
					t.Errorf("%+v went up by %v, want %v", c, got, want)
				}
			}
			if tc.wantDuration != nil {
				if got := durationCount(t, tc.wantDuration) - durationsBefore; got != 1 {
					t.Errorf("conversion_duration_seconds%q counted %d reviews, want 1", tc.wantDuration, got)
				}
			}
			if tc.wantCode != http.StatusOK {
				if !strings.Contains(rec.Body.String(), tc.wantBodyHas) {
					t.Errorf("body %q does not say %q", rec.Body, tc.wantBodyHas)
				}
				if tc.wantCode == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
					t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
				}
				return
			}

			resp := decodeResponse(t, rec, uid)
			if tc.wantFailure != "" {
				if resp.Result.Status != metav1.StatusFailure || !strings.Contains(resp.Result.Message, tc.wantFailure) {
					t.Errorf("result = %+v, want Failure saying %q", resp.Result, tc.wantFailure)
				}
				if len(resp.ConvertedObjects) != 0 {
					t.Errorf("a failed review returned %d objects", len(resp.ConvertedObjects))
				}
				return
			}
			if resp.Result.Status != metav1.StatusSuccess {
				t.Fatalf("result = %+v, want Success", resp.Result)
			}
			if resp.ConvertedObjects == nil || !bytes.Contains(rec.Body.Bytes(), []byte(`"convertedObjects":[`)) {
				t.Errorf("convertedObjects is not a list: %s", rec.Body)
			}
			if len(resp.ConvertedObjects) != len(tc.wantObjects) {
				t.Fatalf("%d objects returned, want %d", len(resp.ConvertedObjects), len(tc.wantObjects))
			}
			var req apiextensionsv1.ConversionReview
			if err := json.Unmarshal([]byte(tc.body), &req); err != nil {
				t.Fatal(err)
			}
			for i, got := range resp.ConvertedObjects {
				var tm metav1.TypeMeta
				if err := utiljson.Unmarshal(got.Raw, &tm); err != nil {
					t.Fatalf("object %d: %v", i, err)
				}
				if tm.APIVersion != req.Request.DesiredAPIVersion || tm.Kind != "Foo" {
					t.Errorf("object %d: apiVersion %q, kind %q; want %q, Foo", i, tm.APIVersion, tm.Kind, req.Request.DesiredAPIVersion)
				}
				want, gotTyped := typed(t, tm.APIVersion, []byte(tc.wantObjects[i])), typed(t, tm.APIVersion, got.Raw)
				if !equality.Semantic.DeepEqual(want, gotTyped) {
					t.Errorf("object %d:\ngot  %s\nwant %s", i, dump.Pretty(gotTyped), dump.Pretty(want))
				}
			}
			// Unchanged but for white space, which encoding/json compacts in the answer.
			for _, i := range tc.wantUnchanged {
				var in bytes.Buffer
				if err := json.Compact(&in, req.Request.Objects[i].Raw); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(resp.ConvertedObjects[i].Raw, in.Bytes()) {
					t.Errorf("object %d changed:\ngot  %s\nwant %s", i, resp.ConvertedObjects[i].Raw, req.Request.Objects[i].Raw)
				}
			}
		})
	}
}

func durationCount(t *testing.T, labels []string) uint64 {
	t.Helper()
	n, err := testutil.GetHistogramMetricCount(conversionDuration.WithLabelValues(labels[0], labels[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The metrics are registered once, with the series of a working cluster there at 0, and
// served under their documented names.
func TestRegisterMetrics(t *testing.T) {
	RegisterMetrics()
	RegisterMetrics() // twice is fine
	for _, c := range []counter{
		{from: "v1alpha1", to: "v1", result: "success"}, {from: "v1", to: "v1alpha1", result: "failure"},
		{code: strconv.Itoa(http.StatusBadRequest)}, {code: "413"},
	} {
		c.value(t) // exists
	}
	serve(t, http.MethodPost, "application/json", reviewBody("u", apiV1, barV1alpha1))
	serve(t, http.MethodGet, "", "")
	rec := httptest.NewRecorder()
	legacyregistry.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`samplecontroller_conversion_total{from_version="v1alpha1",result="success",to_version="v1"}`,
		`samplecontroller_conversion_total{from_version="v1",result="success",to_version="v1alpha1"}`,
		`samplecontroller_conversion_duration_seconds_bucket{from_version="v1alpha1",to_version="v1",le="0.0005"}`,
		`samplecontroller_conversion_review_errors_total{code="405"}`,
		`samplecontroller_conversion_review_errors_total{code="415"}`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
