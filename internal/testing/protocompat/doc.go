// Package protocompat checks that a new version of a .proto file keeps
// every promise its previous version made to clients built from it, in the
// manner of `buf breaking` (its FILE and WIRE_JSON rules that apply to a
// single file): nothing a client may send or receive disappears or changes
// its number, name, type, cardinality, oneof or presence; removed fields
// and enum values leave their number and name reserved; reservations stay;
// services keep their methods with the same request and response types and
// streaming; the package and go_package stay.
//
// Files are compiled with github.com/bufbuild/protocompile, so a file that
// does not compile (a field reusing a reserved number, say) fails before
// it is compared. proto/bpfd/v1's test holds bpfd.proto to the release
// before it (git show of the tag), docs/daemon.md states the rules.
package protocompat
