package main

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// referrer is an OCI 1.1 image manifest with an artifactType (go-containerregistry's
// v1.Manifest has none), shaped like cosign 3's bundle referrer.
type referrer struct {
	v1.Manifest
	ArtifactType string `json:"artifactType,omitempty"`
}

func (r referrer) RawManifest() ([]byte, error)        { return json.Marshal(r) }
func (r referrer) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// pushReferrer uploads the bundle and an empty config, then the referrer manifest by digest;
// go-containerregistry updates the referrers tag schema's index when the registry has no
// Referrers API, as it does for cosign.
func pushReferrer(subject name.Digest, bundleJSON []byte) (string, error) {
	desc, err := remote.Head(subject)
	if err != nil {
		return "", err
	}
	repo := subject.Context()
	config := static.NewLayer([]byte("{}"), types.MediaType("application/vnd.oci.empty.v1+json"))
	layer := static.NewLayer(bundleJSON, types.MediaType(bundleMediaType))
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			return "", err
		}
		d, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		descs = append(descs, v1.Descriptor{MediaType: mt, Digest: d, Size: size})
	}
	descs[0].ArtifactType = bundleMediaType
	m := referrer{v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        descs[0],
		Layers:        descs[1:],
		Subject:       &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
		Annotations: map[string]string{
			"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": signPredicate,
		},
	}, bundleMediaType}
	raw, err := m.RawManifest()
	if err != nil {
		return "", err
	}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	if err := remote.Put(repo.Digest(digest.String()), m); err != nil {
		return "", err
	}
	return digest.String(), nil
}
