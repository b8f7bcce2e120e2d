// Package forecast projects when each SLO's error budget runs out: the budget's burn over a
// trailing window (first and last sample of slo:error_budget_remaining:ratio) extrapolated
// linearly from its latest value. One budget_forecast assessment per SLO with history.
//
// Pure logic on the Host interface, tested natively with `go test`; main.go is the glue to
// the generated component bindings.
package forecast

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Host is everything outside the sandbox. Errors are the host's (denied, unavailable, …).
type Host interface {
	Manifests() ([]Manifest, error)
	QueryRange(promql string, start, end float64, step string) (PromData, error)
	// Submit returns the id core stored. A duplicate (retried cycle) is reported as
	// ErrDuplicate, wrapped.
	Submit(record map[string]any) (string, error)
	Log(level, message string, fields map[string]string)
	Now() time.Time
}

// ErrDuplicate marks a submit core refused with 409: the record is already stored.
var ErrDuplicate = errors.New("duplicate")

type Manifest struct {
	Name string `json:"name"`
	Slos []struct {
		Name   string  `json:"name"`
		Target float64 `json:"target"`
	} `json:"slos"`
}

// PromData is the `data` object of a Prometheus range query.
type PromData struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

type Config struct {
	BudgetMetric string  `json:"budget_metric"`
	WindowDays   int     `json:"window_days"`
	CriticalDays float64 `json:"critical_days"`
	WarningDays  float64 `json:"warning_days"`
}

func DefaultConfig() Config {
	return Config{BudgetMetric: "slo:error_budget_remaining:ratio", WindowDays: 7, CriticalDays: 7, WarningDays: 30}
}

// ParseConfig overlays the operator's JSON config on the defaults; bad values are an error.
func ParseConfig(js string) (Config, error) {
	c := DefaultConfig()
	if js != "" {
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
	}
	if c.WindowDays < 1 || c.WindowDays > 90 {
		return c, fmt.Errorf("config: window_days %d outside 1..90", c.WindowDays)
	}
	return c, nil
}

type State struct {
	Seq int `json:"seq"`
}

func ParseState(js string) State {
	var s State
	if js != "" {
		_ = json.Unmarshal([]byte(js), &s)
	}
	if s.Seq < 1 {
		s.Seq = 1
	}
	return s
}

type point struct{ t, v float64 }

// Points of the first series, NaN/Inf dropped.
func points(d PromData) ([]point, error) {
	if len(d.Result) == 0 {
		return nil, nil
	}
	var out []point
	for _, p := range d.Result[0].Values {
		t, ok := p[0].(float64)
		s, ok2 := p[1].(string)
		if !ok || !ok2 {
			return nil, fmt.Errorf("malformed sample %v", p)
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out = append(out, point{t, v})
	}
	return out, nil
}

// ISO is core's timestamp shape, YYYY-MM-DDTHH:MM:SS.ffffff+00:00.
func ISO(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
}

func unix(secs float64) time.Time {
	whole := math.Floor(secs)
	return time.Unix(int64(whole), int64((secs-whole)*1e9))
}

// Forecast is one SLO's projection.
type Forecast struct {
	SloName             string   `json:"slo_name"`
	Window              string   `json:"window"`
	BudgetRemaining     float64  `json:"budget_remaining"`
	BudgetAtWindowStart float64  `json:"budget_at_window_start"`
	ObservedFrom        string   `json:"observed_from"`
	ObservedTo          string   `json:"observed_to"`
	Samples             int      `json:"samples"`
	BurnPerDay          float64  `json:"burn_per_day"`
	DaysToExhaustion    *float64 `json:"days_to_exhaustion"`
	ProjectedExhaustion *string  `json:"projected_exhaustion_at"`
	Status              string   `json:"status"`
}

// Project computes the forecast from the window's first and last samples.
func Project(slo string, window int, pts []point, c Config) Forecast {
	first, last := pts[0], pts[len(pts)-1]
	burn := (first.v - last.v) / ((last.t - first.t) / 86400)
	f := Forecast{
		SloName: slo, Window: fmt.Sprintf("%dd", window),
		BudgetRemaining: last.v, BudgetAtWindowStart: first.v,
		ObservedFrom: ISO(unix(first.t)), ObservedTo: ISO(unix(last.t)), Samples: len(pts),
		BurnPerDay: burn,
	}
	switch {
	case last.v <= 0:
		f.Status = "EXHAUSTED"
		zero := 0.0
		f.DaysToExhaustion = &zero
		at := f.ObservedTo
		f.ProjectedExhaustion = &at
	case burn <= 0:
		f.Status = "STABLE"
	default:
		days := last.v / burn
		at := ISO(unix(last.t + days*86400))
		f.DaysToExhaustion, f.ProjectedExhaustion = &days, &at
		switch {
		case days < c.CriticalDays:
			f.Status = "CRITICAL"
		case days < c.WarningDays:
			f.Status = "WARNING"
		default:
			f.Status = "OK"
		}
	}
	return f
}

func budgetQuery(metric, service, slo string) string {
	return fmt.Sprintf("%s{service=%s,slo=%s}", metric, strconv.Quote(service), strconv.Quote(slo))
}

// Result is what one cycle did.
type Result struct {
	Emitted int      `json:"emitted"`
	IDs     []string `json:"ids"`
	Skipped []string `json:"skipped"`
}

// Run is one cycle: every manifest SLO's budget history over the window, one record each.
// A failed query skips that SLO (logged, listed in Result.Skipped); a failed submit fails
// the cycle, so its state (the id sequence) is not committed.
func Run(h Host, st State, c Config, producer string) (State, Result, error) {
	ms, err := h.Manifests()
	if err != nil {
		return st, Result{}, fmt.Errorf("core.get-manifests: %w", err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	now := h.Now()
	end := float64(now.Unix() / 3600 * 3600)
	start := end - float64(c.WindowDays)*86400
	res := Result{IDs: []string{}, Skipped: []string{}}
	for _, m := range ms {
		for _, slo := range m.Slos {
			key := m.Name + "/" + slo.Name
			data, err := h.QueryRange(budgetQuery(c.BudgetMetric, m.Name, slo.Name), start, end, "1h")
			var pts []point
			if err == nil {
				pts, err = points(data)
			}
			if err != nil || len(pts) < 2 {
				why := "fewer than 2 samples in the window"
				if err != nil {
					why = err.Error()
				}
				h.Log("debug", "no budget history", map[string]string{"slo": key, "why": why})
				res.Skipped = append(res.Skipped, key)
				continue
			}
			f := Project(slo.Name, c.WindowDays, pts, c)
			id := fmt.Sprintf("bfc-%s-%s-%05d", m.Name, slo.Name, st.Seq)
			rec := map[string]any{
				"id": id, "created_at": ISO(now), "kind": "budget_forecast",
				"service": m.Name, "producer": producer, "data": f,
			}
			got, err := h.Submit(rec)
			switch {
			case err == nil:
				id = got
			case errors.Is(err, ErrDuplicate):
			default:
				return st, res, fmt.Errorf("core.submit-assessment %s: %w", id, err)
			}
			res.IDs = append(res.IDs, id)
			res.Emitted++
			h.Log("info", "budget forecast", map[string]string{"slo": key, "status": f.Status, "id": id})
		}
	}
	return State{Seq: st.Seq + 1}, res, nil
}
