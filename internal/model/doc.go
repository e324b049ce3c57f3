// Package model defines the registry's data model: namespaces, groups,
// services, clusters and instances, with the Nacos naming rules (defaults,
// grouped names, instance ids) and the validation every entry point applies
// before anything reaches the store.
//
// The package is pure: no I/O, no goroutines, no clocks.
package model
