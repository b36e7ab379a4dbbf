package testutil

import (
	"net/http"
	"testing"
)

func TestStartRegistry(t *testing.T) {
	r := StartRegistry(t)
	resp, err := http.Get("http://" + r.Host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %s", resp.Status)
	}
	r.Stop()
	if _, err := http.Get("http://" + r.Host + "/v2/"); err == nil {
		t.Fatal("registry still serving after Stop")
	}
}

func TestStartRegistryWithBasicAuth(t *testing.T) {
	r := StartRegistry(t, WithBasicAuth("ci", "s3cret"))
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"", "", http.StatusUnauthorized},
		{"ci", "wrong", http.StatusUnauthorized},
		{"ci", "s3cret", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+r.Host+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v2/ as %q/%q = %s, want %d", tc.user, tc.password, resp.Status, tc.want)
		}
	}
}

// TestStartRegistryDeletes: deletes are refused by default, as by
// distribution's registry out of the box, and allowed WithDeletes.
func TestStartRegistryDeletes(t *testing.T) {
	const blob = "/v2/x/blobs/sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	for name, tc := range map[string]struct {
		opts []RegistryOption
		want int
	}{
		"default":      {want: http.StatusMethodNotAllowed},
		"with deletes": {opts: []RegistryOption{WithDeletes()}, want: http.StatusNotFound}, // allowed, but there is no such blob
	} {
		t.Run(name, func(t *testing.T) {
			r := StartRegistry(t, tc.opts...)
			req, err := http.NewRequest(http.MethodDelete, "http://"+r.Host+blob, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("DELETE %s = %s, want %d", blob, resp.Status, tc.want)
			}
		})
	}
}
