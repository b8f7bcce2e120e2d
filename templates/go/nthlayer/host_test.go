package nthlayer

import (
	"encoding/json"
	"testing"
	"time"
)

func TestHelpers(t *testing.T) {
	if got := IndicatorQuery(`a{s="$service"} / b{s="${service}"}`, "x"); got != `a{s="x"} / b{s="x"}` {
		t.Fatal(got)
	}
	if got := ISO(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)); got != "2026-01-02T03:04:05.000006+00:00" {
		t.Fatal(got)
	}
	var d RangeData
	_ = json.Unmarshal([]byte(`{"result":[{"metric":{},"values":[[1,"0.5"],[2,"NaN"],[3,"+Inf"],[4,"0.25"]]}]}`), &d)
	if p := d.Points(); len(p) != 2 || p[1] != (Sample{4, 0.25}) {
		t.Fatalf("%v", p)
	}
	var a Answer
	_ = json.Unmarshal([]byte(`{"result":[{"metric":{},"value":[1,"0.9"]}]}`), &a.Data)
	if v, ok := a.First(); !ok || v != 0.9 {
		t.Fatal(v, ok)
	}
	if _, ok := (Answer{}).First(); ok {
		t.Fatal("empty answer has a value")
	}
}
