// Package helm holds the tests of the Helm charts beside it: the
// trusted-compute umbrella chart (trusted-compute/, with the subcharts
// verifier, trust-agent, attestation-manager and trusted-workload in
// trusted-compute/charts/) and the example confidential workload
// (examples/confidential-app/).
//
// The tests render every chart with the Helm Go SDK, with the default values
// plus the secrets an installation must provide (testdata/required.yaml) and
// with one values file per option (testdata/*.yaml), and apply what renders
// to a real kube-apiserver (internal/cluster/clustertest): a server-side dry
// run first, then for real. They skip when the control plane binaries are
// missing unless TC_TEST_REQUIRE contains "kube".
//
//	go test ./deploy/helm/
package helm
