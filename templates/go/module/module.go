// Package module is {{name}}: one `slo_snapshot` assessment per service in core, with each
// SLO's current SLI (its indicator query, all services in one batch) and whether it meets
// its objective.
//
// Pure logic on nthlayer.Host, tested natively with `go test` (module_test.go);
// export_wit_world is the wasm glue and needs no change.
package module

import (
	"errors"
	"fmt"

	"wit_component/nthlayer"
)

const (
	Name    = "{{name}}"
	Version = "0.1.0"
)

var Task = nthlayer.TaskInfo{
	IntervalSeconds: 300,
	Summary:         "SLI snapshot per service: each SLO's current SLI and whether it meets its objective",
	Needs:           []string{"core", "prometheus"},
	Assessments:     []string{"slo_snapshot"},
}

type Snapshot struct {
	Name      string   `json:"name"`
	Objective float64  `json:"objective"`
	SLI       *float64 `json:"sli"`
	Meeting   *bool    `json:"meeting"`
}

type State struct {
	Seq int `json:"seq"`
}

// Run is one cycle: state is {"seq": n}, the next record number; config is unused here.
func Run(h nthlayer.Host, state, _ string) (any, any, int, error) {
	seq := nthlayer.SeqState(state)
	ms, err := h.Manifests()
	if err != nil {
		return nil, nil, 0, err
	}
	now := h.Now()
	type ref struct{ m, s int }
	var queries []string
	var refs []ref
	for i, m := range ms {
		for j, s := range m.Slos {
			if s.IndicatorQuery != "" {
				queries = append(queries, nthlayer.IndicatorQuery(s.IndicatorQuery, m.Name))
				refs = append(refs, ref{i, j})
			}
		}
	}
	sli := map[ref]float64{}
	if len(queries) > 0 {
		for k, a := range h.QueryBatch(queries, float64(now.Unix())) {
			if v, ok := a.First(); ok {
				sli[refs[k]] = v
			}
		}
	}
	ids := []string{}
	for i, m := range ms {
		snaps := []Snapshot{}
		for j, s := range m.Slos {
			sn := Snapshot{Name: s.Name, Objective: s.Target}
			if v, ok := sli[ref{i, j}]; ok {
				meeting := v*100 >= s.Target
				sn.SLI, sn.Meeting = &v, &meeting
			}
			snaps = append(snaps, sn)
		}
		id := fmt.Sprintf("snap-%s-%s-%05d", m.Name, now.UTC().Format("20060102"), seq)
		rec := map[string]any{
			"id": id, "created_at": nthlayer.ISO(now), "kind": "slo_snapshot",
			"service": m.Name, "producer": "nthlayer-" + Name, "data": map[string]any{"slos": snaps},
		}
		// A retried cycle re-submits what it already stored: core's 409 means stored.
		if _, err := h.Submit(rec); err != nil && !errors.Is(err, nthlayer.ErrDuplicate) {
			return nil, nil, 0, err
		}
		ids = append(ids, id)
		seq++
	}
	h.Log("info", "snapshots submitted", map[string]string{"count": fmt.Sprint(len(ids))})
	return State{Seq: seq}, map[string]any{"ids": ids}, len(ids), nil
}
