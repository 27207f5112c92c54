// Package kubernetes holds no code: it is the kustomize base in this
// folder, and its tests build that base in process with kustomize's own
// library, decode every object strictly into its Kubernetes API type and
// check what a cluster would only reveal at the worst moment: probes,
// resources, non-root, grace periods covering the drain timeouts, every
// Secret and ConfigMap key referenced, Service, Ingress and
// PodDisruptionBudget selectors that select something, and env variables
// that the binary really reads.
//
// deploy/README.md explains how to deploy and scale it.
package kubernetes
