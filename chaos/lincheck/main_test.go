package main

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestChecker(t *testing.T) {
	ok := []Op{
		{Client: 0, Kind: "put", Key: "a", Value: 1, Call: 0, Return: 10},
		{Client: 1, Kind: "get", Key: "a", Result: 1, Call: 11, Return: 20},
		{Client: 0, Kind: "del", Key: "a", Call: 21, Return: 30},
		{Client: 1, Kind: "get", Key: "a", Result: -1, Call: 31, Return: 40},
		// An unknown put may take effect late, or never.
		{Client: 2, Kind: "put", Key: "b", Value: 7, Call: 0, Unknown: true},
		{Client: 1, Kind: "get", Key: "b", Result: -1, Call: 41, Return: 50},
		{Client: 1, Kind: "get", Key: "b", Result: 7, Call: 51, Return: 60},
	}
	if res, _ := Check(ok, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("linearizable history judged %v", res)
	}
	// A stale read after an acknowledged write, and a lost acknowledged
	// write, are both caught.
	for name, bad := range map[string][]Op{
		"stale read": {
			{Client: 0, Kind: "put", Key: "a", Value: 1, Call: 0, Return: 10},
			{Client: 1, Kind: "get", Key: "a", Result: -1, Call: 11, Return: 20},
		},
		"lost write": {
			{Client: 0, Kind: "put", Key: "a", Value: 1, Call: 0, Return: 10},
			{Client: 0, Kind: "put", Key: "a", Value: 2, Call: 11, Return: 20},
			{Client: 1, Kind: "get", Key: "a", Result: 1, Call: 21, Return: 30},
		},
	} {
		if res, _ := Check(bad, 10*time.Second); res != porcupine.Illegal {
			t.Fatalf("%s judged %v", name, res)
		}
	}
}
