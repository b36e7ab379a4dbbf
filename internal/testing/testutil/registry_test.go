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
