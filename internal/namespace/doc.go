// Package namespace keeps the Nacos namespaces (tenants): created,
// renamed and deleted through the console API, stored durably in a CP
// table (consistency.KV, replicated by Raft), read locally.
//
// The default namespace ("public", or empty on the wire) always exists and
// cannot be changed. Naming writes can be restricted to known namespaces
// (Registry.Exists), as Nacos does with nacos.core.namespace.validation.enabled.
package namespace
