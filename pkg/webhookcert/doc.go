// Package webhookcert gives the controller's CRD conversion webhook a serving certificate
// that the API server trusts, with no manual step and renewal before expiry.
//
// # Design
//
// The controller is its own small CA. One Secret, shared by every replica, holds:
//
//	ca.crt   the CA bundle (PEM): the current CA, and during a CA rotation the previous one too
//	ca.key   the current CA's key
//	tls.crt  the serving certificate (signed by a CA of the bundle)
//	tls.key  its key
//
// and the CRD's spec.conversion.webhook.clientConfig.caBundle is kept equal to ca.crt.
// Every replica runs a Manager: it watches the Secret and the CRD (one object each, by a
// field selector on metadata.name), serves the Secret's certificate from memory
// (tls.Config.GetCertificate, so a renewal needs no restart), and when something is
// missing, broken or due, it writes the Secret with the resourceVersion it read. Replicas
// that race lose with a Conflict or AlreadyExists, re-read, and adopt the winner's Secret,
// so they all converge on one CA and one certificate.
//
// Why this and not cert-manager (or a Job that runs once): no extra operator to install
// and keep running for one certificate, and the very same code path works out of cluster,
// where the API server calls the webhook by URL (the certificate then names an IP such as
// 127.0.0.1), and in cluster, where it calls it through a Service (the certificate names
// the Service's DNS names). A deleted Secret is re-created and a CRD re-applied without
// its caBundle (kubectl apply wipes a field it does not set) is patched again within
// seconds, because both are watched.
//
// # Renewal
//
// Every certificate is renewed once two thirds of its validity have passed (defaults: CA
// 10 years, serving certificate 90 days), which leaves a third of it to ride out an API
// server outage. The serving certificate is also re-issued at once if it is expired, does
// not parse, lacks a DNS name or IP address of Options (extra ones are tolerated so that
// replicas of two versions in a rolling update do not re-issue it in turn), or does not
// chain to the bundle.
//
// A CA rotation is done in two steps so that no client is ever served a certificate it
// cannot verify: the new CA is added to the bundle (the old one stays there until it
// expires) and patched into the CRD; the serving certificate is re-issued by the new CA
// only once the CRD's caBundle shows it and a short propagation delay has passed, so that
// the API servers have seen the new bundle. Expired CAs are dropped from the bundle.
//
// All keys are ECDSA P-256, serial numbers random 128-bit, NotBefore backdated five
// minutes for clock skew (less for the short validities tests use).
//
// # RBAC
//
// In the Secret's namespace (a Role):
//
//   - secrets: create (RBAC cannot limit create to a name);
//   - secrets, resourceNames [SecretName]: get, list, watch, update.
//
// Cluster-wide (a ClusterRole), when CRDName is set:
//
//   - apiextensions.k8s.io customresourcedefinitions, resourceNames [CRDName]: list,
//     watch, patch (and get, which is not used today but costs nothing).
//
// list and watch can be limited to a name because the informers select it with
// fieldSelector=metadata.name=NAME, which the API server authorizes as a request for that
// one object.
package webhookcert
