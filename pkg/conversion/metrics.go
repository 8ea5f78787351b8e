package conversion

import (
	"strconv"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Values of the result label of conversion_total.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// mixedVersions is the from_version of a review whose objects are not all of one version
// (conversion_duration_seconds only).
const mixedVersions = "mixed"

const subsystem = "samplecontroller"

// Labels are bounded: a version label is a version the webhook knows (versions), or "" for one
// it does not know (or no version at all), whatever the request says; the code label is one of
// the few statuses the handler answers with.
var (
	// conversionTotal counts objects. result=success: an object converted and returned in a
	// successful review. result=failure: the object that made a review fail (a review stops at
	// its first bad object; the others of a failed review are not counted, as none is
	// returned), or, with from_version="", a review that failed before any object was read (a
	// desiredAPIVersion the webhook does not know: to_version="" too).
	conversionTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "conversion_total",
		Help:           "Foos converted by the conversion webhook, by version from and to, and result: success, or failure (the object that made its ConversionReview fail).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"from_version", "to_version", "result"})

	// conversionDuration is how long the webhook takes to answer one ConversionReview, from the
	// request body read to the response encoded (the network is not in it), whatever the
	// result. from_version is the version of the review's objects ("mixed" when they differ,
	// "" when there are none or the review failed before reading one); to_version is the
	// desired version.
	conversionDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Subsystem:      subsystem,
		Name:           "conversion_duration_seconds",
		Help:           "How long the conversion webhook takes to convert one ConversionReview, in seconds, by the version of its objects (mixed when they differ) and the version asked for.",
		Buckets:        []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		StabilityLevel: metrics.ALPHA,
	}, []string{"from_version", "to_version"})

	// conversionReviewErrors counts requests answered without a ConversionReview, by HTTP
	// status: 400 (not a ConversionReview, or without request or uid), 405 (not a POST), 413
	// (body over the limit), 415 (not JSON). The API server never sends such a request: any of
	// them is a bug or someone else calling.
	conversionReviewErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      subsystem,
		Name:           "conversion_review_errors_total",
		Help:           "Requests to the conversion webhook refused before conversion (not a valid ConversionReview), by HTTP status code.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"code"})
)

// reviewErrorCodes are the statuses conversionReviewErrors counts.
var reviewErrorCodes = []int{400, 405, 413, 415}

var registerOnce sync.Once

// RegisterMetrics adds the conversion webhook's metrics to the registry that
// pkg/metrics.Handler serves. Until it is called they are not recorded.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(conversionTotal, conversionDuration, conversionReviewErrors)
		// Initialise the series that exist in a working cluster, so that they are there (at 0)
		// before the first conversion.
		for from := range versions {
			for to := range versions {
				if from != to {
					conversionTotal.WithLabelValues(from, to, resultSuccess)
					conversionTotal.WithLabelValues(from, to, resultFailure)
				}
			}
		}
		for _, code := range reviewErrorCodes {
			conversionReviewErrors.WithLabelValues(strconv.Itoa(code))
		}
	})
}
