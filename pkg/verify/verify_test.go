package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"

	"github.com/bpfd-dev/bpfd/pkg/progtype"
)

// parsePolicy parses a policy whose key paths name the shared test keys as
// k0.pub, k1.pub...; a trusted root as root.json if ca is set.
func parsePolicy(t *testing.T, ca *testCA, text string) *Policy {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		if strings.Contains(text, fmt.Sprintf("k%d.pub", i)) {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("k%d.pub", i)), key(t, i).pub.PEM())
		}
	}
	if ca != nil {
		writeFile(t, filepath.Join(dir, "root.json"), mustRead(t, ca.trustedRoot))
	}
	p, err := ParsePolicy([]byte("apiVersion: bpfd.io/v1alpha1\nkind: TrustPolicy\n"+text), ParseOptions{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome is what the tests compare: the decision, the denial reason and
// each signature's format, validity and reason.
type outcome struct {
	Decision   Decision
	Reason     Reason
	Signatures []string
}

func verifyOutcome(t *testing.T, pol *Policy, src Source, subject Subject) (outcome, *Report) {
	t.Helper()
	rep, err := NewVerifier(pol, VerifierOptions{}).VerifyArtifact(context.Background(), src, subject)
	var denial *DenialError
	switch {
	case errors.As(err, &denial):
		if denial.Report != rep || denial.Reason != rep.Reason || rep.Decision != DecisionDeny {
			t.Errorf("denial %+v does not match its report %+v", denial, rep)
		}
	case err != nil:
		t.Fatalf("VerifyArtifact: %v", err)
	case rep.Decision == DecisionDeny:
		t.Fatalf("report says deny but no DenialError: %+v", rep)
	}
	o := outcome{Decision: rep.Decision, Reason: rep.Reason}
	for _, s := range rep.Signatures {
		v := "valid"
		if !s.Valid {
			v = string(s.Reason)
		}
		o.Signatures = append(o.Signatures, string(s.Format)+" "+v)
	}
	t.Logf("report: decision %s reason %s findings %+v", rep.Decision, rep.Reason, rep.Findings)
	return o, rep
}

func checkOutcome(t *testing.T, want, got outcome) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
}

// layoutWithArtifact returns a layout holding one tagged artifact.
func layoutWithArtifact(t *testing.T, body string) (*oci.Store, Subject) {
	t.Helper()
	s, name := newLayout(t)
	desc := pushArtifact(t, s, body, "v1")
	return s, Subject{Name: name, Descriptor: desc}
}

const anyKey0 = "rules:\n- name: any\n  images: ['**']\n  authorities: [{key: {path: k0.pub}}]\n"

func TestVerifyFormats(t *testing.T) {
	pol := parsePolicy(t, nil, anyKey0)
	for _, format := range []Format{FormatBundle, FormatLegacy} {
		t.Run(string(format), func(t *testing.T) {
			s, subj := layoutWithArtifact(t, "a")
			sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{Format: format})
			got, rep := verifyOutcome(t, pol, s, subj)
			checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{string(format) + " valid"}}, got)
			if rep.Signatures[0].Key != key(t, 0).pub.Fingerprint() || rep.Rule != "any" || rep.Policy != pol.Fingerprint() {
				t.Errorf("report %+v does not name the key, rule and policy", rep)
			}
		})
	}
}

// TestVerifyLegacyAppends signs one artifact twice in the legacy format with
// two keys: both signatures stay in the ".sig" manifest.
func TestVerifyLegacyAppends(t *testing.T) {
	s, subj := layoutWithArtifact(t, "a")
	sign(t, s, subj.Name, subj.Descriptor, key(t, 1).priv, SignOptions{Format: FormatLegacy})
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{Format: FormatLegacy})
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{Format: FormatBundle})
	got, _ := verifyOutcome(t, parsePolicy(t, nil, anyKey0), s, subj)
	checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid", "legacy untrusted-key", "legacy valid"}}, got)
}

// TestVerifyReplay copies a valid signature of artifact A onto artifact B:
// denied in both formats, because the signed digest is A's.
func TestVerifyReplay(t *testing.T) {
	ctx := context.Background()
	pol := parsePolicy(t, nil, anyKey0)
	for _, format := range []Format{FormatBundle, FormatLegacy} {
		t.Run(string(format), func(t *testing.T) {
			s, a := layoutWithArtifact(t, "a")
			b := Subject{Name: a.Name, Descriptor: pushArtifact(t, s, "b", "")}
			sigDesc := sign(t, s, a.Name, a.Descriptor, key(t, 0).priv, SignOptions{Format: format})
			raw, err := content.FetchAll(ctx, s, sigDesc)
			if err != nil {
				t.Fatal(err)
			}
			if format == FormatLegacy {
				// The same ".sig" manifest, tagged for B.
				if err := s.Tag(ctx, sigDesc, LegacySignatureTag(b.Descriptor.Digest)); err != nil {
					t.Fatal(err)
				}
			} else {
				// A's bundle layer in a referrer manifest whose subject is B.
				var m ocispec.Manifest
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				m.Subject = &ocispec.Descriptor{MediaType: b.Descriptor.MediaType, Digest: b.Descriptor.Digest, Size: b.Descriptor.Size}
				pushManifest(t, s, m, "")
			}
			got, rep := verifyOutcome(t, pol, s, b)
			checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonDigestMismatch, Signatures: []string{string(format) + " digest-mismatch"}}, got)
			if !strings.Contains(rep.Signatures[0].Detail, a.Descriptor.Digest.String()) {
				t.Errorf("detail %q does not name the signed digest", rep.Signatures[0].Detail)
			}
			// A itself still verifies.
			got, _ = verifyOutcome(t, pol, s, a)
			checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{string(format) + " valid"}}, got)
		})
	}
}

// TestVerifyTagMoved signs the digest a tag named, then moves the tag to new
// content: the tag's new digest is unsigned, the signed digest still verifies.
func TestVerifyTagMoved(t *testing.T) {
	ctx := context.Background()
	pol := parsePolicy(t, nil, anyKey0)
	s, signed := layoutWithArtifact(t, "a")
	sign(t, s, signed.Name, signed.Descriptor, key(t, 0).priv, SignOptions{})
	pushArtifact(t, s, "evil", "v1")
	moved, err := s.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := verifyOutcome(t, pol, s, Subject{Name: signed.Name, Descriptor: moved})
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonUnsigned, Signatures: nil}, got)
	got, _ = verifyOutcome(t, pol, s, signed)
	checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}}, got)
}

func TestVerifyScope(t *testing.T) {
	s, subj := layoutWithArtifact(t, "a")
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{})
	cases := map[string]struct {
		policy string
		want   outcome
	}{
		"no rule covers the image": {
			policy: "rules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k0.pub}}]\n",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonOutOfScope, Signatures: []string{"bundle out-of-scope"}},
		},
		"signer trusted for other images": {
			policy: "rules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k0.pub}}]\n- name: rest\n  images: ['**']\n  authorities: [{key: {path: k1.pub}}]\n",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonOutOfScope, Signatures: []string{"bundle out-of-scope"}},
		},
		"signer trusted nowhere": {
			policy: "rules:\n- name: rest\n  images: ['**']\n  authorities: [{key: {path: k1.pub}}]\n",
			want:   outcome{Decision: DecisionDeny, Reason: ReasonUntrustedKey, Signatures: []string{"bundle untrusted-key"}},
		},
		"default allow-unsigned": {
			policy: "default: allow-unsigned\nrules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k1.pub}}]\n",
			want:   outcome{Decision: DecisionAllowUnsigned, Signatures: []string{"bundle untrusted-key"}},
		},
		"first matching rule governs": {
			policy: "rules:\n- name: first\n  images: ['oci:**']\n  authorities: [{key: {path: k0.pub}}]\n- name: second\n  images: ['**']\n  authorities: [{key: {path: k1.pub}}]\n",
			want:   outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, _ := verifyOutcome(t, parsePolicy(t, nil, tc.policy), s, subj)
			checkOutcome(t, tc.want, got)
		})
	}
}

// TestVerifyDenialExplains checks what a denial says when the signer is
// trusted by a rule that does not govern the image: by a later rule that an
// earlier, narrower one outranks (first match), or by a rule for other
// images. A signature that does not count names no authority.
func TestVerifyDenialExplains(t *testing.T) {
	s, subj := layoutWithArtifact(t, "a")
	sign(t, s, subj.Name, subj.Descriptor, key(t, 1).priv, SignOptions{})
	fp := key(t, 1).pub.Fingerprint()
	cases := map[string]struct {
		policy string
		want   string
	}{
		"earlier, narrower rule outranks the one trusting the signer": {
			policy: "rules:\n- name: narrow\n  images: ['" + subj.Name + "']\n  authorities: [{key: {path: k0.pub}}]\n- name: wide\n  images: ['oci:**']\n  authorities: [{key: {path: k1.pub}}]\n",
			want: "signed by key " + fp + " (k1.pub), which the later rule \"wide\" trusts; rule \"narrow\" governs " + subj.Name +
				" (the first rule whose images match it: " + subj.Name + ") and does not trust this signer",
		},
		"signer trusted for other images": {
			policy: "rules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k1.pub}}]\n- name: rest\n  images: ['oci:/**']\n  authorities: [{key: {path: k0.pub}}]\n",
			want: "signed by key " + fp + " (k1.pub), which only rule \"net\" trusts, for other images (registry.example.com/net/*); rule \"rest\" governs " + subj.Name +
				" (the first rule whose images match it: oci:/**) and does not trust this signer",
		},
		"no rule covers the image": {
			policy: "rules:\n- name: net\n  images: ['registry.example.com/net/*']\n  authorities: [{key: {path: k1.pub}}]\n",
			want:   "signed by key " + fp + " (k1.pub), which only rule \"net\" trusts, for other images (registry.example.com/net/*); no rule covers " + subj.Name,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pol := parsePolicy(t, nil, tc.policy)
			got, rep := verifyOutcome(t, pol, s, subj)
			checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonOutOfScope, Signatures: []string{"bundle out-of-scope"}}, got)
			sig := rep.Signatures[0]
			// The key file's directory differs per test: compare from the key's name on.
			detail := strings.Replace(sig.Detail, filepath.Dir(strings.SplitN(strings.SplitN(sig.Detail, "(", 2)[1], ")", 2)[0])+"/", "", 1)
			if detail != tc.want {
				t.Errorf("detail\n\t%s\nwant\n\t%s", detail, tc.want)
			}
			if sig.Authority != "" || sig.Key != fp {
				t.Errorf("denied signature: authority %q (want none), key %q (want %s)", sig.Authority, sig.Key, fp)
			}
			if rep.Rule != "" && rep.Findings[0].Detail != sig.Detail {
				t.Errorf("the denial says %q, not the signature's detail", rep.Findings[0].Detail)
			}
		})
	}
}

func TestVerifyModesAndLocalFiles(t *testing.T) {
	local := Subject{Name: "file:/opt/bpf/xdp.bpf.o", Descriptor: ocispec.Descriptor{Digest: digest.FromString("elf")}}
	s, unsigned := layoutWithArtifact(t, "a")
	cases := map[string]struct {
		policy  string
		subject Subject
		want    outcome
		logged  string
	}{
		"unsigned image, enforce": {
			policy: anyKey0, subject: unsigned,
			want: outcome{Decision: DecisionDeny, Reason: ReasonUnsigned},
		},
		"unsigned image, warn": {
			policy: anyKey0 + "  mode: warn\n", subject: unsigned,
			want:   outcome{Decision: DecisionWarn, Reason: ReasonUnsigned},
			logged: "warn mode",
		},
		"default allow-unsigned is logged": {
			policy: "default: allow-unsigned\nrules: []\n", subject: unsigned,
			want:   outcome{Decision: DecisionAllowUnsigned},
			logged: "allow-unsigned",
		},
		"local file under an enforcing rule": {
			policy: anyKey0, subject: local,
			want: outcome{Decision: DecisionDeny, Reason: ReasonUnsigned},
		},
		"local file under a warning rule": {
			policy: anyKey0 + "  mode: warn\n", subject: local,
			want:   outcome{Decision: DecisionWarn, Reason: ReasonUnsigned},
			logged: "warn mode",
		},
		"local file allowed unsigned": {
			policy: "rules:\n- name: local\n  images: ['file:/opt/bpf/**']\n  allowUnsigned: true\n" + strings.TrimPrefix(anyKey0, "rules:\n"), subject: local,
			want: outcome{Decision: DecisionAllowUnsigned},
		},
		"local file and default allow-unsigned": {
			policy: "default: allow-unsigned\nrules: []\n", subject: local,
			want: outcome{Decision: DecisionDeny, Reason: ReasonOutOfScope},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			v := NewVerifier(parsePolicy(t, nil, tc.policy), VerifierOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			rep, err := v.VerifyArtifact(context.Background(), s, tc.subject)
			var denial *DenialError
			if err != nil && !errors.As(err, &denial) {
				t.Fatal(err)
			}
			checkOutcome(t, tc.want, outcome{Decision: rep.Decision, Reason: rep.Reason})
			if tc.logged != "" && !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log %q does not mention %q", logs.String(), tc.logged)
			}
			if tc.logged == "" && logs.Len() > 0 {
				t.Errorf("unexpected log: %s", logs.String())
			}
		})
	}
}

func TestVerifyThreshold(t *testing.T) {
	policy := "rules:\n- name: two\n  images: ['**']\n  threshold: 2\n  authorities:\n  - key: {path: k0.pub}\n  - key: {path: k1.pub}\n  allow: {programTypes: [tracepoint, kprobe]}\n"
	pol := parsePolicy(t, nil, policy)
	s, subj := layoutWithArtifact(t, "a")
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{})
	sign(t, s, subj.Name, subj.Descriptor, key(t, 0).priv, SignOptions{Format: FormatLegacy})
	got, _ := verifyOutcome(t, pol, s, subj)
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonThresholdNotMet, Signatures: []string{"bundle valid", "legacy valid"}}, got)

	sign(t, s, subj.Name, subj.Descriptor, key(t, 2).priv, SignOptions{Format: FormatLegacy})
	got, _ = verifyOutcome(t, pol, s, subj)
	checkOutcome(t, outcome{Decision: DecisionDeny, Reason: ReasonThresholdNotMet, Signatures: []string{"bundle valid", "legacy valid", "legacy untrusted-key"}}, got)

	sign(t, s, subj.Name, subj.Descriptor, key(t, 1).priv, SignOptions{Format: FormatLegacy})
	got, rep := verifyOutcome(t, pol, s, subj)
	checkOutcome(t, outcome{Decision: DecisionAllow, Signatures: []string{"bundle valid", "legacy valid", "legacy untrusted-key", "legacy valid"}}, got)
	if diff := cmp.Diff([]progtype.Kind{progtype.Tracepoint, progtype.Kprobe}, rep.AllowedProgramTypes); diff != "" {
		t.Errorf("allowed program types (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{key(t, 0).pub.Fingerprint(), key(t, 1).pub.Fingerprint()}, rep.Signers()); diff != "" {
		t.Errorf("signers (-want +got):\n%s", diff)
	}
}

// TestVerifyBadSignatures stores broken signatures of every kind next to an
// artifact: each is reported with its reason, and nothing crashes.
func TestVerifyBadSignatures(t *testing.T) {
	ctx := context.Background()
	pol := parsePolicy(t, nil, anyKey0)
	k0 := key(t, 0)

	cases := map[string]struct {
		// store writes the bad signature(s) for subj into s.
		store func(t *testing.T, s *oci.Store, subj Subject)
		want  outcome
	}{
		"legacy payload is garbage": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				pushLegacy(t, s, subj, blob{SimpleSigningMediaType, []byte("\x00garbage"), map[string]string{AnnotationSignature: "MEUCIQ=="}})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"legacy unreadable-signature"}},
		},
		"legacy layer without signature": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				payload, _ := legacyPayload(subj.Name, subj.Descriptor.Digest)
				pushLegacy(t, s, subj, blob{SimpleSigningMediaType, payload, nil})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"legacy unreadable-signature"}},
		},
		"legacy layer of another media type": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				pushLegacy(t, s, subj, blob{"application/octet-stream", []byte("x"), nil})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"legacy unreadable-signature"}},
		},
		"legacy signature manifest corrupted": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				desc := sign(t, s, subj.Name, subj.Descriptor, k0.priv, SignOptions{Format: FormatLegacy})
				corruptBlob(t, subj, desc)
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"legacy unreadable-signature"}},
		},
		"legacy payload tampered": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				other := pushArtifact(t, s, "other", "")
				payload, _ := legacyPayload(subj.Name, other.Digest)
				sig, _ := k0.priv.sign(payload)
				forged, _ := legacyPayload(subj.Name, subj.Descriptor.Digest)
				pushLegacy(t, s, subj, blob{SimpleSigningMediaType, forged, map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}})
			},
			want: outcome{DecisionDeny, ReasonUntrustedKey, []string{"legacy untrusted-key"}},
		},
		"bundle layer is garbage": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				pushReferrer(t, s, subj, BundleMediaType, blob{BundleMediaType, []byte("{\"mediaType\": 7"), nil})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"bundle unreadable-signature"}},
		},
		"bundle layer truncated": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				desc := sign(t, s, subj.Name, subj.Descriptor, k0.priv, SignOptions{})
				layer := manifestOf(t, s, desc).Layers[0]
				truncateBlob(t, subj, layer)
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"bundle unreadable-signature"}},
		},
		"legacy payload truncated": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				desc := sign(t, s, subj.Name, subj.Descriptor, k0.priv, SignOptions{Format: FormatLegacy})
				truncateBlob(t, subj, manifestOf(t, s, desc).Layers[0])
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"legacy unreadable-signature"}},
		},
		"bundle layer with the wrong media type": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				data, err := makeBundle(k0.priv, nil, subj.Descriptor.Digest)
				if err != nil {
					t.Fatal(err)
				}
				pushReferrer(t, s, subj, BundleMediaType, blob{"application/json", data, nil})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"bundle unreadable-signature"}},
		},
		"bundle with a media type of no bundle version": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				data, err := makeBundle(k0.priv, nil, subj.Descriptor.Digest)
				if err != nil {
					t.Fatal(err)
				}
				data = bytes.Replace(data, []byte(BundleMediaType), []byte("application/vnd.dev.sigstore.bundle.v9+json"), 1)
				pushReferrer(t, s, subj, BundleMediaType, blob{BundleMediaType, data, nil})
			},
			want: outcome{DecisionDeny, ReasonUnreadableSignature, []string{"bundle unreadable-signature"}},
		},
		"bundle signature corrupted": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				data, err := makeBundle(k0.priv, nil, subj.Descriptor.Digest)
				if err != nil {
					t.Fatal(err)
				}
				var b map[string]any
				if err := json.Unmarshal(data, &b); err != nil {
					t.Fatal(err)
				}
				env := b["dsseEnvelope"].(map[string]any)
				env["signatures"] = []any{map[string]any{"sig": base64.StdEncoding.EncodeToString([]byte("not a signature"))}}
				data, _ = json.Marshal(b)
				pushReferrer(t, s, subj, BundleMediaType, blob{BundleMediaType, data, nil})
			},
			want: outcome{DecisionDeny, ReasonSignatureInvalid, []string{"bundle signature-invalid"}},
		},
		"other referrers are not signatures": {
			store: func(t *testing.T, s *oci.Store, subj Subject) {
				pushReferrer(t, s, subj, "application/spdx+json", blob{"application/spdx+json", []byte("{}"), nil})
				data, err := makeBundle(k0.priv, nil, subj.Descriptor.Digest)
				if err != nil {
					t.Fatal(err)
				}
				m := referrerManifest(t, s, subj, BundleMediaType, blob{BundleMediaType, data, nil})
				m.Annotations = map[string]string{AnnotationBundlePredicateType: "https://slsa.dev/provenance/v1"}
				pushManifest(t, s, m, "")
			},
			want: outcome{DecisionDeny, ReasonUnsigned, nil},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, subj := layoutWithArtifact(t, "a")
			tc.store(t, s, subj)
			got, _ := verifyOutcome(t, pol, s, subj)
			checkOutcome(t, tc.want, got)

			// A valid signature next to the bad ones is enough.
			sign(t, s, subj.Name, subj.Descriptor, k0.priv, SignOptions{Format: FormatBundle})
			if rep, err := NewVerifier(pol, VerifierOptions{}).VerifyArtifact(ctx, s, subj); err != nil || rep.Decision != DecisionAllow {
				t.Errorf("with a valid signature added: %v %+v", err, rep)
			}
		})
	}
}

// TestVerifyManySignatures stores 50 signatures by untrusted keys, in both
// formats, with and without one valid among them.
func TestVerifyManySignatures(t *testing.T) {
	pol := parsePolicy(t, nil, anyKey0)
	for _, withValid := range []bool{false, true} {
		t.Run(fmt.Sprintf("valid=%t", withValid), func(t *testing.T) {
			s, subj := layoutWithArtifact(t, "a")
			for i := 0; i < 50; i++ {
				k := key(t, 1+i%2)
				if withValid && i == 37 {
					k = key(t, 0)
				}
				format := FormatBundle
				if i%2 == 0 {
					format = FormatLegacy
				}
				sign(t, s, subj.Name, subj.Descriptor, k.priv, SignOptions{Format: format})
			}
			start := time.Now()
			got, _ := verifyOutcome(t, pol, s, subj)
			t.Logf("verified 50 signatures in %s", time.Since(start))
			want := DecisionDeny
			if withValid {
				want = DecisionAllow
			}
			if got.Decision != want || len(got.Signatures) != 50 {
				t.Errorf("decision %s with %d signatures, want %s with 50", got.Decision, len(got.Signatures), want)
			}
		})
	}
}

// TestSignRefusesGarbage checks that signing does not replace a ".sig"
// manifest it cannot read, which would drop the signatures it holds.
func TestSignRefusesGarbage(t *testing.T) {
	ctx := context.Background()
	s, subj := layoutWithArtifact(t, "a")
	desc := sign(t, s, subj.Name, subj.Descriptor, key(t, 1).priv, SignOptions{Format: FormatLegacy})
	corruptBlob(t, subj, desc)
	tag := LegacySignatureTag(subj.Descriptor.Digest)
	if _, err := Sign(ctx, s, subj, key(t, 0).priv, SignOptions{Format: FormatLegacy}); err == nil {
		t.Fatal("Sign replaced an unreadable signature manifest")
	}
	if got, err := s.Resolve(ctx, tag); err != nil || got.Digest != desc.Digest {
		t.Errorf("tag %s moved to %v (%v)", tag, got.Digest, err)
	}
}

// blob is content to push: media type, bytes, annotations.
type blob struct {
	mediaType   string
	data        []byte
	annotations map[string]string
}

func pushBlob(t *testing.T, s *oci.Store, b blob) ocispec.Descriptor {
	t.Helper()
	desc := content.NewDescriptorFromBytes(b.mediaType, b.data)
	if err := pushIfMissing(context.Background(), s, desc, b.data); err != nil {
		t.Fatal(err)
	}
	desc.Annotations = b.annotations
	return desc
}

func pushManifest(t *testing.T, s *oci.Store, m ocispec.Manifest, tag string) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc := pushBlob(t, s, blob{ocispec.MediaTypeImageManifest, data, nil})
	if tag != "" {
		if err := s.Tag(context.Background(), desc, tag); err != nil {
			t.Fatal(err)
		}
	}
	return desc
}

// pushLegacy stores layers as subj's ".sig" manifest.
func pushLegacy(t *testing.T, s *oci.Store, subj Subject, layers ...blob) {
	t.Helper()
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range layers {
		m.Layers = append(m.Layers, pushBlob(t, s, l))
	}
	config, _ := legacyConfigFor(m.Layers)
	m.Config = pushBlob(t, s, blob{ocispec.MediaTypeImageConfig, config, nil})
	pushManifest(t, s, m, LegacySignatureTag(subj.Descriptor.Digest))
}

// referrerManifest returns a referrer manifest of subj holding layers.
func referrerManifest(t *testing.T, s *oci.Store, subj Subject, artifactType string, layers ...blob) ocispec.Manifest {
	t.Helper()
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       pushBlob(t, s, blob{ocispec.MediaTypeEmptyJSON, []byte("{}"), nil}),
		Subject:      &ocispec.Descriptor{MediaType: subj.Descriptor.MediaType, Digest: subj.Descriptor.Digest, Size: subj.Descriptor.Size},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, pushBlob(t, s, l))
	}
	return m
}

func pushReferrer(t *testing.T, s *oci.Store, subj Subject, artifactType string, layers ...blob) {
	t.Helper()
	pushManifest(t, s, referrerManifest(t, s, subj, artifactType, layers...), "")
}

func manifestOf(t *testing.T, s *oci.Store, desc ocispec.Descriptor) ocispec.Manifest {
	t.Helper()
	raw, err := content.FetchAll(context.Background(), s, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// corruptBlob overwrites the copy of desc in the layout subj lives in with
// as many bytes of garbage.
func corruptBlob(t *testing.T, subj Subject, desc ocispec.Descriptor) {
	t.Helper()
	path := filepath.Join(strings.TrimPrefix(subj.Name, "oci:"), "blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded())
	writeFile(t, path, bytes.Repeat([]byte{'{'}, int(desc.Size)))
}

// truncateBlob cuts the copy of desc in the layout subj lives in in half.
func truncateBlob(t *testing.T, subj Subject, desc ocispec.Descriptor) {
	t.Helper()
	path := filepath.Join(strings.TrimPrefix(subj.Name, "oci:"), "blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded())
	if err := os.Truncate(path, desc.Size/2); err != nil {
		t.Fatal(err)
	}
}
