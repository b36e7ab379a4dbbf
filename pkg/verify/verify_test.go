package verify

import (
	"context"
	"errors"
	"testing"
)

func TestSignVerifyLayout(t *testing.T) {
	ctx := context.Background()
	for _, format := range []Format{FormatBundle, FormatLegacy} {
		t.Run(string(format), func(t *testing.T) {
			s, name := newLayout(t)
			desc := pushArtifact(t, s, "a", "v1")
			k := newTestKey(t)
			sign(t, s, name, desc, k.priv, SignOptions{Format: format})
			pol, err := KeyPolicy(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := NewVerifier(pol, VerifierOptions{}).VerifyArtifact(ctx, s, Subject{Name: name, Descriptor: desc})
			if err != nil {
				t.Fatalf("VerifyArtifact: %v", err)
			}
			if rep.Decision != DecisionAllow {
				t.Errorf("decision %s, want allow: %+v", rep.Decision, rep)
			}
			t.Logf("%+v", rep)

			other := newTestKey(t)
			pol2, _ := KeyPolicy(other.pub)
			rep, err = NewVerifier(pol2, VerifierOptions{}).VerifyArtifact(ctx, s, Subject{Name: name, Descriptor: desc})
			var denial *DenialError
			if !errors.As(err, &denial) {
				t.Fatalf("wrong key: err = %v, want a denial", err)
			}
			t.Logf("%v", err)
		})
	}
}
