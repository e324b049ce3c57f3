// Package v1 holds the compatibility tests of the Go Nacos SDK v1
// (github.com/nacos-group/nacos-sdk-go v1.1.6: HTTP v1 API plus UDP push)
// against a distrod node. All code is in _test.go files.
package v1
