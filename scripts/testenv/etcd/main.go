// etcd for the test control plane: the etcd server of the release pinned in versions.env,
// built from go.etcd.io/etcd/server/v3 (its own main package lives in a module of its own).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
