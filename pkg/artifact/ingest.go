package artifact

import (
	"os"
	"path/filepath"
)

// removeEmptyIngest removes the ingest/ directory oras-go's OCI store leaves
// in a layout it wrote to, when it is empty: it is no part of the OCI image
// layout, and every blob went from it to blobs/. A non-empty one (a push
// under way elsewhere) stays.
func removeEmptyIngest(layout string) {
	os.Remove(filepath.Join(layout, "ingest")) // fails, harmlessly, unless it is an empty directory
}
