package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/distro-registry/distro/internal/client"
)

func ExampleClient_ListInstances() {
	// A stand-in for a distro server; use your servers' HTTP addresses.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"name":"DEFAULT_GROUP@@orders","clusters":"","hosts":[
			{"ip":"10.0.0.7","port":8080,"weight":1,"healthy":true,"enabled":true,"clusterName":"DEFAULT"}]}`)
	}))
	defer srv.Close()

	c, err := client.New([]string{strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		log.Fatal(err)
	}
	info, err := c.ListInstances(context.Background(), "orders", "", nil, false)
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range info.Hosts {
		fmt.Printf("%s:%d healthy=%t\n", h.IP, h.Port, h.Healthy)
	}
	// Output: 10.0.0.7:8080 healthy=true
}
