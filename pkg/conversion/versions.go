package conversion

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"example.com/sample-controller/pkg/apis/samplecontroller"
	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	"example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// The versions of Foo the webhook converts between. Every conversion goes through the hub (v1,
// the stored version): an object is decoded at its own version and converted to the hub, then
// from the hub to the version asked for. A new version is one entry in versions: its Go type
// with ConvertTo and ConvertFrom (the pair v1alpha1 has), and spokeVersion does the rest.

// kind is the only kind the webhook converts: the CRD's.
const kind = "Foo"

// version is what the webhook needs of one version of Foo.
type version struct {
	// toHub decodes an object of this version (JSON) and converts it to the hub.
	toHub func(data []byte) (*samplev1.Foo, error)
	// fromHub converts a hub object to this version. It may return hub itself (the hub's own
	// entry does) but never modifies it.
	fromHub func(hub *samplev1.Foo) runtime.Object
}

// versions are the versions of Foo the webhook knows, by version name (v1, not
// samplecontroller.example.com/v1).
var versions = map[string]version{
	samplev1.SchemeGroupVersion.Version: {
		toHub:   decode[samplev1.Foo],
		fromHub: func(hub *samplev1.Foo) runtime.Object { return hub },
	},
	v1alpha1.SchemeGroupVersion.Version: spokeVersion[v1alpha1.Foo](),
}

// spoke is a version other than the hub: a Foo type that converts itself to and from the hub.
type spoke[T any] interface {
	*T
	runtime.Object
	ConvertTo(dst *samplev1.Foo)
	ConvertFrom(src *samplev1.Foo)
}

// spokeVersion makes the entry of versions for the spoke type T.
func spokeVersion[T any, P spoke[T]]() version {
	return version{
		toHub: func(data []byte) (*samplev1.Foo, error) {
			obj, err := decode[T](data)
			if err != nil {
				return nil, err
			}
			hub := new(samplev1.Foo)
			P(obj).ConvertTo(hub)
			return hub, nil
		},
		fromHub: func(hub *samplev1.Foo) runtime.Object {
			obj := P(new(T))
			obj.ConvertFrom(hub)
			return obj
		},
	}
}

// decode decodes data into a new T as the API server does: field names are case-sensitive,
// and fields the type does not have are dropped (the API server prunes them from a CRD's
// objects anyway).
func decode[T any](data []byte) (*T, error) {
	obj := new(T)
	if err := utiljson.Unmarshal(data, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// groupVersionKind is Foo's GroupVersionKind at the version v.
func groupVersionKind(v string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: samplecontroller.GroupName, Version: v, Kind: kind}
}

// knownVersions lists the versions of Foo the webhook knows, for messages: "v1, v1alpha1".
func knownVersions() string {
	names := make([]string, 0, len(versions))
	for name := range versions {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// parseVersion checks that apiVersion is a version of samplecontroller.example.com that the
// webhook knows, and returns that version's name and entry.
func parseVersion(apiVersion string) (string, version, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return "", version{}, fmt.Errorf("apiVersion %q is not group/version", apiVersion)
	}
	if gv.Group != samplecontroller.GroupName {
		return "", version{}, fmt.Errorf("apiVersion %q is not of the group %s", apiVersion, samplecontroller.GroupName)
	}
	v, ok := versions[gv.Version]
	if !ok {
		return "", version{}, fmt.Errorf("apiVersion %q is not a version this webhook converts (it knows %s)", apiVersion, knownVersions())
	}
	return gv.Version, v, nil
}
