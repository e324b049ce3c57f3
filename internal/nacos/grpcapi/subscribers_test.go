package grpcapi

import "testing"

func TestSubscribers(t *testing.T) {
	ts := newTestServer(t)
	if got := ts.Subscribers(demoKey); len(got) != 0 {
		t.Fatalf("subscribers before any subscribe: %+v", got)
	}
	a, b := connect(t, ts.addr), connect(t, ts.addr)
	a.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	a.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "c1", true))
	b.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", true))
	b.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("other", "", true))
	got := ts.Subscribers(demoKey)
	if len(got) != 3 {
		t.Fatalf("subscribers = %+v; want 3", got)
	}
	for i, s := range got {
		if s.ClientVersion != "test" || s.RemoteAddr == "" || (s.ConnID != a.connID && s.ConnID != b.connID) {
			t.Fatalf("subscriber %d = %+v", i, s)
		}
		if i > 0 && got[i-1].ConnID > s.ConnID {
			t.Fatalf("not sorted by connection: %+v", got)
		}
	}
	b.mustOK(TypeSubscribeServiceRequest, TypeSubscribeServiceResponse, subscribeBody("demo", "", false))
	if got := ts.Subscribers(demoKey); len(got) != 2 || got[0].ConnID != a.connID || got[1].ConnID != a.connID {
		t.Fatalf("after b unsubscribed: %+v", got)
	}
}
