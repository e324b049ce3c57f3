// Package deploy holds the Kubernetes manifests (deploy/kubernetes) and the
// checks that keep them valid: its test decodes every manifest strictly into
// the Kubernetes API types (an unknown or misspelt field fails), checks the
// wiring between the objects (selectors, ports, the headless Service, the
// Secret, probes on /readyz and /healthz) and parses distrod's arguments with
// distrod's own configuration loader. It is a separate module so that the
// Kubernetes API modules stay out of the server's dependencies. See
// docs/kubernetes.md.
package deploy
