// Package export_wit_world is the wasm glue: the component's exports (describe, run-cycle)
// and an adapter from the generated import bindings to forecast.Host. The package name and
// the `wit_component/...` import paths are the ones wit-bindgen's Go generator expects
// (build.sh generates the bindings next to this directory).
package export_wit_world

import (
	"encoding/json"
	"fmt"
	"time"

	"wit_component/forecast"
	"wit_component/nthlayer_worker_core"
	"wit_component/nthlayer_worker_log"
	"wit_component/nthlayer_worker_prometheus"
	"wit_component/nthlayer_worker_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// The module's identity, in one place.
const (
	Name    = "budget-forecast"
	Version = "0.1.0"
)

func Describe() nthlayer_worker_types.ModuleInfo {
	return nthlayer_worker_types.ModuleInfo{
		Name:    Name,
		Version: Version,
		Tasks: []nthlayer_worker_types.Task{{
			Name:            Name,
			IntervalSeconds: 3600,
			Summary:         "error-budget forecast per SLO: burn over a trailing window -> projected exhaustion",
			Wake:            []nthlayer_worker_types.WakeOn{},
		}},
		Needs: []string{"core", "prometheus"},
	}
}

func RunCycle(in nthlayer_worker_types.CycleInput) witTypes.Result[nthlayer_worker_types.CycleOutput, string] {
	fail := witTypes.Err[nthlayer_worker_types.CycleOutput, string]
	cfg, err := forecast.ParseConfig(in.Config)
	if err != nil {
		return fail(err.Error())
	}
	st, res, err := forecast.Run(host{}, forecast.ParseState(in.State.SomeOr("")), cfg, Name)
	if err != nil {
		return fail(err.Error())
	}
	state, _ := json.Marshal(st)
	result, _ := json.Marshal(res)
	return witTypes.Ok[nthlayer_worker_types.CycleOutput, string](nthlayer_worker_types.CycleOutput{
		State:   witTypes.Some(string(state)),
		Result:  witTypes.Some(string(result)),
		Emitted: uint32(res.Emitted),
	})
}

// hostError turns the contract's host-error variant into a Go error; a 409 rejection
// wraps forecast.ErrDuplicate.
func hostError(e nthlayer_worker_types.HostError) error {
	switch e.Tag() {
	case nthlayer_worker_types.HostError_Denied:
		return fmt.Errorf("denied: %s", e.Denied())
	case nthlayer_worker_types.HostError_Unavailable:
		return fmt.Errorf("unavailable: %s", e.Unavailable())
	case nthlayer_worker_types.HostError_Timeout:
		return fmt.Errorf("timeout: %s", e.Timeout())
	case nthlayer_worker_types.HostError_Rejected:
		r := e.Rejected()
		if r.Status == 409 {
			return fmt.Errorf("rejected 409 %s: %w", r.Code, forecast.ErrDuplicate)
		}
		return fmt.Errorf("rejected %d %s: %s", r.Status, r.Code, r.Detail)
	default:
		return fmt.Errorf("invalid: %s", e.Invalid())
	}
}

type host struct{}

func (host) Manifests() ([]forecast.Manifest, error) {
	r := nthlayer_worker_core.GetManifests()
	if r.IsErr() {
		return nil, hostError(r.Err())
	}
	var ms []forecast.Manifest
	if err := json.Unmarshal([]byte(r.Ok()), &ms); err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	return ms, nil
}

func (host) QueryRange(q string, start, end float64, step string) (forecast.PromData, error) {
	var d forecast.PromData
	r := nthlayer_worker_prometheus.QueryRange(q, start, end, step)
	if r.IsErr() {
		return d, hostError(r.Err())
	}
	err := json.Unmarshal([]byte(r.Ok()), &d)
	return d, err
}

func (host) Submit(rec map[string]any) (string, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	r := nthlayer_worker_core.SubmitAssessment(string(js), witTypes.None[string]())
	if r.IsErr() {
		return "", hostError(r.Err())
	}
	return r.Ok(), nil
}

func (host) Log(level, msg string, fields map[string]string) {
	lv := map[string]nthlayer_worker_log.Level{
		"debug": nthlayer_worker_log.Level_Debug, "info": nthlayer_worker_log.Level_Info,
		"warn": nthlayer_worker_log.Level_Warn, "error": nthlayer_worker_log.Level_Error,
	}[level]
	fs := make([]witTypes.Tuple2[string, string], 0, len(fields))
	for k, v := range fields {
		fs = append(fs, witTypes.Tuple2[string, string]{F0: k, F1: v})
	}
	nthlayer_worker_log.Log(lv, msg, fs)
}

func (host) Now() time.Time { return time.Now() }
