// The registry command of distribution (github.com/distribution/distribution/v3),
// as its cmd/registry/main.go, with only the storage drivers a node uses: the
// filesystem (and in-memory) ones. Upstream's command also links the Azure,
// GCS and S3 drivers and the CloudFront middleware, which double its size
// (56 MB against 25 MB). images/runtime/build.sh builds this file inside a
// copy of distribution's module tree, with its go.mod and go.sum.
package main

import (
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	// As upstream's: the serve and garbage-collect commands exit non-zero
	// themselves when they fail.
	// nolint:errcheck
	registry.RootCmd.Execute()
}
