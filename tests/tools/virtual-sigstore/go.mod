module ferry.dev/tests/virtual-sigstore

go 1.26.0

require (
	github.com/google/go-containerregistry v0.22.1
	github.com/sigstore/sigstore-go v1.2.2
)
