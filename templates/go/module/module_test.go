package module

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"wit_component/nthlayer"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fake struct {
	manifests []nthlayer.Manifest
	slis      map[string]float64
	submitted []map[string]any
	fail      error
}

func (f *fake) Manifests() ([]nthlayer.Manifest, error) { return f.manifests, nil }
func (f *fake) QueryBatch(qs []string, at float64) []nthlayer.Answer {
	out := make([]nthlayer.Answer, len(qs))
	for i, q := range qs {
		if v, ok := f.slis[q]; ok {
			out[i].Data.Result = append(out[i].Data.Result, struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			}{Value: [2]any{at, strconv.FormatFloat(v, 'g', -1, 64)}})
		}
	}
	return out
}
func (f *fake) QueryRange(string, float64, float64, string) (nthlayer.RangeData, error) {
	panic("not used")
}
func (f *fake) Submit(r map[string]any) (string, error) {
	if f.fail != nil {
		return "", f.fail
	}
	f.submitted = append(f.submitted, r)
	return r["id"].(string), nil
}
func (f *fake) Log(string, string, map[string]string) {}
func (f *fake) Now() time.Time                        { return now }

var checkout = nthlayer.Manifest{Name: "checkout", Slos: []nthlayer.SLO{
	{Name: "availability", Target: 99.9, IndicatorQuery: `sli{service="$service"}`},
	{Name: "latency", Target: 99.0, IndicatorQuery: `lat{service="${service}"}`},
	{Name: "throughput", Target: 99.0},
}}

func TestOneSnapshotPerService(t *testing.T) {
	f := &fake{manifests: []nthlayer.Manifest{checkout}, slis: map[string]float64{
		`sli{service="checkout"}`: 0.9995, `lat{service="checkout"}`: 0.97,
	}}
	st, _, emitted, err := Run(f, "", "{}")
	if err != nil || emitted != 1 || st.(State).Seq != 2 {
		t.Fatalf("%v %v %v", st, emitted, err)
	}
	r := f.submitted[0]
	if r["id"] != "snap-checkout-20260101-00001" || r["created_at"] != "2026-01-01T00:00:00.000000+00:00" {
		t.Fatalf("%v", r)
	}
	snaps := r["data"].(map[string]any)["slos"].([]Snapshot)
	if *snaps[0].SLI != 0.9995 || !*snaps[0].Meeting || *snaps[1].Meeting || snaps[2].SLI != nil || snaps[2].Meeting != nil {
		t.Fatalf("%+v", snaps)
	}
}

func TestSequenceAndFailures(t *testing.T) {
	f := &fake{manifests: []nthlayer.Manifest{checkout, {Name: "ledger"}}}
	if st, _, _, _ := Run(f, `{"seq":7}`, ""); st.(State).Seq != 9 {
		t.Fatalf("seq %v", st)
	}
	f.fail = errors.New("core.submit-assessment: denied: core")
	if _, _, _, err := Run(f, "", ""); err == nil {
		t.Fatal("a refused submit must fail the cycle")
	}
	f.fail = nthlayer.ErrDuplicate
	if _, _, n, err := Run(f, "", ""); err != nil || n != 2 {
		t.Fatalf("a duplicate is stored: %v %v", n, err)
	}
}
