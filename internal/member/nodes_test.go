package member

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNodesJSON(t *testing.T) {
	contact := time.UnixMilli(1708589254539)
	members := []MemberStatus{
		{Address: "127.0.0.1:8858", State: StateDown, LastError: "dial tcp 127.0.0.1:8858: connect: connection refused", FailCount: 1},
		{Address: "127.0.0.1:8848", State: StateUp, LastContact: contact},
		{Address: "[::1]:8848", State: StateSuspicious},
		{Address: "node-a.svc:9000", State: StateUp, LastContact: contact},
	}
	tests := []struct {
		keyword string
		want    string
	}{
		{"", `{"code":200,"message":null,"data":[` +
			`{"ip":"127.0.0.1","port":8848,"state":"UP","extendInfo":{"lastRefreshTime":1708589254539},"address":"127.0.0.1:8848","failAccessCnt":0,"abilities":{}},` +
			`{"ip":"127.0.0.1","port":8858,"state":"DOWN","extendInfo":{"lastError":"dial tcp 127.0.0.1:8858: connect: connection refused"},"address":"127.0.0.1:8858","failAccessCnt":1,"abilities":{}},` +
			`{"ip":"::1","port":8848,"state":"SUSPICIOUS","extendInfo":{},"address":"[::1]:8848","failAccessCnt":0,"abilities":{}},` +
			`{"ip":"node-a.svc","port":9000,"state":"UP","extendInfo":{"lastRefreshTime":1708589254539},"address":"node-a.svc:9000","failAccessCnt":0,"abilities":{}}]}`},
		{"127.0.0.1:8858", `{"code":200,"message":null,"data":[` +
			`{"ip":"127.0.0.1","port":8858,"state":"DOWN","extendInfo":{"lastError":"dial tcp 127.0.0.1:8858: connect: connection refused"},"address":"127.0.0.1:8858","failAccessCnt":1,"abilities":{}}]}`},
		{"node", `{"code":200,"message":null,"data":[` +
			`{"ip":"node-a.svc","port":9000,"state":"UP","extendInfo":{"lastRefreshTime":1708589254539},"address":"node-a.svc:9000","failAccessCnt":0,"abilities":{}}]}`},
		// Prefix, as in Nacos: "8848" is in three addresses but starts none.
		{"8848", `{"code":200,"message":null,"data":[]}`},
		{"10.", `{"code":200,"message":null,"data":[]}`},
	}
	for _, tt := range tests {
		got, err := NodesJSON(members, tt.keyword)
		if err != nil {
			t.Fatalf("keyword %q: %v", tt.keyword, err)
		}
		if string(got) != tt.want {
			t.Errorf("keyword %q:\n got %s\nwant %s", tt.keyword, got, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("keyword %q: invalid JSON", tt.keyword)
		}
	}
	if members[0].Address != "127.0.0.1:8858" {
		t.Error("NodesJSON reordered its input")
	}
	if _, err := NodesJSON([]MemberStatus{{Address: "no-port"}}, ""); err == nil {
		t.Error("malformed address accepted")
	}
}
