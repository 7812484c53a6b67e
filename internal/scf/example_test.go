package scf_test

import (
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"carbroker/internal/scf"
)

func Example() {
	api := http.NewServeMux() // the application's handler
	src := func() (http.Handler, error) { return api, nil }

	if port, ok := scf.Port(os.Getenv); ok { // an event function (Go1 runtime)
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
		if err != nil {
			log.Fatal(err)
		}
		log.Fatal(scf.Serve(ln, src))
	}
	// A web function: plain HTTP on port 9000 behind the platform's proxy.
	log.Fatal(http.ListenAndServe("0.0.0.0:9000", scf.WebFunction(api, func(peer string) bool { return strings.HasPrefix(peer, "127.0.0.1:") })))
}
