package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distro-registry/distro/internal/model"
)

// FuzzConsoleRequests sends arbitrary queries and form bodies to every
// console route: nothing panics, nothing answers 5xx, and no input comes
// back unescaped.
func FuzzConsoleRequests(f *testing.F) {
	for _, s := range [][3]string{
		{"\x00", "ns=public&group=DEFAULT_GROUP&name=demo", ""},
		{"\x01", "q=de&size=10&page=2&hideEmpty=on", ""},
		{"\x02", "name=demo&h=abc", ""},
		{"\x05", "", "ns=public&group=DEFAULT_GROUP&name=demo&ip=10.0.0.1&port=8080&cluster=DEFAULT&enabled=false"},
		{"\x06", "", "ns=public&group=DEFAULT_GROUP&name=demo&ip=10.0.0.1&port=8080&weight=2&metadata=%7B%22%3Czz%22%3A%22%3Czz%22%7D"},
		{"\x08", "", "name=demo&protectThreshold=0.5&metadata=a%3D%3Czz"},
		{"\x0b", "", "username=%3Czz&password=x&next=%2F%2Fevil"},
		{"\x03", "name=%3Czz%3E&ns=%3Czz", ""},
		{"\x04", "ns=public&name=demo&ip=%3Czz&port=99999999999&cluster=%3Czz", ""},
	} {
		f.Add([]byte(s[0])[0], s[1], s[2])
	}
	routes := []struct{ method, path string }{
		{"GET", "/ui/"}, {"GET", "/ui/services"}, {"GET", "/nacos/service"}, {"GET", "/ui/instance"}, {"GET", "/ui/instance/deregister"},
		{"POST", "/ui/instance/enabled"}, {"POST", "/nacos/instance"}, {"POST", "/ui/instance/deregister"}, {"POST", "/ui/service/edit"},
		{"GET", "/ui/service/edit"}, {"GET", "/ui/service/delete"}, {"POST", "/ui/login"}, {"GET", "/ui/cluster"},
	}
	e := newEnv(f, nil)
	e.register(key("demo"), model.Instance{IP: "10.0.0.1", Port: 8080, Metadata: map[string]string{"k": "v"}})
	f.Fuzz(func(t *testing.T, route byte, query, body string) {
		rt := routes[int(route)%len(routes)]
		target := rt.path
		if query != "" {
			target += "?" + strings.NewReplacer("#", "", " ", "+", "\n", "", "\r", "").Replace(query)
		}
		var req *http.Request
		func() {
			defer func() {
				if recover() != nil {
					req = nil // httptest.NewRequest panics on a target no client could send
				}
			}()
			req = httptest.NewRequest(rt.method, target, strings.NewReader(body))
		}()
		if req == nil {
			return
		}
		if rt.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		if route&0x80 != 0 {
			req.Header.Set("HX-Request", "true")
		}
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with body %q answered %d: %s", rt.method, target, body, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "<zz") {
			t.Fatalf("%s %s with body %q echoed input unescaped:\n%s", rt.method, target, body, rec.Body.String())
		}
	})
}
