// Package conversion is the Foo CRD's conversion webhook: the API server POSTs it an
// apiextensions.k8s.io/v1 ConversionReview whenever a client reads or writes a Foo at a version
// other than the one it has the object in (v1 is stored; v1alpha1 is served too), and it
// answers with the objects converted.
//
// The handler answers whatever path it is mounted on (the CRD's clientConfig says /convert).
// It needs TLS in front of it (httpserver.StartTLS): the API server calls webhooks over HTTPS
// only. Call RegisterMetrics once for its metrics to be recorded.
//
// Answers:
//   - 200 with a ConversionReview whose response echoes the request's uid: result.status
//     Success and the objects converted, or Failure and a message naming the first object that
//     could not be converted and why (the API server passes it on to the client);
//   - 400 with a plain-text message when the body is not a ConversionReview with a request and
//     a uid (there is no uid to answer to); 405 when not a POST; 413 when the body is larger
//     than MaxRequestBytes; 415 when the Content-Type is not JSON (a missing one is taken as
//     JSON).
package conversion

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/klog/v2"
)

// MaxRequestBytes bounds the request body. It is large because the API server sends every
// object of a LIST that needs converting in one ConversionReview (a LIST of thousands of
// v1alpha1 Foos is one review), and a review over the limit fails the whole LIST; it is bounded
// so that a caller cannot make the process hold an arbitrary amount of memory (the body, the
// objects decoded and the answer are all in memory at once). A client with more Foos than fit
// can page its LIST (limit and continue): the API server converts page by page.
const MaxRequestBytes = 32 << 20 // 32 MiB

// maxRequestBytes is MaxRequestBytes, a variable only so that tests can shrink it.
var maxRequestBytes int64 = MaxRequestBytes

// reviewGroupVersion is the only version of ConversionReview the webhook speaks; the CRD must
// say conversionReviewVersions: ["v1"].
var reviewGroupVersion = apiextensionsv1.SchemeGroupVersion

const reviewKind = "ConversionReview"

// NewHandler returns the conversion webhook's handler. It logs with the logger of the request's
// context (klog.FromContext): failures at V(2), successes at V(4), each with the review's uid.
func NewHandler() http.Handler {
	return handler{}
}

type handler struct{}

func (handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context())
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, logger, http.StatusMethodNotAllowed, "a ConversionReview must be POSTed, not sent with "+r.Method)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mediaType, _, err := mime.ParseMediaType(ct); err != nil || mediaType != "application/json" {
			refuse(w, logger, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not application/json", ct))
			return
		}
	}
	if r.Body == nil { // never from net/http's server; possible from a caller of ServeHTTP
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			refuse(w, logger, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit))
			return
		}
		refuse(w, logger, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}

	start := time.Now()
	req, err := decodeRequest(body)
	if err != nil {
		refuse(w, logger, http.StatusBadRequest, err.Error())
		return
	}
	logger = logger.WithValues("uid", req.UID, "desiredAPIVersion", req.DesiredAPIVersion)

	c := convert(req)
	review := &apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: reviewGroupVersion.String(), Kind: reviewKind},
		Response: &apiextensionsv1.ConversionResponse{
			UID:              req.UID,
			ConvertedObjects: []runtime.RawExtension{}, // [], not null, when there are none
			Result:           metav1.Status{Status: metav1.StatusSuccess},
		},
	}
	if c.err == nil {
		review.Response.ConvertedObjects = c.converted
	} else {
		review.Response.Result = metav1.Status{Status: metav1.StatusFailure, Message: c.err.Error()}
	}
	out, err := utiljson.Marshal(review)
	if err != nil { // not possible with these types; answered rather than assumed
		refuse(w, logger, http.StatusInternalServerError, "encoding the ConversionReview: "+err.Error())
		return
	}
	conversionDuration.WithLabelValues(c.fromLabel(), c.to).Observe(time.Since(start).Seconds())
	if c.err == nil {
		for _, from := range c.from {
			conversionTotal.WithLabelValues(from, c.to, resultSuccess).Inc()
		}
		logger.V(4).Info("Converted", "from", c.fromLabel(), "to", c.to, "objects", len(c.converted), "duration", time.Since(start))
	} else {
		from := "" // a review that failed before an object
		if len(c.from) > 0 {
			from = c.from[len(c.from)-1] // the object that failed
		}
		conversionTotal.WithLabelValues(from, c.to, resultFailure).Inc()
		logger.V(2).Info("Conversion failed", "objects", len(req.Objects), "err", c.err)
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // an error is the client's going away: nothing left to tell it
}

// refuse answers a request that is not a ConversionReview the webhook can answer.
func refuse(w http.ResponseWriter, logger klog.Logger, code int, msg string) {
	conversionReviewErrors.WithLabelValues(strconv.Itoa(code)).Inc()
	logger.V(2).Info("Refused a conversion request", "code", code, "reason", msg)
	http.Error(w, msg, code)
}

// decodeRequest decodes body as a ConversionReview and returns its request, or an error saying
// why it is not one the webhook can answer.
func decodeRequest(body []byte) (*apiextensionsv1.ConversionRequest, error) {
	var review apiextensionsv1.ConversionReview
	if err := utiljson.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("the body is not a JSON ConversionReview: %v", err)
	}
	if review.APIVersion != reviewGroupVersion.String() || review.Kind != reviewKind {
		return nil, fmt.Errorf("the body is a %q of apiVersion %q, not a %s of %s", review.Kind, review.APIVersion, reviewKind, reviewGroupVersion)
	}
	if review.Request == nil {
		return nil, errors.New("the ConversionReview has no request")
	}
	if review.Request.UID == "" {
		return nil, errors.New("the ConversionReview's request has no uid")
	}
	return review.Request, nil
}

// conversion is the outcome of converting one review's objects.
type conversion struct {
	converted []runtime.RawExtension
	// to is the desired version, "" when the webhook does not know it (a label value).
	to string
	// from is the version of each object read, in order, "" for one of no version the webhook
	// knows; when err is set and from is not empty, its last is the object that failed.
	from []string
	err  error
}

// fromLabel is the from_version of the review's duration: its objects' version, "mixed" when
// they differ, "" when there are none.
func (c *conversion) fromLabel() string {
	if len(c.from) == 0 {
		return ""
	}
	for _, v := range c.from[1:] {
		if v != c.from[0] {
			return mixedVersions
		}
	}
	return c.from[0]
}

// convert converts each of req's objects to req.DesiredAPIVersion, through the hub. It stops at
// the first object it cannot convert.
func convert(req *apiextensionsv1.ConversionRequest) *conversion {
	c := &conversion{}
	toVersion, to, err := parseVersion(req.DesiredAPIVersion)
	if err != nil {
		c.err = fmt.Errorf("desiredAPIVersion: %v", err)
		return c
	}
	c.to = toVersion
	c.converted = make([]runtime.RawExtension, 0, len(req.Objects))
	for i, obj := range req.Objects {
		out, fromVersion, err := convertObject(obj.Raw, toVersion, to)
		c.from = append(c.from, fromVersion)
		if err != nil {
			c.err = fmt.Errorf("object %d: %v", i, err)
			c.converted = nil
			return c
		}
		c.converted = append(c.converted, runtime.RawExtension{Raw: out})
	}
	return c
}

// convertObject converts data, a Foo in JSON, to the version toVersion, and returns it in JSON
// with the version of data ("" when it is not one the webhook knows).
func convertObject(data []byte, toVersion string, to version) ([]byte, string, error) {
	var typeMeta metav1.TypeMeta
	if err := utiljson.Unmarshal(data, &typeMeta); err != nil {
		return nil, "", fmt.Errorf("not a JSON object: %v", err)
	}
	fromVersion, from, err := parseVersion(typeMeta.APIVersion)
	if err != nil {
		return nil, "", err
	}
	if typeMeta.Kind != kind {
		return nil, fromVersion, fmt.Errorf("kind %q is not %s, the only kind this webhook converts", typeMeta.Kind, kind)
	}
	hub, err := from.toHub(data)
	if err != nil {
		return nil, fromVersion, fmt.Errorf("not a %s %s: %v", typeMeta.APIVersion, kind, err)
	}
	if fromVersion == toVersion {
		// Already in the version asked for (it decodes, so it is a Foo): returned as it came.
		return data, fromVersion, nil
	}
	obj := to.fromHub(hub)
	obj.GetObjectKind().SetGroupVersionKind(groupVersionKind(toVersion))
	out, err := utiljson.Marshal(obj)
	if err != nil {
		return nil, fromVersion, fmt.Errorf("encoding it at %s: %v", toVersion, err)
	}
	return out, fromVersion, nil
}
