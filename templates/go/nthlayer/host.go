// Package nthlayer is the wasm-free side of the contract, shared by every module made from
// this template: the Host interface module logic is written against (export_wit_world
// implements it on the generated WIT bindings; tests implement it with fakes), the manifest
// shape core serves, and small helpers. It imports no bindings, so `go test` runs natively.
package nthlayer

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Host is everything outside the sandbox. Errors are the host's (denied, unavailable, …),
// prefixed with the import that failed.
type Host interface {
	Manifests() ([]Manifest, error)
	// QueryBatch runs instant queries at `at` (Unix seconds) in one host call; one Answer each.
	QueryBatch(promql []string, at float64) []Answer
	QueryRange(promql string, start, end float64, step string) (RangeData, error)
	// Submit returns the id core stored; a 409 (already stored) wraps ErrDuplicate.
	Submit(record map[string]any) (string, error)
	Log(level, message string, fields map[string]string)
	Now() time.Time
}

// ErrDuplicate marks a submit core refused with 409: a retried cycle's record, already stored.
var ErrDuplicate = errors.New("duplicate")

// TaskInfo is what describe() says about the module's one task (named after the module).
type TaskInfo struct {
	IntervalSeconds uint32
	Summary         string
	Needs           []string
	// Every assessment kind and verdict type Run submits (describe() emits, contract
	// 0.3.0): the host refuses any other, and the operator grants these
	// (--grant NAME=assessment:KIND,verdict:TYPE).
	Assessments []string
	Verdicts    []string
}

// Manifest is the part of core's served manifest (flat shape, targets 0-100) modules read.
type Manifest struct {
	Name string `json:"name"`
	Team string `json:"team"`
	Tier string `json:"tier"`
	Slos []SLO  `json:"slos"`
}

type SLO struct {
	Name           string  `json:"name"`
	Target         float64 `json:"target"`
	Window         string  `json:"window"`
	IndicatorQuery string  `json:"indicator_query"`
}

// Answer is one instant query's result: the Prometheus `data` object, or the host's error.
type Answer struct {
	Data VectorData
	Err  error
}

type VectorData struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	} `json:"result"`
}

type RangeData struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

// First is the first sample's value of an instant vector; false for an error, no series or NaN.
func (a Answer) First() (float64, bool) {
	if a.Err != nil || len(a.Data.Result) == 0 {
		return 0, false
	}
	return sampleValue(a.Data.Result[0].Value)
}

// Sample is one point of a range series.
type Sample struct{ T, V float64 }

// Points of the first series of a range result, NaN/Inf and malformed samples dropped.
func (d RangeData) Points() []Sample {
	if len(d.Result) == 0 {
		return nil
	}
	var out []Sample
	for _, p := range d.Result[0].Values {
		t, ok := p[0].(float64)
		v, ok2 := sampleValue(p)
		if ok && ok2 {
			out = append(out, Sample{t, v})
		}
	}
	return out
}

func sampleValue(p [2]any) (float64, bool) {
	s, ok := p[1].(string)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v || v > 1e308 || v < -1e308 {
		return 0, false
	}
	return v, true
}

// IndicatorQuery substitutes `$service` and `${service}` as observe does.
func IndicatorQuery(template, service string) string {
	return strings.ReplaceAll(strings.ReplaceAll(template, "${service}", service), "$service", service)
}

// ISO is core's timestamp shape, YYYY-MM-DDTHH:MM:SS.ffffff+00:00.
func ISO(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
}

// SeqState reads {"seq": n} (the next record number); anything else starts at 1.
func SeqState(js string) int {
	var s struct {
		Seq int `json:"seq"`
	}
	if js != "" {
		_ = json.Unmarshal([]byte(js), &s)
	}
	if s.Seq < 1 {
		return 1
	}
	return s.Seq
}
