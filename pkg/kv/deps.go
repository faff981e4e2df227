package kv

// Pebble's module graph requires google.golang.org/genproto of 2023, whose
// googleapis/rpc and googleapis/api packages have since moved to modules
// of their own, which gRPC uses: two modules would provide one package
// ("ambiguous import"). Importing a package of a newer genproto, which no
// longer holds them, keeps that version required (go mod tidy would drop
// an unused requirement) and the build unambiguous.
import _ "google.golang.org/genproto/protobuf/field_mask"
