// Package knative holds a test only: every Knative Service that nubo
// renders passes Knative Serving's SetDefaults and Validate, the checks its
// admission webhook runs, with Knative's default feature flags.
package knative
