// Package module is budget-forecast: when does each SLO's error budget run out? The
// budget's burn over a trailing window (first and last sample of
// slo:error_budget_remaining:ratio) extrapolated linearly from its latest value; one
// budget_forecast assessment per SLO with history.
//
// Pure logic on nthlayer.Host, tested natively with `go test`; export_wit_world is the glue
// to the generated component bindings.
package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"wit_component/nthlayer"
)

const (
	Name    = "budget-forecast"
	Version = "0.1.0"
)

var Task = nthlayer.TaskInfo{
	IntervalSeconds: 3600,
	Summary:         "error-budget forecast per SLO: burn over a trailing window -> projected exhaustion",
	Needs:           []string{"core", "prometheus"},
	Assessments:     []string{"budget_forecast"},
}

// Run is one cycle as export_wit_world calls it: JSON state and config in.
func Run(h nthlayer.Host, state, config string) (any, any, int, error) {
	c, err := ParseConfig(config)
	if err != nil {
		return nil, nil, 0, err
	}
	st, res, err := Forecasts(h, State{Seq: nthlayer.SeqState(state)}, c, "nthlayer-"+Name)
	return st, res, res.Emitted, err
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
func Project(slo string, window int, pts []nthlayer.Sample, c Config) Forecast {
	first, last := pts[0], pts[len(pts)-1]
	burn := (first.V - last.V) / ((last.T - first.T) / 86400)
	f := Forecast{
		SloName: slo, Window: fmt.Sprintf("%dd", window),
		BudgetRemaining: last.V, BudgetAtWindowStart: first.V,
		ObservedFrom: nthlayer.ISO(unix(first.T)), ObservedTo: nthlayer.ISO(unix(last.T)), Samples: len(pts),
		BurnPerDay: burn,
	}
	switch {
	case last.V <= 0:
		f.Status = "EXHAUSTED"
		zero := 0.0
		f.DaysToExhaustion = &zero
		at := f.ObservedTo
		f.ProjectedExhaustion = &at
	case burn <= 0:
		f.Status = "STABLE"
	default:
		days := last.V / burn
		at := nthlayer.ISO(unix(last.T + days*86400))
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

// Forecasts is one cycle: every manifest SLO's budget history over the window, one record each.
// A failed query skips that SLO (logged, listed in Result.Skipped); a failed submit fails
// the cycle, so its state (the id sequence) is not committed.
func Forecasts(h nthlayer.Host, st State, c Config, producer string) (State, Result, error) {
	ms, err := h.Manifests()
	if err != nil {
		return st, Result{}, err
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
			pts := data.Points()
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
				"id": id, "created_at": nthlayer.ISO(now), "kind": "budget_forecast",
				"service": m.Name, "producer": producer, "data": f,
			}
			got, err := h.Submit(rec)
			switch {
			case err == nil:
				id = got
			case errors.Is(err, nthlayer.ErrDuplicate):
			default:
				return st, res, fmt.Errorf("%s: %w", id, err)
			}
			res.IDs = append(res.IDs, id)
			res.Emitted++
			h.Log("info", "budget forecast", map[string]string{"slo": key, "status": f.Status, "id": id})
		}
	}
	return State{Seq: st.Seq + 1}, res, nil
}
