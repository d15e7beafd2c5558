// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 at the
// version kubeadm asks for. images/components/build.sh copies this file into a
// generated wrapper module (etcd's own main module cannot be `go install`ed:
// its go.mod has replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
