package grpcapi

import (
	"encoding/json"
	"strconv"
	"unsafe"

	"github.com/distro-registry/distro/internal/jsonscan"
)

// Hand-written decoders of the request bodies on the hot paths (instance,
// query and subscribe requests, health checks, the acks of pushes). They
// decode exactly as encoding/json does into the request structs (keys
// match case-insensitively, the last of a repeated key wins, null leaves a
// field unset or a pointer nil, a value of the wrong type is an error);
// decode_test.go checks them against encoding/json. Strings share the
// body's memory: what is kept beyond the request is interned by its keeper.

// bodyString views a frame body as a string without copying: the body is
// never written after decoding.
func bodyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// fieldErr records a value of the wrong type for key.
func fieldErr(d *jsonscan.Decoder, key, want string) bool {
	return d.Fail(&jsonscan.TypeError{Field: key, Want: want, Got: d.Peek()})
}

// begin starts reading an object's members with NextKey: it reports
// false for null (a no-op, as for encoding/json) and, after recording a
// type error, for anything but an object.
func begin(d *jsonscan.Decoder) bool {
	switch d.Peek() {
	case jsonscan.Null:
		d.Null()
		return false
	case jsonscan.Object:
		return d.BeginObject()
	}
	return fieldErr(d, "", "object")
}

// end checks that nothing follows the body's object; the error names the
// request type.
func end(d *jsonscan.Decoder, f Frame) error {
	if err := d.End(); err != nil {
		return invalidf("cannot decode %s: %v", f.Type, err)
	}
	return nil
}

// The decoders below loop over members and call a field method of the
// target struct with static calls only, so that the Decoder stays on the
// stack.

func readString(d *jsonscan.Decoder, key string, dst *string) bool {
	switch d.Peek() {
	case jsonscan.String:
		*dst, _ = d.String()
		return d.Err() == nil
	case jsonscan.Null:
		return d.Null()
	}
	return fieldErr(d, key, "string")
}

func readInt(d *jsonscan.Decoder, key string, dst *int64) bool {
	switch d.Peek() {
	case jsonscan.Number:
		n, ok := d.Number()
		if !ok {
			return false
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			return fieldErr(d, key, "integer")
		}
		*dst = v
		return true
	case jsonscan.Null:
		return d.Null()
	}
	return fieldErr(d, key, "integer")
}

func readBool(d *jsonscan.Decoder, key string, dst *bool) bool {
	switch d.Peek() {
	case jsonscan.Bool:
		*dst, _ = d.Bool()
		return d.Err() == nil
	case jsonscan.Null:
		return d.Null()
	}
	return fieldErr(d, key, "boolean")
}

// Shared values that decoded pointer fields point to: readers never
// write through them.
var (
	trueVal, falseVal = true, false
	one               = 1.0
)

func boolPtr(v bool) *bool {
	if v {
		return &trueVal
	}
	return &falseVal
}

// readBoolPtr and readFloatPtr decode into pointer fields: null sets nil.
func readBoolPtr(d *jsonscan.Decoder, key string, dst **bool) bool {
	switch d.Peek() {
	case jsonscan.Bool:
		v, _ := d.Bool()
		*dst = boolPtr(v)
		return d.Err() == nil
	case jsonscan.Null:
		*dst = nil
		return d.Null()
	}
	return fieldErr(d, key, "boolean")
}

func readFloatPtr(d *jsonscan.Decoder, key string, dst **float64) bool {
	switch d.Peek() {
	case jsonscan.Number:
		n, ok := d.Number()
		if !ok {
			return false
		}
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return fieldErr(d, key, "number")
		}
		if v == 1 {
			*dst = &one // the usual weight: no allocation
		} else {
			p := new(float64)
			*p = v
			*dst = p
		}
		return true
	case jsonscan.Null:
		*dst = nil
		return d.Null()
	}
	return fieldErr(d, key, "number")
}

// readRaw decodes into a json.RawMessage: any value's text (null too).
func readRaw(d *jsonscan.Decoder, dst *json.RawMessage) bool {
	raw, ok := d.Raw()
	if ok {
		// Shares the body's memory (read only, like every decoded string).
		*dst = json.RawMessage(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	}
	return ok
}

// namingField decodes the fields every naming request has.
func namingField(d *jsonscan.Decoder, k string, r *namingRequest) (handled, ok bool) {
	switch jsonscan.Match(k, "requestId", "namespace", "serviceName", "groupName") {
	case 0:
		return true, readString(d, k, &r.RequestID)
	case 1:
		return true, readString(d, k, &r.Namespace)
	case 2:
		return true, readString(d, k, &r.ServiceName)
	case 3:
		return true, readString(d, k, &r.GroupName)
	}
	return false, true
}

func decodeWireInstance(d *jsonscan.Decoder, w *wireInstance) bool {
	for more := begin(d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		more = w.field(d, k)
	}
	return d.Err() == nil
}

func (w *wireInstance) field(d *jsonscan.Decoder, k string) bool {
	switch jsonscan.Match(k, "instanceId", "ip", "port", "weight", "healthy", "enabled", "ephemeral", "clusterName", "serviceName", "metadata") {
	case 0:
		return readString(d, k, &w.InstanceID)
	case 1:
		return readString(d, k, &w.IP)
	case 2:
		return readInt(d, k, &w.Port)
	case 3:
		return readFloatPtr(d, k, &w.Weight)
	case 4:
		return readBoolPtr(d, k, &w.Healthy)
	case 5:
		return readBoolPtr(d, k, &w.Enabled)
	case 6:
		return readBoolPtr(d, k, &w.Ephemeral)
	case 7:
		return readString(d, k, &w.ClusterName)
	case 8:
		return readString(d, k, &w.ServiceName)
	case 9:
		return readRaw(d, &w.Metadata)
	}
	return d.Skip()
}

func decodeBase(f Frame, r *baseRequest) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		switch {
		case jsonscan.Field(k, "requestId"):
			more = readString(&d, k, &r.RequestID)
		case jsonscan.Field(k, "module"):
			more = readString(&d, k, &r.Module)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}

func decodeInstanceRequest(f Frame, r *instanceRequest) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		if handled, ok := namingField(&d, k, &r.namingRequest); handled {
			more = ok
			continue
		}
		switch {
		case jsonscan.Field(k, "type"):
			more = readString(&d, k, &r.Type)
		case jsonscan.Field(k, "instance"):
			more = decodeWireInstance(&d, &r.Instance)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}

func decodeBatchRequest(f Frame, r *batchInstanceRequest) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		if handled, ok := namingField(&d, k, &r.namingRequest); handled {
			more = ok
			continue
		}
		switch {
		case jsonscan.Field(k, "type"):
			more = readString(&d, k, &r.Type)
		case jsonscan.Field(k, "instances"):
			more = decodeInstances(&d, k, &r.Instances)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}

// decodeInstances decodes an array into a slice as encoding/json does:
// null sets nil; elements are decoded into the slice's existing elements
// (a repeated key updates them) and the length is the array's.
func decodeInstances(d *jsonscan.Decoder, k string, dst *[]wireInstance) bool {
	switch d.Peek() {
	case jsonscan.Null:
		*dst = nil
		return d.Null()
	case jsonscan.Array:
	default:
		return fieldErr(d, k, "array")
	}
	s := *dst
	d.BeginArray()
	i := 0
	for d.NextElem() {
		if i >= len(s) {
			if i < cap(s) {
				s = s[:i+1]
			} else {
				s = append(s, wireInstance{})
			}
		}
		if !decodeWireInstance(d, &s[i]) {
			return false
		}
		i++
	}
	if d.Err() != nil {
		return false
	}
	if i == 0 {
		s = []wireInstance{} // an empty array is an empty slice, not null
	}
	*dst = s[:i]
	return true
}

func decodeQueryRequest(f Frame, r *serviceQueryRequest) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		if handled, ok := namingField(&d, k, &r.namingRequest); handled {
			more = ok
			continue
		}
		switch {
		case jsonscan.Field(k, "cluster"):
			more = readString(&d, k, &r.Cluster)
		case jsonscan.Field(k, "healthyOnly"):
			more = readBool(&d, k, &r.HealthyOnly)
		case jsonscan.Field(k, "udpPort"):
			more = readInt(&d, k, &r.UDPPort)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}

func decodeSubscribeRequest(f Frame, r *subscribeServiceRequest) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		if handled, ok := namingField(&d, k, &r.namingRequest); handled {
			more = ok
			continue
		}
		switch {
		case jsonscan.Field(k, "subscribe"):
			more = readBool(&d, k, &r.Subscribe)
		case jsonscan.Field(k, "clusters"):
			more = readString(&d, k, &r.Clusters)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}

func decodeWireResponse(f Frame, r *wireResponse) error {
	d := jsonscan.New(bodyString(f.Body))
	for more := begin(&d); more; {
		k, ok := d.NextKey()
		if !ok {
			break
		}
		n := int64(0)
		switch {
		case jsonscan.Field(k, "resultCode"):
			n = int64(r.ResultCode)
			more = readInt(&d, k, &n)
			r.ResultCode = int(n)
		case jsonscan.Field(k, "errorCode"):
			n = int64(r.ErrorCode)
			more = readInt(&d, k, &n)
			r.ErrorCode = int(n)
		case jsonscan.Field(k, "message"):
			more = readString(&d, k, &r.Message)
		case jsonscan.Field(k, "requestId"):
			more = readString(&d, k, &r.RequestID)
		default:
			more = d.Skip()
		}
	}
	return end(&d, f)
}
