// Command referrers-registry serves go-containerregistry's in-memory registry with the OCI 1.1
// Referrers API switched on, on 127.0.0.1. Debian's CNCF distribution 2.8 has no Referrers API;
// ferry's signature tests use this one for the registries that do.
// It prints "listening on ADDR" once the socket is bound (the same line distribution prints).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	// Request logs are discarded: tests read stderr only for the listening line.
	quiet := log.New(io.Discard, "", 0)
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(quiet))
	log.Fatal(http.Serve(ln, h))
}
