// virtual-sigstore: keyless cosign signatures for ferry's tests, with no internet.
//
// One run is one private Sigstore instance: sigstore-go's pkg/testing/ca VirtualSigstore
// provides the Rekor log (entries, signed entry timestamps, inclusion proofs and checkpoints)
// and the timestamp authority; this program adds a Fulcio-style CA (root and intermediate
// from the same package) whose leaf certificates carry an embedded SCT from a CT log key of its
// own (VirtualSigstore's leaves carry none, and a verifier that checks SCTs would refuse them).
// It writes the instance's trusted_root.json and signs image digests the way cosign 3 does: an
// in-toto statement with cosign's signing predicate in a DSSE envelope, in a Sigstore bundle
// v0.3 with the leaf certificate and a Rekor dsse entry, pushed as an OCI referrer of the image
// (go-containerregistry keeps the referrers tag schema on registries without the API).
//
// Input (stdin, JSON):
//
//	{"trusted_root": "PATH", "plain_http": true,
//	 "signatures": [{"image": "HOST/REPO@sha256:…", "signs": "sha256:…" (default: the image's),
//	   "identity": "…" (an email, or a URI when it has "://"), "issuer": "…",
//	   "ca": "trusted" | "untrusted", "tamper": "" | "payload" | "no-tlog" | "tlog-time",
//	   "bundle_out": "PATH" (optional)}]}
//
// Output: one line per signature, the referrer manifest's digest.
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
)

const (
	bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	signPredicate   = "https://sigstore.dev/cosign/sign/v1"
	inToto          = "application/vnd.in-toto+json"
)

type request struct {
	TrustedRoot string `json:"trusted_root"`
	PlainHTTP   bool   `json:"plain_http"`
	Signatures  []job  `json:"signatures"`
}

type job struct {
	Image     string `json:"image"`
	Signs     string `json:"signs"`
	Identity  string `json:"identity"`
	Issuer    string `json:"issuer"`
	CA        string `json:"ca"`
	Tamper    string `json:"tamper"`
	BundleOut string `json:"bundle_out"`
}

// fulcio is a CA issuing Fulcio-style leaf certificates with an embedded SCT.
type fulcio struct {
	root, intermediate *x509.Certificate
	key                *ecdsa.PrivateKey
}

type instance struct {
	vs      *ca.VirtualSigstore
	trusted fulcio
	other   fulcio
	ctKey   *ecdsa.PrivateKey
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "virtual-sigstore:", err)
		os.Exit(1)
	}
}

func run() error {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	inst, err := newInstance()
	if err != nil {
		return err
	}
	if err := inst.writeTrustedRoot(req.TrustedRoot); err != nil {
		return err
	}
	for _, j := range req.Signatures {
		d, err := inst.sign(j, req.PlainHTTP)
		if err != nil {
			return fmt.Errorf("%s: %w", j.Image, err)
		}
		fmt.Println(d)
	}
	return nil
}

func newFulcio() (fulcio, error) {
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		return fulcio{}, err
	}
	inter, key, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		return fulcio{}, err
	}
	return fulcio{root: rootCert, intermediate: inter, key: key}, nil
}

func newInstance() (*instance, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, err
	}
	trusted, err := newFulcio()
	if err != nil {
		return nil, err
	}
	other, err := newFulcio()
	if err != nil {
		return nil, err
	}
	ctKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &instance{vs: vs, trusted: trusted, other: other, ctKey: ctKey}, nil
}

// logID is the SHA-256 of a log's DER public key (RFC 6962 and Rekor alike).
func logID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// writeTrustedRoot writes the instance's trusted_root.json: the trusted CA (not the other
// one), the CT log, VirtualSigstore's Rekor log and timestamp authority.
func (in *instance) writeTrustedRoot(path string) error {
	now := time.Now()
	ctID, err := logID(in.ctKey.Public())
	if err != nil {
		return err
	}
	rekorPub := in.vs.RekorLogs()
	rekorLogs := map[string]*root.TransparencyLog{}
	for _, l := range rekorPub {
		id, err := logID(l.PublicKey)
		if err != nil {
			return err
		}
		// VirtualSigstore's ID is the hex string's bytes; a trusted_root.json holds the raw hash.
		rekorLogs[hex.EncodeToString(id)] = &root.TransparencyLog{
			BaseURL: l.BaseURL, ID: id, ValidityPeriodStart: now.Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: l.PublicKey, SignatureHashFunc: crypto.SHA256,
		}
	}
	ctLogs := map[string]*root.TransparencyLog{
		hex.EncodeToString(ctID): {
			BaseURL: "https://ctfe.localhost", ID: ctID, ValidityPeriodStart: now.Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: in.ctKey.Public(), SignatureHashFunc: crypto.SHA256,
		},
	}
	cas := []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root: in.trusted.root, Intermediates: []*x509.Certificate{in.trusted.intermediate},
		ValidityPeriodStart: now.Add(-5 * time.Hour), URI: "https://fulcio.localhost",
	}}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ctLogs,
		in.vs.TimestampingAuthorities(), rekorLogs)
	if err != nil {
		return err
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// sctList signs an RFC 6962 SCT over the certificate template's TBS (as issued without the
// SCT list) and returns the extension value carrying it.
func (in *instance) sctList(tbs []byte, issuer *x509.Certificate) ([]byte, error) {
	id, err := logID(in.ctKey.Public())
	if err != nil {
		return nil, err
	}
	issuerHash := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	ts := uint64(time.Now().UnixMilli())
	var in6962 bytes.Buffer
	in6962.Write([]byte{0, 0}) // v1, certificate_timestamp
	_ = binary.Write(&in6962, binary.BigEndian, ts)
	in6962.Write([]byte{0, 1}) // precert_entry
	in6962.Write(issuerHash[:])
	in6962.Write([]byte{byte(len(tbs) >> 16), byte(len(tbs) >> 8), byte(len(tbs))})
	in6962.Write(tbs)
	in6962.Write([]byte{0, 0}) // no extensions
	digest := sha256.Sum256(in6962.Bytes())
	sig, err := ecdsa.SignASN1(rand.Reader, in.ctKey, digest[:])
	if err != nil {
		return nil, err
	}
	var sct bytes.Buffer
	sct.WriteByte(0)
	sct.Write(id)
	_ = binary.Write(&sct, binary.BigEndian, ts)
	sct.Write([]byte{0, 0}) // no extensions
	sct.Write([]byte{4, 3}) // sha256, ecdsa
	_ = binary.Write(&sct, binary.BigEndian, uint16(len(sig)))
	sct.Write(sig)
	var list bytes.Buffer
	_ = binary.Write(&list, binary.BigEndian, uint16(sct.Len()+2))
	_ = binary.Write(&list, binary.BigEndian, uint16(sct.Len()))
	list.Write(sct.Bytes())
	return asn1.Marshal(list.Bytes())
}

// leaf issues a Fulcio-style code-signing certificate for identity/issuer with an SCT.
func (in *instance) leaf(f fulcio, identity, issuer string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerV2},
		},
	}
	if strings.Contains(identity, "://") {
		u, err := url.Parse(identity)
		if err != nil {
			return nil, nil, err
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{identity}
	}
	// The TBS without the SCT list is what the SCT signs (a verifier removes the extension).
	pre, err := x509.CreateCertificate(rand.Reader, tmpl, f.intermediate, key.Public(), f.key)
	if err != nil {
		return nil, nil, err
	}
	preCert, err := x509.ParseCertificate(pre)
	if err != nil {
		return nil, nil, err
	}
	sct, err := in.sctList(preCert.RawTBSCertificate, f.intermediate)
	if err != nil {
		return nil, nil, err
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions,
		pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: sct})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.intermediate, key.Public(), f.key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// statement is cosign 3's signature statement for digest.
func statement(digest string) ([]byte, error) {
	alg, hexPart, ok := strings.Cut(digest, ":")
	if !ok {
		return nil, fmt.Errorf("digest %q has no algorithm", digest)
	}
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{alg: hexPart}}},
		"predicateType": signPredicate,
		"predicate":     map[string]any{},
	})
}

func pae(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// bundleFor signs j and returns the bundle JSON.
func (in *instance) bundleFor(j job, subject name.Digest) ([]byte, error) {
	f := in.trusted
	if j.CA == "untrusted" {
		f = in.other
	}
	cert, key, err := in.leaf(f, j.Identity, j.Issuer)
	if err != nil {
		return nil, err
	}
	signs := j.Signs
	if signs == "" {
		signs = subject.DigestStr()
	}
	payload, err := statement(signs)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(pae(inToto, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		return nil, err
	}
	env := &dsse.Envelope{PayloadType: inToto, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
	integrated := time.Now().Unix()
	entry, err := in.vs.GenerateTlogEntry(cert, env, sig, integrated, true)
	if err != nil {
		return nil, err
	}
	tle, err := in.logEntry(entry, integrated)
	if err != nil {
		return nil, err
	}
	switch j.Tamper {
	case "payload":
		var st map[string]any
		_ = json.Unmarshal(payload, &st)
		st["predicate"] = map[string]any{"tampered": true}
		if payload, err = json.Marshal(st); err != nil {
			return nil, err
		}
	case "tlog-time":
		tle.IntegratedTime -= 60
	case "no-tlog", "":
	default:
		return nil, fmt.Errorf("unknown tamper %q", j.Tamper)
	}
	var entries []*protorekor.TransparencyLogEntry
	if j.Tamper != "no-tlog" {
		entries = []*protorekor.TransparencyLogEntry{tle}
	}
	pb := &protobundle.Bundle{
		MediaType: bundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{
				Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TlogEntries: entries,
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: inToto,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return (&bundle.Bundle{Bundle: pb}).MarshalJSON()
}

// logEntry is the Rekor entry as a bundle holds it: kind and version, the signed entry
// timestamp (inclusion promise) and the inclusion proof with its checkpoint.
func (in *instance) logEntry(entry *tlog.Entry, integrated int64) (*protorekor.TransparencyLogEntry, error) {
	tle := entry.TransparencyLogEntry()
	id, err := in.vs.RekorLogID()
	if err != nil {
		return nil, err
	}
	set, err := in.vs.RekorSignPayload(tlog.RekorPayload{
		Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: integrated,
		LogIndex: tle.LogIndex, LogID: id,
	})
	if err != nil {
		return nil, err
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}

// sign pushes j's bundle as a referrer of its image the way cosign 3 does, and returns the
// referrer manifest's digest.
func (in *instance) sign(j job, plainHTTP bool) (string, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	subject, err := name.NewDigest(j.Image, opts...)
	if err != nil {
		return "", err
	}
	b, err := in.bundleFor(j, subject)
	if err != nil {
		return "", err
	}
	if j.BundleOut != "" {
		if err := os.WriteFile(j.BundleOut, b, 0o644); err != nil {
			return "", err
		}
	}
	return pushReferrer(subject, b)
}
