// Command lincheck checks a recorded history of persistent-instance
// operations for linearizability with porcupine (a nested module, so the
// checker stays out of the server's dependencies).
//
//	lincheck history.json [visualization.html]
//
// The history is a JSON array of operations on single instances (keys):
// "put" (register with a value: the weight), "del" (deregister) and "get"
// (a linearizable read answering the value, or absent). An operation whose
// outcome is unknown (a timeout, a 503 that may have been applied) has
// Unknown set and no return time: porcupine lets it take effect at any
// point after its call, or never. Exit status: 0 linearizable, 1 not, 2
// inconclusive or bad input.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is one recorded operation (times in Unix nanoseconds).
type Op struct {
	Client int    `json:"client"`
	Kind   string `json:"kind"` // put, del, get
	Key    string `json:"key"`
	Value  int    `json:"value,omitempty"` // put: the value written
	// Result of a get: the value read, or -1 for absent.
	Result  int   `json:"result"`
	Call    int64 `json:"call"`
	Return  int64 `json:"return,omitempty"`
	Unknown bool  `json:"unknown,omitempty"`
}

type input struct {
	kind  string
	key   string
	value int
}

// Model is a map from key to value (-1: absent), partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Input.(input).key
			if _, ok := by[k]; !ok {
				order = append(order, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return -1 },
	Step: func(state, in, out any) (bool, any) {
		st, i := state.(int), in.(input)
		switch i.kind {
		case "put":
			return true, i.value
		case "del":
			return true, -1
		case "get":
			return out.(int) == st, st
		}
		return false, st
	},
	Equal: func(a, b any) bool { return a.(int) == b.(int) },
	DescribeOperation: func(in, out any) string {
		i := in.(input)
		if i.kind == "get" {
			return fmt.Sprintf("get(%s) -> %d", i.key, out.(int))
		}
		if i.kind == "put" {
			return fmt.Sprintf("put(%s, %d)", i.key, i.value)
		}
		return fmt.Sprintf("del(%s)", i.key)
	},
}

// Operations converts the recorded ops; unknown outcomes never return
// (their return time is past every other event).
func Operations(ops []Op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		end = max(end, o.Call, o.Return)
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		ret := o.Return
		if o.Unknown {
			if o.Kind == "get" {
				continue // a read with no answer constrains nothing
			}
			ret = end + 1
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: input{o.Kind, o.Key, o.Value},
			Call: o.Call, Output: o.Result, Return: ret})
	}
	return out
}

// Check runs porcupine with a time budget.
func Check(ops []Op, budget time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(Model, Operations(ops), budget)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lincheck history.json [visualization.html]")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ops []Op
	if err := json.Unmarshal(b, &ops); err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(2)
	}
	res, info := Check(ops, time.Minute)
	if len(os.Args) > 2 && res != porcupine.Ok {
		if f, err := os.Create(os.Args[2]); err == nil {
			_ = porcupine.Visualize(Model, info, f)
			f.Close()
		}
	}
	switch res {
	case porcupine.Ok:
		fmt.Printf("linearizable: %d operations\n", len(ops))
	case porcupine.Illegal:
		fmt.Printf("NOT linearizable: %d operations\n", len(ops))
		os.Exit(1)
	default:
		fmt.Printf("inconclusive (time budget): %d operations\n", len(ops))
		os.Exit(2)
	}
}
