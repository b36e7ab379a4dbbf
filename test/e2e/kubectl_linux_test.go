package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectl runs envtest's kubectl (bin/k8s, `make tools`) against the API
// server as kubeconfig's user and returns its output; an error fails t.
func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(testEnv.Assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// getTable runs `kubectl get` with args and returns its tables (one per
// kind of object) as rows of column header to value, the NAME column being
// the object's kind/name. It logs the output, as an administrator would
// read it.
func getTable(t *testing.T, kubeconfig string, args ...string) []map[string]string {
	t.Helper()
	out := kubectl(t, kubeconfig, append([]string{"get"}, args...)...)
	t.Logf("kubectl get %s:\n%s", strings.Join(args, " "), out)
	var rows []map[string]string
	for _, table := range strings.Split(strings.TrimSpace(out), "\n\n") {
		lines := strings.Split(table, "\n")
		cols := columns(lines[0])
		for _, line := range lines[1:] {
			row := map[string]string{}
			for i, c := range cols {
				end := len(line)
				if i+1 < len(cols) {
					end = min(cols[i+1].start, len(line))
				}
				row[c.name] = strings.TrimSpace(line[min(c.start, end):end])
			}
			rows = append(rows, row)
		}
	}
	return rows
}

type column struct {
	name  string
	start int
}

// columns returns the columns of a header line of kubectl's table, whose
// values start where their header does.
func columns(header string) []column {
	var cols []column
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		end := strings.IndexByte(header[i:], ' ')
		if end < 0 {
			end = len(header) - i
		}
		cols = append(cols, column{name: header[i : i+end], start: i})
		i += end
	}
	return cols
}

// row returns the row of rows whose NAME is name, without its AGE; it fails
// t when there is none.
func row(t *testing.T, rows []map[string]string, name string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r["NAME"] == name {
			delete(r, "AGE")
			return r
		}
	}
	t.Fatalf("kubectl get shows no %s", name)
	return nil
}
