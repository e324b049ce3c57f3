package grpcapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/distro-registry/distro/api/nacospb"
	"github.com/distro-registry/distro/internal/jsonscan"
	"github.com/distro-registry/distro/internal/nacos/render"
)

// Request and response type names (the Java simple class names that
// Metadata.type carries). They are part of the wire contract.
const (
	TypeServerCheckRequest        = "ServerCheckRequest"
	TypeServerCheckResponse       = "ServerCheckResponse"
	TypeConnectionSetupRequest    = "ConnectionSetupRequest"
	TypeHealthCheckRequest        = "HealthCheckRequest"
	TypeHealthCheckResponse       = "HealthCheckResponse"
	TypeClientDetectionRequest    = "ClientDetectionRequest"
	TypeClientDetectionResponse   = "ClientDetectionResponse"
	TypeConnectResetRequest       = "ConnectResetRequest"
	TypeConnectResetResponse      = "ConnectResetResponse"
	TypeInstanceRequest           = "InstanceRequest"
	TypeInstanceResponse          = "InstanceResponse"
	TypeBatchInstanceRequest      = "BatchInstanceRequest"
	TypeBatchInstanceResponse     = "BatchInstanceResponse"
	TypePersistentInstanceRequest = "PersistentInstanceRequest"
	TypeServiceQueryRequest       = "ServiceQueryRequest"
	TypeQueryServiceResponse      = "QueryServiceResponse"
	TypeSubscribeServiceRequest   = "SubscribeServiceRequest"
	TypeSubscribeServiceResponse  = "SubscribeServiceResponse"
	TypeServiceListRequest        = "ServiceListRequest"
	TypeServiceListResponse       = "ServiceListResponse"
	TypeNotifySubscriberRequest   = "NotifySubscriberRequest"
	TypeNotifySubscriberResponse  = "NotifySubscriberResponse"
	TypeErrorResponse             = "ErrorResponse"
)

// Nacos error codes carried in ErrorResponse.errorCode (NacosException and
// ResponseCode constants).
const (
	CodeServerStarting = 300 // INVALID_SERVER_STATUS: not ready yet, retry
	CodeUnregistered   = 301 // UN_REGISTER: unknown connection, reconnect
	CodeNoHandler      = 302 // NO_HANDLER: request type not served
	CodeInvalidParam   = 400 // INVALID_PARAM
	CodeNoRight        = 403 // NO_RIGHT: authentication or authorization refused
	CodeServerError    = 500 // SERVER_ERROR
)

// Instance operation types (InstanceRequest.type and friends).
const (
	opRegisterInstance        = "registerInstance"
	opDeregisterInstance      = "deregisterInstance"
	opBatchRegisterInstance   = "batchRegisterInstance"
	opBatchDeregisterInstance = "batchDeregisterInstance"
)

// Frame is a decoded Payload: the body type, its JSON and the request
// headers.
type Frame struct {
	Type     string
	Body     []byte
	Headers  map[string]string
	ClientIP string
}

// Errors of DecodePayload.
var (
	errNoType   = errors.New("payload has no metadata.type")
	errBadType  = errors.New("payload metadata.type is not a Java class name")
	errNotJSON  = errors.New("payload body is not a JSON object")
	errTypeURL  = errors.New("payload body carries a type_url; expected JSON with an empty type_url")
	errTooLarge = errors.New("payload body is too large")
)

// maxTypeLen bounds metadata.type: real names are at most ~40 bytes.
const maxTypeLen = 128

// DecodePayload validates the framing of p: a type name, and a body that is
// empty (read as {}) or a JSON object. It never panics, whatever p holds;
// the body's fields are decoded by the handler of the type.
func DecodePayload(p *nacospb.Payload, maxBody int) (Frame, error) {
	md := p.GetMetadata()
	f := Frame{Type: md.GetType(), Headers: md.GetHeaders(), ClientIP: md.GetClientIp()}
	if f.Type == "" {
		return f, errNoType
	}
	if len(f.Type) > maxTypeLen {
		return f, errBadType
	}
	for i := 0; i < len(f.Type); i++ {
		c := f.Type[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '.') {
			return f, errBadType
		}
	}
	body := p.GetBody()
	if body.GetTypeUrl() != "" {
		return f, errTypeURL
	}
	f.Body = bytes.TrimSpace(body.GetValue())
	if maxBody > 0 && len(f.Body) > maxBody {
		return f, errTooLarge
	}
	if len(f.Body) == 0 {
		f.Body = []byte("{}")
	}
	if f.Body[0] != '{' || !jsonscan.Valid(bodyString(f.Body)) {
		return f, errNotJSON
	}
	return f, nil
}

// EncodePayload frames a JSON body as a Payload of type typ.
func EncodePayload(typ string, body []byte) *nacospb.Payload {
	return &nacospb.Payload{Metadata: &nacospb.Metadata{Type: typ}, Body: &anypb.Any{Value: body}}
}

// decodeBody unmarshals a frame's JSON body into v, with a message that
// names the request type on failure.
func decodeBody(f Frame, v any) error {
	if err := json.Unmarshal(f.Body, v); err != nil {
		return invalidf("cannot decode %s: %v", f.Type, err)
	}
	return nil
}

// requestID reads the requestId of any body, best effort (for echoing it in
// an error response).
func requestID(body []byte) string {
	var h struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(body, &h) != nil || len(h.RequestID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(h.RequestID, &s) == nil && len(s) <= 256 {
		return s
	}
	return ""
}

// Request bodies. Field names follow the Nacos Java classes; unknown fields
// are ignored, as Jackson does on the server.

type baseRequest struct {
	RequestID string `json:"requestId"`
	Module    string `json:"module"`
}

type namingRequest struct {
	RequestID   string `json:"requestId"`
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
}

// wireInstance is a Nacos Instance as clients send it. Pointers tell absent
// fields (Java defaults apply) from zero values.
type wireInstance struct {
	InstanceID  string          `json:"instanceId"`
	IP          string          `json:"ip"`
	Port        int64           `json:"port"`
	Weight      *float64        `json:"weight"`
	Healthy     *bool           `json:"healthy"`
	Enabled     *bool           `json:"enabled"`
	Ephemeral   *bool           `json:"ephemeral"`
	ClusterName string          `json:"clusterName"`
	ServiceName string          `json:"serviceName"`
	Metadata    json.RawMessage `json:"metadata"`
}

type instanceRequest struct {
	namingRequest
	Type     string       `json:"type"`
	Instance wireInstance `json:"instance"`
}

type batchInstanceRequest struct {
	namingRequest
	Type      string         `json:"type"`
	Instances []wireInstance `json:"instances"`
}

type serviceQueryRequest struct {
	namingRequest
	Cluster     string `json:"cluster"`
	HealthyOnly bool   `json:"healthyOnly"`
	UDPPort     int64  `json:"udpPort"`
}

type subscribeServiceRequest struct {
	namingRequest
	Subscribe bool   `json:"subscribe"`
	Clusters  string `json:"clusters"`
}

type serviceListRequest struct {
	namingRequest
	PageNo   int64  `json:"pageNo"`
	PageSize int64  `json:"pageSize"`
	Selector string `json:"selector"`
}

type connectionSetupRequest struct {
	RequestID     string            `json:"requestId"`
	ClientVersion string            `json:"clientVersion"`
	Tenant        string            `json:"tenant"`
	Labels        map[string]string `json:"labels"`
}

// wireResponse is the common part of every response a client sends back on
// the stream.
type wireResponse struct {
	ResultCode int    `json:"resultCode"`
	ErrorCode  int    `json:"errorCode"`
	Message    string `json:"message"`
	RequestID  string `json:"requestId"`
}

// Response bodies are appended by hand: a few fixed fields plus, for the
// service responses, ServiceInfo bytes rendered once per revision.

// appendOK starts a success body: resultCode 200, errorCode 0, success
// true. The caller appends further fields and the closing brace.
func appendOK(dst []byte, requestID string) []byte {
	dst = append(dst, `{"resultCode":200,"errorCode":0,"success":true,"message":"","requestId":`...)
	return render.AppendString(dst, requestID)
}

// okBody is a success body with no further fields.
func okBody(requestID string) []byte { return append(appendOK(nil, requestID), '}') }

// okTypeBody is a success body with a "type" field (InstanceResponse,
// BatchInstanceResponse).
func okTypeBody(requestID, typ string) []byte {
	b := appendOK(nil, requestID)
	b = append(b, `,"type":`...)
	b = render.AppendString(b, typ)
	return append(b, '}')
}

// errorBody is an ErrorResponse body.
func errorBody(requestID string, code int, msg string) []byte {
	b := []byte(`{"resultCode":500,"errorCode":`)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"success":false,"message":`...)
	b = render.AppendString(b, msg)
	b = append(b, `,"requestId":`...)
	b = render.AppendString(b, requestID)
	return append(b, '}')
}

// serviceListBody is a ServiceListResponse body.
func serviceListBody(requestID string, count int, names []string) []byte {
	b := appendOK(nil, requestID)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, `,"serviceNames":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = render.AppendString(b, n)
	}
	return append(b, "]}"...)
}

// serverCheckBody answers ServerCheckRequest. supportAbilityNegotiation is
// false: Java clients would otherwise wait for a SetupAckRequest carrying
// server abilities, which this server has none of.
func serverCheckBody(requestID, connID string) []byte {
	b := appendOK(nil, requestID)
	b = append(b, `,"connectionId":`...)
	b = render.AppendString(b, connID)
	return append(b, `,"supportAbilityNegotiation":false}`...)
}

// notifyBody is a NotifySubscriberRequest body around rendered ServiceInfo.
func notifyBody(requestID, namespace, group, name string, info []byte) []byte {
	b := make([]byte, 0, len(info)+160)
	b = append(b, `{"requestId":`...)
	b = render.AppendString(b, requestID)
	b = append(b, `,"module":"naming","namespace":`...)
	b = render.AppendString(b, namespace)
	b = append(b, `,"serviceName":`...)
	b = render.AppendString(b, name)
	b = append(b, `,"groupName":`...)
	b = render.AppendString(b, group)
	b = append(b, `,"serviceInfo":`...)
	b = append(b, info...)
	return append(b, '}')
}

// internalRequestBody is the body of a server-to-client internal request
// (ClientDetectionRequest).
func internalRequestBody(requestID string) []byte {
	b := []byte(`{"requestId":`)
	b = render.AppendString(b, requestID)
	return append(b, `,"module":"internal"}`...)
}

// connectResetBody is a ConnectResetRequest body; serverIP empty lets the
// client pick its next server.
func connectResetBody(requestID, serverIP, serverPort string) []byte {
	b := []byte(`{"requestId":`)
	b = render.AppendString(b, requestID)
	b = append(b, `,"module":"internal","serverIp":`...)
	b = render.AppendString(b, serverIP)
	b = append(b, `,"serverPort":`...)
	b = render.AppendString(b, serverPort)
	return append(b, '}')
}

// echoClusters sets the "clusters" field of a v2 ServiceInfo (which
// render.V2 always writes as "") to the subscriber's cluster filter, as
// Nacos does: clients that filter by cluster key their cache on it. The
// field is the first `,"clusters":""` in the JSON; it cannot occur earlier
// inside a string value, where quotes are escaped.
func echoClusters(info []byte, clusters string) []byte {
	if clusters == "" {
		return info
	}
	const field = `,"clusters":""`
	i := bytes.Index(info, []byte(field))
	if i < 0 {
		return info
	}
	out := make([]byte, 0, len(info)+len(clusters)+8)
	out = append(out, info[:i]...)
	out = append(out, `,"clusters":`...)
	out = render.AppendString(out, clusters)
	return append(out, info[i+len(field):]...)
}

// rpcError is a request failure with the Nacos error code the client sees.
type rpcError struct {
	code int
	msg  string
	// typ, if set, is the response type to answer with instead of
	// ErrorResponse.
	typ string
}

func (e *rpcError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &rpcError{code: CodeInvalidParam, msg: fmt.Sprintf(format, args...)}
}
