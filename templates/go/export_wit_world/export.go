// Package export_wit_world is the wasm glue, the same for every module made from this
// template: the component's exports (describe, run-cycle) around package module, and
// nthlayer.Host on the generated import bindings. The package name and the
// `wit_component/...` import paths are the ones wit-bindgen's Go generator expects
// (build.sh generates the bindings beside this directory).
package export_wit_world

import (
	"encoding/json"
	"fmt"
	"time"

	"wit_component/module"
	"wit_component/nthlayer"
	"wit_component/nthlayer_worker_core"
	"wit_component/nthlayer_worker_log"
	"wit_component/nthlayer_worker_prometheus"
	"wit_component/nthlayer_worker_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

func Describe() nthlayer_worker_types.ModuleInfo {
	return nthlayer_worker_types.ModuleInfo{
		Name:    module.Name,
		Version: module.Version,
		Tasks: []nthlayer_worker_types.Task{{
			Name:            module.Name,
			IntervalSeconds: module.Task.IntervalSeconds,
			Summary:         module.Task.Summary,
			Wake:            []nthlayer_worker_types.WakeOn{},
		}},
		Needs: module.Task.Needs,
		Emits: emits(),
	}
}

// emits is describe()'s emits (contract 0.3.0): what module.Task says Run submits.
func emits() []nthlayer_worker_types.Emission {
	out := []nthlayer_worker_types.Emission{}
	for _, k := range module.Task.Assessments {
		out = append(out, nthlayer_worker_types.Emission{Record: nthlayer_worker_types.RecordKind_Assessment, Kind: k})
	}
	for _, t := range module.Task.Verdicts {
		out = append(out, nthlayer_worker_types.Emission{Record: nthlayer_worker_types.RecordKind_Verdict, Kind: t})
	}
	return out
}

func RunCycle(in nthlayer_worker_types.CycleInput) witTypes.Result[nthlayer_worker_types.CycleOutput, string] {
	st, res, emitted, err := module.Run(host{}, in.State.SomeOr(""), in.Config)
	if err != nil {
		return witTypes.Err[nthlayer_worker_types.CycleOutput, string](err.Error())
	}
	state, err := json.Marshal(st)
	if err != nil {
		return witTypes.Err[nthlayer_worker_types.CycleOutput, string]("state: " + err.Error())
	}
	result, err := json.Marshal(res)
	if err != nil {
		return witTypes.Err[nthlayer_worker_types.CycleOutput, string]("result: " + err.Error())
	}
	return witTypes.Ok[nthlayer_worker_types.CycleOutput, string](nthlayer_worker_types.CycleOutput{
		State:   witTypes.Some(string(state)),
		Result:  witTypes.Some(string(result)),
		Emitted: uint32(emitted),
	})
}

// hostError is the contract's host-error variant as a Go error naming the import; a 409
// rejection wraps nthlayer.ErrDuplicate.
func hostError(call string, e nthlayer_worker_types.HostError) error {
	switch e.Tag() {
	case nthlayer_worker_types.HostError_Denied:
		return fmt.Errorf("%s: denied: %s", call, e.Denied())
	case nthlayer_worker_types.HostError_Unavailable:
		return fmt.Errorf("%s: unavailable: %s", call, e.Unavailable())
	case nthlayer_worker_types.HostError_Timeout:
		return fmt.Errorf("%s: timeout: %s", call, e.Timeout())
	case nthlayer_worker_types.HostError_Rejected:
		r := e.Rejected()
		if r.Status == 409 {
			return fmt.Errorf("%s: rejected 409 %s: %w", call, r.Code, nthlayer.ErrDuplicate)
		}
		return fmt.Errorf("%s: rejected %d %s: %s", call, r.Status, r.Code, r.Detail)
	default:
		return fmt.Errorf("%s: invalid: %s", call, e.Invalid())
	}
}

type host struct{}

func (host) Manifests() ([]nthlayer.Manifest, error) {
	r := nthlayer_worker_core.GetManifests()
	if r.IsErr() {
		return nil, hostError("core.get-manifests", r.Err())
	}
	var ms []nthlayer.Manifest
	if err := json.Unmarshal([]byte(r.Ok()), &ms); err != nil {
		return nil, fmt.Errorf("core.get-manifests: %w", err)
	}
	return ms, nil
}

func (host) QueryBatch(qs []string, at float64) []nthlayer.Answer {
	rs := nthlayer_worker_prometheus.QueryBatch(qs, witTypes.Some(at))
	out := make([]nthlayer.Answer, len(rs))
	for i, r := range rs {
		if r.IsErr() {
			out[i].Err = hostError("prometheus.query-batch", r.Err())
		} else if err := json.Unmarshal([]byte(r.Ok()), &out[i].Data); err != nil {
			out[i].Err = fmt.Errorf("prometheus.query-batch: %w", err)
		}
	}
	return out
}

func (host) QueryRange(q string, start, end float64, step string) (nthlayer.RangeData, error) {
	var d nthlayer.RangeData
	r := nthlayer_worker_prometheus.QueryRange(q, start, end, step)
	if r.IsErr() {
		return d, hostError("prometheus.query-range", r.Err())
	}
	if err := json.Unmarshal([]byte(r.Ok()), &d); err != nil {
		return d, fmt.Errorf("prometheus.query-range: %w", err)
	}
	return d, nil
}

func (host) Submit(rec map[string]any) (string, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	r := nthlayer_worker_core.SubmitAssessment(string(js), witTypes.None[string]())
	if r.IsErr() {
		return "", hostError("core.submit-assessment", r.Err())
	}
	return r.Ok(), nil
}

var levels = map[string]nthlayer_worker_log.Level{
	"trace": nthlayer_worker_log.Level_Trace, "debug": nthlayer_worker_log.Level_Debug,
	"info": nthlayer_worker_log.Level_Info, "warn": nthlayer_worker_log.Level_Warn,
	"error": nthlayer_worker_log.Level_Error,
}

func (host) Log(level, msg string, fields map[string]string) {
	fs := make([]witTypes.Tuple2[string, string], 0, len(fields))
	for k, v := range fields {
		fs = append(fs, witTypes.Tuple2[string, string]{F0: k, F1: v})
	}
	nthlayer_worker_log.Log(levels[level], msg, fs)
}

func (host) Now() time.Time { return time.Now() }
