package module

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"wit_component/nthlayer"
)

// now: 2026-12-01 09:30 UTC; window end is 09:00, start 7 days earlier.
var now = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

type fakeHost struct {
	manifests []nthlayer.Manifest
	series    map[string]func(t float64) (float64, bool)
	submitted []map[string]any
	dup       map[string]bool
	fail      error
	queries   []string
}

func (h *fakeHost) Manifests() ([]nthlayer.Manifest, error) { return h.manifests, nil }
func (h *fakeHost) QueryBatch([]string, float64) []nthlayer.Answer {
	panic("budget-forecast makes no instant queries")
}
func (h *fakeHost) QueryRange(q string, start, end float64, step string) (nthlayer.RangeData, error) {
	h.queries = append(h.queries, fmt.Sprintf("%s %v %v %s", q, start, end, step))
	var d nthlayer.RangeData
	f, ok := h.series[q]
	if !ok {
		return d, nil
	}
	d.Result = append(d.Result, struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}{})
	for t := start; t <= end; t += 3600 {
		if v, ok := f(t); ok {
			d.Result[0].Values = append(d.Result[0].Values, [2]any{t, strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return d, nil
}
func (h *fakeHost) Submit(r map[string]any) (string, error) {
	if h.fail != nil {
		return "", h.fail
	}
	if h.dup[r["id"].(string)] {
		return "", fmt.Errorf("rejected 409: %w", nthlayer.ErrDuplicate)
	}
	h.submitted = append(h.submitted, r)
	return r["id"].(string), nil
}
func (h *fakeHost) Log(string, string, map[string]string) {}
func (h *fakeHost) Now() time.Time                        { return now }

func manifest(name string, slos ...string) nthlayer.Manifest {
	m := nthlayer.Manifest{Name: name}
	for _, s := range slos {
		m.Slos = append(m.Slos, nthlayer.SLO{Name: s, Target: 99.9})
	}
	return m
}

func host() *fakeHost {
	end := float64(now.Unix() / 3600 * 3600)
	histEnd := end - 3*3600 // history stops 3 h before the window's end
	return &fakeHost{
		manifests: []nthlayer.Manifest{manifest("payment-api", "availability"), manifest("checkout-api", "availability", "latency")},
		series: map[string]func(float64) (float64, bool){
			// 0.01 of the budget per day, 0.5 left at histEnd: 50 days to go.
			`slo:error_budget_remaining:ratio{service="checkout-api",slo="availability"}`: func(t float64) (float64, bool) {
				return 0.5 + 0.01*(histEnd-t)/86400, t <= histEnd
			},
			`slo:error_budget_remaining:ratio{service="payment-api",slo="availability"}`: func(t float64) (float64, bool) {
				return 0.95, true
			},
		},
		dup: map[string]bool{},
	}
}

func TestForecastPerSLO(t *testing.T) {
	h := host()
	st, res, err := Forecasts(h, State{Seq: 4}, DefaultConfig(), "budget-forecast")
	if err != nil {
		t.Fatal(err)
	}
	if st.Seq != 5 || res.Emitted != 2 {
		t.Fatalf("state %v result %v", st, res)
	}
	if got := strings.Join(res.Skipped, ","); got != "checkout-api/latency" {
		t.Fatalf("skipped %q", got)
	}
	end := float64(now.Unix() / 3600 * 3600)
	if !strings.HasSuffix(h.queries[0], fmt.Sprintf(" %v %v 1h", end-7*86400, end)) {
		t.Fatalf("window not hour-aligned 7 days: %s", h.queries[0])
	}
	c := h.submitted[0]
	if c["id"] != "bfc-checkout-api-availability-00004" || c["service"] != "checkout-api" || c["kind"] != "budget_forecast" {
		t.Fatalf("record %v", c)
	}
	if c["created_at"] != "2026-12-01T09:30:00.000000+00:00" {
		t.Fatalf("created_at %v", c["created_at"])
	}
	f := c["data"].(Forecast)
	if math.Abs(f.BurnPerDay-0.01) > 1e-12 || math.Abs(*f.DaysToExhaustion-50) > 1e-9 || f.Status != "OK" {
		t.Fatalf("checkout forecast %+v", f)
	}
	if f.Samples != 7*24-2 || f.ObservedTo != "2026-12-01T06:00:00.000000+00:00" {
		t.Fatalf("samples %d to %s", f.Samples, f.ObservedTo)
	}
	if *f.ProjectedExhaustion != "2027-01-20T06:00:00.000000+00:00" {
		t.Fatalf("exhaustion %s", *f.ProjectedExhaustion)
	}
	p := h.submitted[1]["data"].(Forecast)
	if p.Status != "STABLE" || p.DaysToExhaustion != nil || p.ProjectedExhaustion != nil || p.BurnPerDay != 0 {
		t.Fatalf("payment forecast %+v", p)
	}
}

func TestStatusThresholds(t *testing.T) {
	c := DefaultConfig()
	day := 86400.0
	for _, tc := range []struct {
		v0, v1 float64
		want   string
	}{{0.5, 0.3, "WARNING"}, {0.5, 0.2, "CRITICAL"}, {0.3, -0.1, "EXHAUSTED"}, {0.5, 0.6, "STABLE"}, {0.9, 0.85, "OK"}} {
		f := Project("x", 7, []nthlayer.Sample{{T: 0, V: tc.v0}, {T: 7 * day, V: tc.v1}}, c)
		if f.Status != tc.want {
			t.Errorf("%v -> %v: %s, want %s (%+v)", tc.v0, tc.v1, f.Status, tc.want, f)
		}
	}
}

func TestDuplicateIsStoredOtherErrorsFail(t *testing.T) {
	h := host()
	h.dup["bfc-checkout-api-availability-00001"] = true
	_, res, emitted, err := Run(h, "", "")
	if r := res.(Result); err != nil || emitted != 2 || r.IDs[0] != "bfc-checkout-api-availability-00001" {
		t.Fatalf("%v %v", res, err)
	}
	h = host()
	h.fail = errors.New("denied: core")
	st, _, err := Forecasts(h, State{Seq: 9}, DefaultConfig(), "p")
	if err == nil || !strings.Contains(err.Error(), "denied: core") || st.Seq != 9 {
		t.Fatalf("want failure keeping seq 9, got %v %v", st, err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := ParseConfig(`{"window_days":0}`); err == nil {
		t.Fatal("window_days 0 accepted")
	}
	c, err := ParseConfig(`{"window_days":3,"budget_metric":"b"}`)
	if err != nil || c.WindowDays != 3 || c.BudgetMetric != "b" || c.CriticalDays != 7 {
		t.Fatalf("%+v %v", c, err)
	}
	if nthlayer.SeqState(`{"seq":"x"}`) != 1 || nthlayer.SeqState(`{"seq":5}`) != 5 {
		t.Fatal("state")
	}
}
